"""HTTP plumbing: send a request, decode the reply into a schema model or raise."""

from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from client.errors import KaizenError, TransportError, error_for
from schemas import ErrorBody

M = TypeVar("M", bound=BaseModel)


async def call(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    reply: type[M] | None,
    *,
    body: bytes | None = None,
    params: dict[str, Any] | None = None,
) -> M | None:
    """One request; raises an `APIError` subclass for error replies. Safe to cancel."""
    query = {k: str(v) for k, v in (params or {}).items() if v is not None}
    try:
        async with session.request(method, path, data=body, params=query) as resp:
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransportError(f"{method} {path}: {exc!r}") from exc
    if status >= 400:
        raise _error(status, raw)
    if reply is None:
        return None
    try:
        return reply.model_validate_json(raw)
    except ValidationError as exc:
        raise KaizenError(f"unexpected reply to {method} {path}: {exc}") from exc


async def call_bytes(session: aiohttp.ClientSession, method: str, path: str) -> bytes:
    """One request whose reply is raw bytes (a download). Safe to cancel."""
    try:
        async with session.request(method, path) as resp:
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransportError(f"{method} {path}: {exc!r}") from exc
    if status >= 400:
        raise _error(status, raw)
    return raw


def _error(status: int, raw: bytes) -> KaizenError:
    try:
        detail = ErrorBody.model_validate_json(raw).error
    except ValidationError:
        return error_for("internal", raw[:200].decode(errors="replace"), {}, status)
    return error_for(detail.code.value, detail.message, detail.details, status)
