"""The server's one exception tree. Transports turn these into the error shape."""

from typing import Any

from schemas import ErrorCode


class KaizenServerError(Exception):
    """Root of every error the server raises on purpose."""

    code = ErrorCode.INTERNAL
    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(KaizenServerError):
    code = ErrorCode.INVALID_REQUEST
    status = 422


class MalformedJson(KaizenServerError):
    code = ErrorCode.MALFORMED_JSON
    status = 400


class UnknownOp(KaizenServerError):
    code = ErrorCode.UNKNOWN_OP
    status = 400


class PayloadTooLarge(KaizenServerError):
    code = ErrorCode.PAYLOAD_TOO_LARGE
    status = 413


class BatchTooLarge(KaizenServerError):
    code = ErrorCode.BATCH_TOO_LARGE
    status = 413


class Unauthorized(KaizenServerError):
    code = ErrorCode.UNAUTHORIZED
    status = 401


class Forbidden(KaizenServerError):
    code = ErrorCode.FORBIDDEN
    status = 403


class NotFound(KaizenServerError):
    code = ErrorCode.NOT_FOUND
    status = 404


class Conflict(KaizenServerError):
    code = ErrorCode.CONFLICT
    status = 409


class RateLimited(KaizenServerError):
    code = ErrorCode.RATE_LIMITED
    status = 429


class Unavailable(KaizenServerError):
    code = ErrorCode.UNAVAILABLE
    status = 503


class ConfigError(KaizenServerError):
    """The settings cannot be served safely; raised before binding."""
