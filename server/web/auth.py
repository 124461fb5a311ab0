"""Where a request carries its bearer token, and which paths need none."""

from aiohttp import web

PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})


def bearer(request: web.Request) -> str | None:
    """`Authorization: Bearer …`, or `?token=…` for WebSocket clients that cannot set headers."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") if request.path == "/ws" else None
