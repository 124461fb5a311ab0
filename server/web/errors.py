"""Every failure leaves as `{"error": {"code", "message", "details"}}`."""

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from schemas import ErrorBody, ErrorCode, ErrorDetail, encode
from server.core.errors import InvalidRequest, KaizenServerError, MalformedJson, UnknownOp

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    401: ErrorCode.UNAUTHORIZED,
}
_UNKNOWN_OP_TYPES = {"union_tag_invalid", "union_tag_not_found"}


def from_validation(exc: ValidationError) -> KaizenServerError:
    """Name what was wrong with a body or frame: bad JSON, unknown op, or invalid fields."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    kinds = {e["type"] for e in errors}
    if "json_invalid" in kinds or "json_type" in kinds:
        return MalformedJson("the body is not valid JSON")
    if kinds & _UNKNOWN_OP_TYPES and all(len(e["loc"]) <= 1 for e in errors):
        return UnknownOp("unknown op", errors=_jsonable(errors))
    return InvalidRequest("the request does not match the schema", errors=_jsonable(errors))


def _jsonable(errors: list[Any]) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "type": e["type"], "msg": e["msg"]} for e in errors]


def error_detail(exc: KaizenServerError) -> ErrorDetail:
    return ErrorDetail(code=exc.code, message=exc.message, details=exc.details)


def error_response(status: int, detail: ErrorDetail) -> web.Response:
    body = encode(ErrorBody(error=detail))
    return web.Response(status=status, body=body, content_type="application/json")
