"""Learnings: patterns mined from interactions, with their evidence and confidence."""

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.common import Cursor, Name, Strict
from schemas.enums import ConfidenceLevel, LearningType


class Learning(BaseModel):
    id: int
    type: LearningType
    agent_type: str
    statement: str
    task_example: str = Field(description="A task of the cluster the pattern was mined in.")
    actions: list[str] = Field(description="The action sequence the pattern is about.")
    evidence: list[int] = Field(description="Ids of the latest supporting interactions.")
    support: int = Field(description="Interactions of this task cluster with this sequence.")
    successes: int
    success_rate: float
    confidence: float = Field(description="Wilson lower bound of the claimed outcome's rate.")
    confidence_level: ConfidenceLevel
    avg_completion_time: float | None = None
    created_at: datetime
    updated_at: datetime


class ScoredLearning(Learning):
    relevance: float = Field(description="Lexical similarity of the query task to the cluster.")
    score: float = Field(description="relevance x confidence x agent weight.")


class LearningsQuery(Strict):
    """Query string of `GET /learnings`; values arrive as text, so this one is lax."""

    model_config = Strict.model_config | {"strict": False}

    task: str | None = Field(default=None, min_length=1, max_length=8192)
    agent_type: Name | None = None
    type: LearningType | None = None
    min_confidence: ConfidenceLevel = ConfidenceLevel.LOW
    limit: int = Field(default=10, ge=1, le=100)
    cursor: Cursor | None = None
