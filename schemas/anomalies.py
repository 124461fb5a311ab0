"""Anomalies: interactions that stand out from their agent type's recent behaviour."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.common import Cursor, Name, Strict, Timestamp

ReasonKind = Literal["novel_action", "unusual_sequence", "duration", "errors"]


class AnomalyReason(BaseModel):
    kind: ReasonKind
    detail: str
    score: float


class Anomaly(BaseModel):
    id: int
    agent_type: str
    interaction_id: int
    task_description: str
    score: float = Field(description="Noisy-OR of the reasons' scores, 0 to 1.")
    reasons: list[AnomalyReason]
    seen_at: datetime = Field(description="When the interaction happened.")


class AnomaliesQuery(Strict):
    """Query string of `GET /anomalies`, newest first; lax because it arrives as text."""

    model_config = Strict.model_config | {"strict": False}

    agent_type: Name | None = None
    since: Timestamp | None = None
    min_score: float = Field(default=0.0, ge=0, le=1)
    limit: int = Field(default=50, ge=1, le=1000)
    cursor: Cursor | None = None
