"""Interactions: one attempt by an agent at a task."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Discriminator, Field, Tag, WithJsonSchema

from schemas.common import Id, Name, Strict, Timestamp


def _objects(values: list[Any]) -> list[Any]:
    for value in values:
        if type(value) is not dict:
            raise ValueError("each item must be a JSON object")
    return values


def _object(value: Any) -> Any:
    if type(value) is not dict:
        raise ValueError("must be a JSON object")
    return value


JsonObjects = Annotated[
    list[Any],
    AfterValidator(_objects),
    WithJsonSchema({"type": "array", "items": {"type": "object"}}),
]
"""A list of JSON objects, checked shallowly: pydantic's `list[dict[str, Any]]`
copies every object and cost a third of ingest validation (bench/ingest.py)."""
JsonObject = Annotated[Any, AfterValidator(_object), WithJsonSchema({"type": "object"})]
FieldName = Annotated[str, Field(min_length=1, max_length=128)]


class Interaction(Strict):
    agent_type: Name
    task_description: str = Field(min_length=1, max_length=8192)
    actions_taken: JsonObjects = Field(default_factory=list, max_length=256)
    results: JsonObjects = Field(default_factory=list, max_length=256)
    success: bool
    completion_time: float = Field(ge=0, le=1e7, description="Seconds the attempt took.")
    iterations: int = Field(default=1, ge=0, le=1_000_000)
    errors_encountered: int = Field(default=0, ge=0, le=1_000_000)
    metadata: JsonObject = Field(default_factory=dict)
    timestamp: Timestamp | None = Field(
        default=None, strict=False, description="When it happened (ISO 8601); now if absent."
    )
    session_id: str | None = Field(default=None, min_length=1, max_length=128)
    volatile_fields: list[FieldName] = Field(
        default_factory=list,
        max_length=64,
        description="Action fields that do not identify the action (added to the default list).",
    )
    offered_learnings: list[Id] = Field(
        default_factory=list,
        max_length=100,
        description="Ids of the learnings the agent was offered for this attempt.",
    )
    applied_learnings: list[Id] = Field(
        default_factory=list,
        max_length=100,
        description="Ids of the learnings the agent followed in this attempt.",
    )
    learnings_held_out: bool = Field(
        default=False,
        description="The attempt asked for learnings and got none, held out for the "
        "tenant's hold-out (`held_out` in the reply).",
    )


class InteractionBatch(Strict):
    interactions: list[Interaction] = Field(min_length=1, max_length=100_000)


def _record_kind(value: Any) -> str:
    if isinstance(value, dict) and "interactions" in value:
        return "batch"
    return "one"


RecordRequest = Annotated[
    Annotated[Interaction, Tag("one")] | Annotated[InteractionBatch, Tag("batch")],
    Discriminator(_record_kind),
]
"""`POST /interactions` takes one interaction or `{"interactions": [...]}`."""


class StoredInteraction(Interaction):
    id: int
    recorded_at: datetime


class RecordResult(BaseModel):
    ids: list[int]
