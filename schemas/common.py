"""Building blocks shared by several bodies: pages, identifiers, times, limits."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

T = TypeVar("T")

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""Agent types, tenants and agent names: short, printable, no spaces."""

Cursor = Annotated[str, Field(min_length=1, max_length=256)]

MAX_ID = 2**63 - 1
"""Ids are SQLite rowids (64-bit signed): a larger one cannot exist, and binding it
raises OverflowError."""
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""Every id a client names, in a body, a frame or a list of ids."""

MAX_JSON_DEPTH = 64
"""How deep a body or frame may nest, `{}` and `[]` each one level (the body's own
object is level 1). Replies carry what was stored a few levels further down (a page,
its item, the message) and must be readable by every client: pydantic's JSON parser
(the SDK) reads 200 levels, orjson writes 254 and reads 1024. 64 leaves each of them
more than 100 levels to spare, and agents' metadata seldom nests past 10."""
ORJSON_WRITE_DEPTH = 254
"""orjson writes values nested up to this deep and refuses deeper ones."""


def within_depth(value: Any, depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON value nests at most `depth` levels. Wrapped in
    ORJSON_WRITE_DEPTH - depth lists it can be written only if it is that shallow:
    one C call, where a walk in Python would visit every value (~10% of ingest)."""
    for _ in range(ORJSON_WRITE_DEPTH - depth):
        value = [value]
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


MAX_UNIX_S = 10**10
"""The latest time a client may send: 10^10 Unix seconds, 2286-11-20T17:46:40Z."""
EARLIEST = datetime.fromtimestamp(0, UTC)
LATEST = datetime.fromtimestamp(MAX_UNIX_S, UTC)
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")


def _unix_seconds(value: Any) -> Any:
    """A number (or a string of digits, as query strings send) is Unix seconds,
    whatever its size: pydantic would read one past 2·10^10 as milliseconds, so 3e10
    would be stored as 1970-12-14. Out of range is refused, not reinterpreted."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value <= MAX_UNIX_S:  # NaN fails this too
            raise ValueError(f"a number of Unix seconds must lie in 0 to {MAX_UNIX_S}")
        return datetime.fromtimestamp(value, UTC)
    return value


def _in_range(value: datetime) -> datetime:
    """ISO 8601 times are held to the same range (a naive one is read as UTC here)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware <= LATEST:
        raise ValueError(f"a time must lie in {EARLIEST.isoformat()} to {LATEST.isoformat()}")
    return value


Timestamp = Annotated[
    datetime, BeforeValidator(_unix_seconds), AfterValidator(_in_range), Field(strict=False)
]
"""A time a client sends: an ISO 8601 string, or a number of Unix seconds from 0 to
MAX_UNIX_S (until 2286). Never milliseconds."""
AwareTimestamp = Annotated[
    AwareDatetime, BeforeValidator(_unix_seconds), AfterValidator(_in_range), Field(strict=False)
]
"""A Timestamp that must name its time zone (a number of seconds is UTC)."""


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
