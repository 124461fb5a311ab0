"""Workflow learner statistics.

The design reports `running`, `active_sessions` and, under `stats`,
`events_processed`, `sessions_created`, `patterns_learned` and `errors`. The seed
sent each learned session to its procedural API as one "pattern"; here a session
is learned into shared pattern counts, so `sessions_learned` counts what the seed
counted and `patterns_learned` counts the frequent patterns there are now.
"""

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar


@dataclass(slots=True)
class WorkflowStats:
    events_processed: int = 0
    errors: int = 0
    """Events rejected as invalid (the seed's `errors`)."""
    sessions_created: int = 0
    sessions_closed: int = 0
    sessions_learned: int = 0
    sessions_skipped: int = 0
    """Closed with fewer than `min_commands` commands."""
    outcomes_reported: int = 0
    active_sessions: int = 0
    patterns_learned: int = 0
    """Patterns with at least `min_support` sessions now."""
    patterns_tracked: int = 0
    """Pattern tallies held, frequent or not (bounded, `mining.py`)."""
    commands_known: int = 0

    COUNTERS: ClassVar[tuple[str, ...]] = (
        "events_processed",
        "errors",
        "sessions_created",
        "sessions_closed",
        "sessions_learned",
        "sessions_skipped",
        "outcomes_reported",
    )
    """Fields that only grow, persisted with the learner's state; the others are
    read off the live state when a snapshot is taken."""

    def __add__(self, other: "WorkflowStats") -> "WorkflowStats":
        return WorkflowStats(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def seed_view(self, running: bool) -> dict[str, Any]:
        """The statistics object."""
        return {
            "running": running,
            "active_sessions": self.active_sessions,
            "stats": {
                "events_processed": self.events_processed,
                "sessions_created": self.sessions_created,
                "patterns_learned": self.patterns_learned,
                "errors": self.errors,
            },
        }
