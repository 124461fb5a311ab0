"""The input of every stage: one ended session, as plain frozen values.

The session service builds a `SessionRecord` from its SQLite rows; the stages only
read it, so one record can be handed to a worker thread without copying.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant", "system", "tool"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    at: float = 0.0  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class SessionRecord:
    tenant: str
    session_id: str
    agent_id: str  # the agent or user the session belongs to
    started_at: float
    ended_at: float | None
    messages: Sequence[Message] = ()

    def indexed(self, *roles: Role) -> list[tuple[int, Message]]:
        """(position in `messages`, message) for the given roles, in order; the
        position is what evidence and dropped-turn reports point at."""
        return [(i, m) for i, m in enumerate(self.messages) if m.role in roles]
