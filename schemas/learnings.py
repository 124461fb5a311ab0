"""Learnings: patterns mined from interactions, with their evidence and confidence."""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.common import Cursor, Name, Page, Strict, Timestamp
from schemas.enums import ConfidenceLevel, LearningType


class LearningStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"
    """Its evidence left the window or decayed away; served again if it returns."""


class Trigger(BaseModel):
    """ERROR_RECOVERY: when `action` fails with `error`, the learning's actions recover."""

    action: str
    error: str


class Gain(BaseModel):
    """OPTIMIZATION: how much better the learning's actions do than their peers."""

    metric: Literal["completion_time", "iterations"]
    value: float = Field(description="Fraction saved: 0.4 means 40% less than the peers.")
    achieved: float = Field(description="Mean of the metric with these actions.")
    baseline: float = Field(description="Mean of the metric with the peers' actions.")


class Effect(BaseModel):
    """What following the learning did: the success rate of attempts that applied
    it against that of similar attempts that did not (offered and not applied, or
    not offered), with a 95% interval on the difference (Newcombe, 1998)."""

    applied: int = Field(description="Attempts that applied it.")
    applied_successes: int
    compared: int = Field(description="Similar attempts that did not apply it.")
    compared_successes: int
    lift: float = Field(description="Success rate applied minus success rate compared.")
    low: float = Field(description="Lower end of the 95% interval of `lift`.")
    high: float = Field(description="Upper end of the 95% interval of `lift`.")


class Scope(BaseModel):
    clusters: int = Field(description="Task clusters the evidence comes from.")
    agent_types: int = Field(description="Agent types the evidence comes from.")


class Learning(BaseModel):
    id: int
    type: LearningType
    status: LearningStatus
    agent_type: str = Field(description='"*" for a best practice held by several agent types.')
    statement: str
    task_example: str = Field(description="A task of the cluster the pattern was mined in.")
    actions: list[str] = Field(
        description="The action sequence, one rendered step each (ERROR_RECOVERY: the recovery)."
    )
    steps: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The same steps as structured actions, as agents recorded them (less "
        "volatile fields); in a ranked reply, slots are filled from the query task.",
    )
    slots: list[str] = Field(
        default_factory=list,
        description='Names of the slots in `steps` ("{object}"), filled from the task when served.',
    )
    evidence_tasks: list[str] = Field(
        default_factory=list,
        description="Its latest evidence tasks, which ranking compares the query with.",
    )
    task_templates: list[str] = Field(
        default_factory=list,
        description='A slotted learning\'s evidence tasks with the slots marked ("put the {object} away"), which its slots are filled from.',
    )
    avoid: bool = Field(
        default=False, description="The steps are what not to do (FAILURE_PATTERN)."
    )
    effect: Effect | None = Field(
        default=None, description="Measured effect of applying it, once it was applied."
    )
    trigger: Trigger | None = None
    gain: Gain | None = None
    scope: Scope
    evidence: list[int] = Field(description="Ids of the latest supporting interactions.")
    support: float = Field(description="Interactions behind it inside the window, decayed by age.")
    successes: float = Field(description="Of `support`, the successful ones (decayed).")
    success_rate: float
    confidence: float = Field(description="Wilson lower bound of the claim, on decayed counts.")
    confidence_level: ConfidenceLevel
    avg_completion_time: float | None = None
    first_seen: datetime
    last_seen: datetime
    created_at: datetime
    updated_at: datetime


class MatchReason(BaseModel):
    """Why a learning matched a query: the parts of its score."""

    similarity: float = Field(description="Cosine of the query task to the learning's tasks.")
    similarity_kind: Literal["embedding", "terms"]
    lexical: float = Field(description="BM25 of the query against the learning, max-normalised.")
    relevance: float = Field(description="alpha x similarity + (1 - alpha) x lexical.")
    confidence: float
    recency: float = Field(description="2^(-age of last evidence / half-life).")
    agent_weight: float
    effect_weight: float = Field(
        default=1.0, description="1, less once applying the learning was measured to hurt."
    )
    score: float = Field(
        description="relevance^relevance_power x confidence x recency x agent_weight x effect_weight."
    )
    matched_task: str | None = Field(description="The learning's task nearest the query.")
    matched_terms: list[str] = Field(description="Query terms found in the learning.")


class ScoredLearning(Learning):
    relevance: float
    score: float
    why: MatchReason


class LearningsPage(Page[ScoredLearning]):
    held_out: bool = Field(
        default=False,
        description="Learnings were withheld from this request for the tenant's hold-out; "
        "record the attempt with learnings_held_out so its outcome counts as the control.",
    )


class TenantEffect(BaseModel):
    """What the tenant's learnings did: attempts offered learnings against attempts
    whose learnings were held out (`learning_holdout_fraction`), with a 95% interval
    on the difference (Newcombe, 1998)."""

    holdout_fraction: float
    offered: int = Field(description="Attempts that were offered learnings.")
    offered_successes: int
    held_out: int = Field(description="Attempts whose learnings were held out.")
    held_out_successes: int
    lift: float | None = Field(description="Success rate offered minus held out.")
    low: float | None
    high: float | None


class LearningsQuery(Strict):
    """Query string of `GET /learnings`; values arrive as text, so this one is lax."""

    model_config = Strict.model_config | {"strict": False}

    task: str | None = Field(default=None, min_length=1, max_length=8192)
    agent_type: Name | None = None
    type: LearningType | None = None
    min_confidence: ConfidenceLevel = ConfidenceLevel.LOW
    since: Timestamp | None = Field(default=None, description="Only learnings seen since then.")
    limit: int = Field(default=10, ge=1, le=100)
    cursor: Cursor | None = None
