"""The one error shape: `{"error": {"code", "message", "details"}}`."""

from typing import Any

from pydantic import BaseModel, Field

from schemas.enums import ErrorCode


class ErrorDetail(BaseModel):
    code: ErrorCode
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: ErrorDetail
