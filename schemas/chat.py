"""Chat sessions: messages in, and after the session ends,
topics, preferences, searchable memory and training examples out."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.common import Name, Strict
from schemas.interactions import JsonObject
from schemas.system import SessionCounts

SessionKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
Role = Literal["user", "assistant", "system", "tool"]


class SessionState(StrEnum):
    OPEN = "open"
    ENDED = "ended"
    """Ended and queued for the pipeline."""
    PROCESSED = "processed"


class SessionStart(Strict):
    session_id: SessionKey | None = Field(default=None, description="Default: a new random id.")
    agent: Name | None = Field(default=None, description="Default: the token's agent.")
    metadata: JsonObject = Field(default_factory=dict)


class ChatMessage(Strict):
    role: Role
    content: str = Field(min_length=1, max_length=32_768)
    metadata: JsonObject = Field(default_factory=dict)


class MessageAdded(BaseModel):
    session_id: str
    seq: int = Field(description="The message's position in the session, from 1.")


class TopicOut(BaseModel):
    phrase: str
    score: float


class PreferenceOut(BaseModel):
    name: str
    value: str
    confidence: float
    signals: list[str] = Field(description="The signals that decided it.")


class StageOut(BaseModel):
    name: str
    ok: bool
    seconds: float
    error: str | None = None


class SessionReport(BaseModel):
    """What the pipeline found when the session ended."""

    topics: list[TopicOut]
    topic_method: str
    preferences: list[PreferenceOut]
    memory_items: int
    examples_kept: int
    examples_dropped: dict[str, int]
    stages: list[StageOut]
    processed_at: datetime


class SessionInfo(BaseModel):
    id: str
    state: SessionState
    agent: str
    started_at: datetime
    last_activity: datetime
    ended_at: datetime | None
    messages: int
    metadata: JsonObject
    report: SessionReport | None = None


class MemoryQuery(Strict):
    """Query string of `GET /memory/search`; lax because it arrives as text."""

    model_config = Strict.model_config | {"strict": False}

    query: str = Field(min_length=1, max_length=2000)
    session_id: SessionKey | None = None
    limit: int = Field(default=10, ge=1, le=100)


class MemoryHit(BaseModel):
    session_id: str
    role: str
    content: str
    at: datetime
    score: float = Field(description="Cosine to the query (embedding) or BM25, max-normalised.")


class MemoryHits(BaseModel):
    method: Literal["embedding", "lexical"]
    items: list[MemoryHit]


SessionStats = SessionCounts
