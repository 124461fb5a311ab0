"""Bearer tokens: the secret is returned once, at creation, and stored hashed."""

from datetime import datetime

from pydantic import BaseModel

from schemas.common import Name, Strict


class TokenCreate(Strict):
    agent: Name
    tenant: Name | None = None
    """Only an open (token-less) server lets the caller choose the tenant."""


class TokenInfo(BaseModel):
    id: str
    tenant: str
    agent: str
    created_at: datetime
    revoked_at: datetime | None = None


class TokenCreated(TokenInfo):
    token: str
