"""WebSocket frames on `/ws`. Every client frame carries a request id (`id`);
replies and errors name the request they answer; pushes name channel and offset.
See docs/protocol.md."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from schemas.common import Page, Strict
from schemas.errors import ErrorDetail
from schemas.interactions import Interaction, RecordResult
from schemas.learnings import LearningsQuery, ScoredLearning

RequestId = Annotated[str, Field(min_length=1, max_length=64)]


class RecordOp(Strict):
    """Client frames declare `id` first, so it leads the encoded frame: an
    oversized frame's error can then still name it (docs/protocol.md)."""

    id: RequestId
    op: Literal["record"]
    interactions: list[Interaction] = Field(min_length=1, max_length=100_000)


class LearningsOp(Strict):
    id: RequestId
    op: Literal["learnings"]
    query: LearningsQuery


class PingOp(Strict):
    id: RequestId
    op: Literal["ping"]


ClientFrame = Annotated[RecordOp | LearningsOp | PingOp, Field(discriminator="op")]


class Limits(BaseModel):
    max_frame_bytes: int
    max_batch: int


class HelloFrame(BaseModel):
    type: Literal["hello"] = "hello"
    version: str
    tenant: str
    agent: str | None
    heartbeat_s: float
    limits: Limits


class RecordReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["record"] = "record"
    id: str
    data: RecordResult


class LearningsReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["learnings"] = "learnings"
    id: str
    data: Page[ScoredLearning]


class PongReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["ping"] = "ping"
    id: str


Reply = Annotated[RecordReply | LearningsReply | PongReply, Field(discriminator="op")]


class ErrorFrame(BaseModel):
    type: Literal["error"] = "error"
    id: str | None
    """The request this error answers; null when the frame had no readable id."""
    error: ErrorDetail


class PushFrame(BaseModel):
    """A message pushed on a channel. Emitted by the knowledge hub (issue 3)."""

    type: Literal["push"] = "push"
    channel: str
    offset: int
    epoch: str
    data: dict[str, Any]


ServerFrame = Annotated[HelloFrame | ErrorFrame | PushFrame | Reply, Field(discriminator="type")]
