"""Decoding requests into schema models and encoding models into responses."""

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from schemas import encode
from schemas.common import MAX_JSON_DEPTH, within_depth
from server.core.errors import InvalidRequest, MalformedJson

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def decode(raw: bytes | str, adapter: TypeAdapter[T]) -> T:
    """Parse with orjson, then validate (faster than pydantic's own JSON parsing
    here). Every body and every `/ws` frame comes through here, so this is where
    MAX_JSON_DEPTH holds for all of their fields. Raises MalformedJson,
    InvalidRequest for JSON nested too deep, or pydantic's ValidationError (mapped
    to 4xx)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("depth limit exceeded"):  # orjson reads 1024 levels
            raise too_deep() from None
        raise MalformedJson("the body is not valid JSON") from None
    if _openings(raw) > MAX_JSON_DEPTH and not within_depth(value):
        raise too_deep()
    return adapter.validate_python(value)


def _openings(raw: bytes | str) -> int:
    """An upper bound of the nesting: every level opens with `[` or `{` (some may
    sit in strings). Two C scans, so most bodies skip the exact check."""
    if isinstance(raw, bytes):
        return raw.count(b"[") + raw.count(b"{")
    return raw.count("[") + raw.count("{")


def too_deep() -> InvalidRequest:
    """Deeper input could be stored but not read back by every client (and orjson
    cannot write it past 254 levels): refused whole, before validation."""
    return InvalidRequest("JSON nested too deep", max_depth=MAX_JSON_DEPTH)


async def read_bytes(request: web.Request) -> bytes:
    """The whole body, read once. A small body usually arrives with its headers, so
    by the time the handler runs it sits complete in the payload buffer: take it
    from there, which skips `request.read()`'s two `readany()` awaits and its copy
    (a few % of ingest's per-request CPU). The size limit is enforced either way."""
    payload = request.content
    if not payload.is_eof():
        return await request.read()
    data = payload.read_nowait()
    limit = request.client_max_size
    if limit and len(data) > limit:
        raise web.HTTPRequestEntityTooLarge(limit, len(data))
    return data


def read_query(request: web.Request, model: type[M]) -> M:
    return model.model_validate(dict(request.query))


def reply(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(status=status, body=encode(model), content_type="application/json")


def reply_json(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(value), content_type="application/json")
