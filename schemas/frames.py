"""WebSocket frames on `/ws`. Every client frame carries a request id (`id`);
replies and errors name the request they answer; pushes name channel and offset.
See docs/protocol.md."""

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.anomalies import AnomaliesQuery, Anomaly
from schemas.calls import CallOp, CallReply
from schemas.common import Id, Page, Strict
from schemas.errors import ErrorDetail
from schemas.hub import (
    ChannelCreate,
    ChannelInfo,
    ChannelName,
    ChannelPattern,
    DiscoveryDraft,
    Endorsement,
    Engagement,
    HubLimits,
    HubMessage,
    KnowledgeMessage,
    MessageDraft,
    MessageQuery,
    PopularQuery,
    Published,
    SolutionDraft,
    Subscribed,
    Subscription,
    Unsubscribed,
)
from schemas.interactions import Interaction, RecordResult
from schemas.learnings import Learning, LearningsPage, LearningsQuery
from schemas.system import Stats

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


class GetLearningOp(Strict):
    id: RequestId
    op: Literal["get_learning"]
    learning_id: Id


class AnomaliesOp(Strict):
    id: RequestId
    op: Literal["anomalies"]
    query: AnomaliesQuery = Field(default_factory=AnomaliesQuery)


class StatsOp(Strict):
    id: RequestId
    op: Literal["stats"]


class PingOp(Strict):
    id: RequestId
    op: Literal["ping"]


class OpHead(Strict):
    id: RequestId


class PublishOp(Strict):
    id: RequestId
    op: Literal["publish"]
    message: MessageDraft


class ShareSolutionOp(Strict):
    id: RequestId
    op: Literal["share_solution"]
    solution: SolutionDraft


class BroadcastDiscoveryOp(Strict):
    id: RequestId
    op: Literal["broadcast_discovery"]
    discovery: DiscoveryDraft


class SubscribeOp(Subscription, OpHead):
    """The subscription's fields sit at the top level of the frame."""

    op: Literal["subscribe"]


class UnsubscribeOp(Strict):
    id: RequestId
    op: Literal["unsubscribe"]
    channel: ChannelPattern


class QueryKnowledgeOp(Strict):
    id: RequestId
    op: Literal["query_knowledge"]
    query: MessageQuery = Field(default_factory=MessageQuery)


class GetKnowledgeOp(Strict):
    id: RequestId
    op: Literal["get_knowledge"]
    knowledge_id: Id


class VoteOp(Endorsement, OpHead):
    op: Literal["vote"]
    knowledge_id: Id


class AppliedOp(Endorsement, OpHead):
    op: Literal["applied"]
    knowledge_id: Id


class PopularOp(Strict):
    id: RequestId
    op: Literal["popular"]
    query: PopularQuery = Field(default_factory=PopularQuery)


class ChannelsOp(Strict):
    id: RequestId
    op: Literal["channels"]


class CreateChannelOp(ChannelCreate, OpHead):
    op: Literal["create_channel"]


class DeleteChannelOp(Strict):
    id: RequestId
    op: Literal["delete_channel"]
    name: ChannelName


HubOp = (
    PublishOp
    | ShareSolutionOp
    | BroadcastDiscoveryOp
    | SubscribeOp
    | UnsubscribeOp
    | QueryKnowledgeOp
    | GetKnowledgeOp
    | VoteOp
    | AppliedOp
    | PopularOp
    | ChannelsOp
    | CreateChannelOp
    | DeleteChannelOp
)
LearningOp = RecordOp | LearningsOp | GetLearningOp | AnomaliesOp | StatsOp | PingOp
AnyOp = LearningOp | HubOp | CallOp
ClientFrame = Annotated[AnyOp, Field(discriminator="op")]


class Limits(BaseModel):
    max_frame_bytes: int
    max_batch: int
    hub: HubLimits


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
    data: LearningsPage


class LearningReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["get_learning"] = "get_learning"
    id: str
    data: Learning


class AnomaliesReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["anomalies"] = "anomalies"
    id: str
    data: Page[Anomaly]


class StatsReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["stats"] = "stats"
    id: str
    data: Stats


class PongReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["ping"] = "ping"
    id: str


class PublishReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["publish", "share_solution", "broadcast_discovery"] = "publish"
    id: str
    data: Published


class SubscribeReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["subscribe"] = "subscribe"
    id: str
    data: Subscribed


class UnsubscribeReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["unsubscribe"] = "unsubscribe"
    id: str
    data: Unsubscribed


class MessagePageReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["query_knowledge", "popular"] = "query_knowledge"
    id: str
    data: Page[HubMessage]


class MessageReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["get_knowledge"] = "get_knowledge"
    id: str
    data: HubMessage


class EngagementReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["vote", "applied"] = "vote"
    id: str
    data: Engagement


class ChannelsReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["channels"] = "channels"
    id: str
    data: Page[ChannelInfo]


class ChannelReply(BaseModel):
    type: Literal["reply"] = "reply"
    op: Literal["create_channel", "delete_channel"] = "create_channel"
    id: str
    data: ChannelInfo


Reply = Annotated[
    RecordReply
    | LearningsReply
    | LearningReply
    | AnomaliesReply
    | StatsReply
    | PongReply
    | PublishReply
    | SubscribeReply
    | UnsubscribeReply
    | MessagePageReply
    | MessageReply
    | EngagementReply
    | ChannelsReply
    | ChannelReply,
    Field(discriminator="op"),
]


class ErrorFrame(BaseModel):
    type: Literal["error"] = "error"
    id: str | None
    """The request this error answers; null when the frame had no readable id."""
    error: ErrorDetail


class PushFrame(BaseModel):
    """A message published on a channel the connection subscribes to. Sent once per
    connection, however many of its subscriptions match."""

    type: Literal["push"] = "push"
    channel: str
    offset: int
    epoch: str
    data: KnowledgeMessage


class LaggedFrame(BaseModel):
    """This connection fell behind and the server dropped `dropped` of its
    lowest-priority pushes (their offsets are skipped); sent before the next push."""

    type: Literal["lagged"] = "lagged"
    dropped: int


ServerFrame = Annotated[
    HelloFrame | ErrorFrame | PushFrame | LaggedFrame | Reply | CallReply,
    Field(discriminator="type"),
]
