"""Opaque pagination cursors: base64url of a small JSON object."""

import base64
import binascii
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from server.core.errors import InvalidRequest

T = TypeVar("T")


def encode_cursor(**fields: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(fields)).decode().rstrip("=")


def keyset_page(
    rows: list[T], limit: int, key: Callable[[T], int | str]
) -> tuple[list[T], str | None]:
    """Split rows fetched with `limit + 1` into the page and the cursor of the
    next one (None on the last page): keyset pagination, `after` the last key."""
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(after=key(page[-1]))


def decode_cursor(cursor: str | None, key: str, kind: type) -> Any:
    """The value under `key` in `cursor`, of type `kind`; None for no cursor."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded))[key]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidRequest("invalid cursor", cursor=cursor) from None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidRequest("invalid cursor", cursor=cursor)
    if isinstance(value, int) and not 0 <= value <= 2**63 - 1:
        raise InvalidRequest("invalid cursor", cursor=cursor)
    return value
