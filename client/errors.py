"""The SDK's one exception tree, rooted at `KaizenError`."""

from typing import Any


class KaizenError(Exception):
    """Root of every error the SDK raises."""


class TransportError(KaizenError):
    """The server could not be reached, or the connection broke."""


class ConnectionLostError(TransportError):
    """The WebSocket dropped while this request was in flight; it may or may not have been applied."""


class APIError(KaizenError):
    """The server answered with an error body or frame."""

    def __init__(
        self, code: str, message: str, details: dict[str, Any], status: int | None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
        self.status = status


class BadRequestError(APIError):
    """Malformed JSON, an unknown op, or a body that does not match the schema."""


class AuthenticationError(APIError):
    """Missing, unknown or revoked token."""


class PermissionDeniedError(APIError):
    pass


class NotFoundError(APIError):
    """No such resource in your tenant."""


class PayloadTooLargeError(APIError):
    """The body, frame or batch is over the server's limits."""


class ConflictError(APIError):
    """The resource already exists (a channel with that name)."""


class RateLimitedError(APIError):
    """Too many publishes; `details["retry_after_s"]` says how long to wait."""


class UnavailableError(APIError):
    """The server is shutting down."""


class ServerError(APIError):
    pass


_BY_CODE: dict[str, type[APIError]] = {
    "malformed_json": BadRequestError,
    "invalid_request": BadRequestError,
    "unknown_op": BadRequestError,
    "method_not_allowed": BadRequestError,
    "unauthorized": AuthenticationError,
    "forbidden": PermissionDeniedError,
    "not_found": NotFoundError,
    "payload_too_large": PayloadTooLargeError,
    "batch_too_large": PayloadTooLargeError,
    "conflict": ConflictError,
    "rate_limited": RateLimitedError,
    "unavailable": UnavailableError,
}


def error_for(
    code: str, message: str, details: dict[str, Any], status: int | None = None
) -> APIError:
    return _BY_CODE.get(code, ServerError)(code, message, details, status)
