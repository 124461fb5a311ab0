"""Plain records the store hands to services, beside the schema models."""

from collections.abc import Sequence
from dataclasses import dataclass

from schemas import Interaction


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    tenant: str
    agent: str
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """Interactions of one write, as the store reports them once committed (read
    back from the store, adjacent writes of a tenant committed together may make
    one batch)."""

    tenant: str
    first_id: int
    recorded_at: float
    items: Sequence[Interaction]
    bodies: Sequence[bytes] = ()
    """Each item as stored (`sql.interaction_body`), when the store has it at hand:
    what a miner in another process is sent instead of the models."""
    tasks: Sequence[str] = ()
    """Each item's task description, when the store read it beside the body: a
    batch read back from the store need then build no model on the event loop."""

    def task_descriptions(self) -> Sequence[str]:
        return self.tasks or [item.task_description for item in self.items]


@dataclass(frozen=True, slots=True)
class TenantCounts:
    interactions: int
    learnings: int
