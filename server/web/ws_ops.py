"""What each `/ws` operation does: validate (done by the frame's model), call a
service, wrap the result in its reply frame. `None` means the service queued the
reply itself (subscribe, so that the reply precedes the replayed pushes)."""

from pydantic import BaseModel

from schemas import (
    AnomaliesOp,
    AnomaliesReply,
    AnyOp,
    AppliedOp,
    BroadcastDiscoveryOp,
    ChannelReply,
    ChannelsOp,
    ChannelsReply,
    CreateChannelOp,
    DeleteChannelOp,
    Endorsement,
    EngagementReply,
    GetKnowledgeOp,
    GetLearningOp,
    LearningOp,
    LearningReply,
    LearningsOp,
    LearningsReply,
    MessageDraft,
    MessagePageReply,
    MessageReply,
    PingOp,
    PongReply,
    PopularOp,
    Published,
    PublishOp,
    PublishReply,
    QueryKnowledgeOp,
    RecordOp,
    RecordReply,
    ShareSolutionOp,
    StatsOp,
    StatsReply,
    Subscribed,
    SubscribeOp,
    SubscribeReply,
    Unsubscribed,
    UnsubscribeOp,
    UnsubscribeReply,
    VoteOp,
    encode,
)
from schemas.calls import CallOp
from server.hub.service import discovery_message, solution_message
from server.hub.wsframe import text_frame
from server.web.context import Socket
from server.web.stats import collect_stats
from server.web.ws_calls import call


async def dispatch(conn: Socket, frame: AnyOp) -> BaseModel | None:
    match frame:
        case CallOp():
            return await call(conn, frame)
        case RecordOp() | LearningsOp() | GetLearningOp() | AnomaliesOp() | StatsOp() | PingOp():
            return await _learning(conn, frame)
        case PublishOp() | ShareSolutionOp() | BroadcastDiscoveryOp():
            return await _publish(conn, frame)
        case SubscribeOp() | UnsubscribeOp():
            return await _subscription(conn, frame)
        case ChannelsOp() | CreateChannelOp() | DeleteChannelOp():
            return await _channels(conn, frame)
        case _:
            return await _knowledge(conn, frame)


async def _learning(conn: Socket, frame: LearningOp) -> BaseModel:
    tenant, learning = conn.caller.tenant, conn.svc.learning
    match frame:
        case RecordOp():
            result = await conn.svc.learning.record(tenant, frame.interactions)
            return RecordReply(id=frame.id, data=result)
        case LearningsOp():
            page = await conn.svc.learning.learnings(tenant, frame.query)
            return LearningsReply(id=frame.id, data=page)
        case GetLearningOp():
            found = await learning.get_learning(tenant, frame.learning_id)
            return LearningReply(id=frame.id, data=found)
        case AnomaliesOp():
            anomalies = await learning.anomalies(tenant, frame.query)
            return AnomaliesReply(id=frame.id, data=anomalies)
        case StatsOp():
            return StatsReply(id=frame.id, data=await collect_stats(conn.svc, tenant))
        case PingOp():
            return PongReply(id=frame.id)


PublishFrame = PublishOp | ShareSolutionOp | BroadcastDiscoveryOp
PUBLISH_FRAMES = (PublishOp, ShareSolutionOp, BroadcastDiscoveryOp)


def message_of(frame: PublishFrame) -> MessageDraft:
    """The message a publishing frame asks for."""
    match frame:
        case PublishOp():
            return frame.message
        case ShareSolutionOp():
            return solution_message(frame.solution)
        case BroadcastDiscoveryOp():
            return discovery_message(frame.discovery)


def publish_reply(frame: PublishFrame, published: Published) -> PublishReply:
    return PublishReply(id=frame.id, op=frame.op, data=published)


async def _publish(conn: Socket, frame: PublishFrame) -> BaseModel:
    """The task path; most publishes take `Connection`'s path without a task."""
    return publish_reply(frame, await conn.svc.hub.publish(conn.caller, message_of(frame)))


async def _subscription(conn: Socket, frame: SubscribeOp | UnsubscribeOp) -> BaseModel | None:
    hub = conn.svc.hub
    if isinstance(frame, UnsubscribeOp):
        hub.unsubscribe(conn.peer, frame.channel)
        return UnsubscribeReply(id=frame.id, data=Unsubscribed(channel=frame.channel))

    def reply(data: Subscribed) -> bytes:
        return text_frame(encode(SubscribeReply(id=frame.id, data=data)))

    await hub.subscribe(conn.peer, frame, reply)
    return None


async def _channels(
    conn: Socket, frame: ChannelsOp | CreateChannelOp | DeleteChannelOp
) -> BaseModel:
    hub, tenant = conn.svc.hub, conn.caller.tenant
    match frame:
        case ChannelsOp():
            return ChannelsReply(id=frame.id, data=await hub.list_channels(tenant))
        case CreateChannelOp():
            info = await hub.create_channel(tenant, frame.name)
        case DeleteChannelOp():
            info = await hub.delete_channel(tenant, frame.name)
    return ChannelReply(id=frame.id, op=frame.op, data=info)


async def _knowledge(
    conn: Socket, frame: QueryKnowledgeOp | GetKnowledgeOp | VoteOp | AppliedOp | PopularOp
) -> BaseModel:
    knowledge, caller = conn.svc.messages, conn.caller
    match frame:
        case QueryKnowledgeOp():
            page = await knowledge.query(caller.tenant, frame.query)
            return MessagePageReply(id=frame.id, op=frame.op, data=page)
        case PopularOp():
            page = await knowledge.popular(caller.tenant, frame.query)
            return MessagePageReply(id=frame.id, op=frame.op, data=page)
        case GetKnowledgeOp():
            found = await knowledge.get(caller.tenant, frame.knowledge_id)
            return MessageReply(id=frame.id, data=found)
        case VoteOp():
            engagement = await knowledge.vote(
                caller, frame.knowledge_id, Endorsement(agent=frame.agent)
            )
        case AppliedOp():
            engagement = await knowledge.applied(caller, frame.knowledge_id)
    return EngagementReply(id=frame.id, op=frame.op, data=engagement)
