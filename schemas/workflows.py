"""The workflow learner: activity events in, learned command sequences
and next-command predictions out."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.common import MAX_UNIX_S, Strict, Timestamp
from schemas.interactions import JsonObject

EventType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
RunId = Annotated[str, Field(min_length=1, max_length=128)]
UnixSeconds = Annotated[float, Field(strict=False, ge=0, le=MAX_UNIX_S, allow_inf_nan=False)]
"""Epoch seconds as the client sent them; outside the range the Timestamp branch
refuses them too (it never reads a number as milliseconds)."""


class ActivityEvent(Strict):
    """One event: the seed's types (command_executed, file_save, …) or a custom type."""

    event_type: EventType
    session_id: RunId
    timestamp: UnixSeconds | Timestamp = Field(
        union_mode="left_to_right",  # a number stays a float, as it always was
        description="Epoch seconds or ISO 8601 (naive means UTC).",
    )
    metadata: JsonObject = Field(default_factory=dict)


class EventBatch(Strict):
    events: list[ActivityEvent] = Field(min_length=1, max_length=10_000)


class EventsAccepted(BaseModel):
    accepted: int
    batch_id: int


class RunOutcome(Strict):
    """A client's report of how a workflow session really ended; it replaces the
    inferred outcome."""

    session_id: RunId
    success: bool


class OutcomeAccepted(BaseModel):
    session_id: str
    applied: bool = Field(description="False when the session is neither open nor recent.")


class WorkflowsQuery(Strict):
    """Query string of `GET /workflows`; lax because it arrives as text."""

    model_config = Strict.model_config | {"strict": False}

    min_support: int | None = Field(default=None, ge=1, le=1_000_000)
    min_length: int | None = Field(default=None, ge=2, le=5)
    limit: int = Field(default=50, ge=1, le=1000)


class WorkflowPatternOut(BaseModel):
    commands: list[str]
    support: int = Field(description="Learned sessions containing the sequence.")
    success_rate: float
    confidence: float = Field(description="Wilson lower bound of the success rate (95%).")
    support_error: int = Field(description="Lossy Counting: support may be low by this much.")
    first_seen: datetime
    last_seen: datetime
    examples: list[str] = Field(description="Ids of sessions that contained it.")


class Workflows(BaseModel):
    items: list[WorkflowPatternOut]


class NextQuery(Strict):
    """Query string of `GET /workflows/next`; lax because it arrives as text."""

    model_config = Strict.model_config | {"strict": False}

    after: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Commands, comma-separated; one that failed ends in '!' (`pytest!`).",
    )
    session_id: RunId | None = Field(
        default=None,
        description=(
            "Alone: predict after what this session has run. With `after`: `after` is "
            "the context and the session's recent commands tell the developer's habits."
        ),
    )
    k: int = Field(default=3, ge=1, le=20)


class NextCommand(BaseModel):
    command: str
    probability: float


class NextCommands(BaseModel):
    after: list[str]
    source: Literal["after", "session"]
    predictions: list[NextCommand]


class WorkflowStatsOut(BaseModel):
    """The statistics, per tenant."""

    running: bool
    events_processed: int
    errors: int
    sessions_created: int
    sessions_closed: int
    sessions_learned: int
    sessions_skipped: int
    outcomes_reported: int
    active_sessions: int
    patterns_learned: int
    patterns_tracked: int
    commands_known: int
