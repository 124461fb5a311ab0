"""Building blocks shared by several bodies: pages and identifiers."""

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""Agent types, tenants and agent names: short, printable, no spaces."""

Cursor = Annotated[str, Field(min_length=1, max_length=256)]


class Strict(BaseModel):
    """Base for request bodies: unknown fields and type coercion are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next one."""

    items: list[T]
    next_cursor: str | None = None


class ListQuery(Strict):
    """Query string of plain list endpoints; values arrive as text, so this one is lax."""

    model_config = Strict.model_config | {"strict": False}

    limit: int = Field(default=100, ge=1, le=1000)
    cursor: Cursor | None = None
