"""The Performance Optimizer's unit of evidence: one execution of a task by an agent."""

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from schemas.performance import ExecutionRecord

K = TypeVar("K")
V = TypeVar("V")


class NoExecutionsError(LookupError):
    """There is nothing to summarise: the service answers 404."""


@dataclass(frozen=True, slots=True)
class Execution:
    agent_type: str
    task_category: str
    completion_time: float
    """Seconds the execution took."""
    iterations: int
    success: bool
    errors: tuple[str, ...]
    actions_count: int
    timestamp: float
    """When the execution ended, in epoch seconds."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.completion_time) and self.completion_time >= 0):
            raise ValueError(f"completion_time must be finite and >= 0, got {self.completion_time}")
        if self.iterations < 0 or self.actions_count < 0:
            raise ValueError("iterations and actions_count must be >= 0")
        if not math.isfinite(self.timestamp):
            raise ValueError(f"timestamp must be finite, got {self.timestamp}")

    @property
    def started(self) -> float:
        return self.timestamp - self.completion_time


def execution_from_record(record: ExecutionRecord, now: float) -> Execution:
    """The core's view of a request body; no timestamp means it ended `now`, and a
    naive timestamp is read as UTC."""
    return Execution(
        agent_type=record.agent_type,
        task_category=record.task_category,
        completion_time=record.completion_time,
        iterations=record.iterations,
        success=record.success,
        errors=tuple(record.errors),
        actions_count=record.actions_count,
        timestamp=now if record.timestamp is None else epoch_seconds(record.timestamp),
    )


def epoch_seconds(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def group_by(items: Iterable[V], key: Callable[[V], K]) -> dict[K, list[V]]:
    """Groups in first-seen order, so results do not depend on hashing."""
    groups: dict[K, list[V]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return dict(groups)
