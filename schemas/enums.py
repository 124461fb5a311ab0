"""Enumerations shared by the server and its clients."""

from enum import StrEnum


class LearningType(StrEnum):
    SUCCESS_PATTERN = "SUCCESS_PATTERN"
    FAILURE_PATTERN = "FAILURE_PATTERN"
    OPTIMIZATION = "OPTIMIZATION"
    ERROR_RECOVERY = "ERROR_RECOVERY"
    TASK_STRATEGY = "TASK_STRATEGY"
    BEST_PRACTICE = "BEST_PRACTICE"
    WORKFLOW = "WORKFLOW"
    """A frequent command sequence the workflow learner found."""


class ConfidenceLevel(StrEnum):
    """Ordered from weakest to strongest; compare with `.rank`."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    VERY_HIGH = "VERY_HIGH"

    @property
    def rank(self) -> int:
        return _CONFIDENCE_ORDER.index(self)


_CONFIDENCE_ORDER = list(ConfidenceLevel)


class ErrorCode(StrEnum):
    MALFORMED_JSON = "malformed_json"
    INVALID_REQUEST = "invalid_request"
    UNKNOWN_OP = "unknown_op"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
