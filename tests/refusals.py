"""Bad-input checks shared by the endpoint test files."""

from client import KaizenClient


async def assert_refused(
    kz: KaizenClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    """The raw request gets `status` and the error shape {code, message, details}."""
    async with kz.http.request(method, path, data=body) as resp:
        assert resp.status == status, await resp.text()
        assert set((await resp.json())["error"]) == {"code", "message", "details"}
