"""Time helpers: the store keeps epoch seconds, the contract speaks UTC datetimes."""

from datetime import UTC, datetime


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
