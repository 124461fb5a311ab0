"""Anomaly alerts: each anomaly the miner finds is announced as a WARNING on its
tenant's `warnings` channel, so subscribed agents hear of it live."""

import asyncio
import logging

from schemas.hub import KnowledgeType, MessageDraft, Priority
from server.hub.service import HubService
from server.learning.miner import AnomalyDraft

log = logging.getLogger("kaizen.alerts")


def alert(a: AnomalyDraft) -> MessageDraft:
    reasons = "; ".join(r.detail for r in a.reasons)
    return MessageDraft(
        knowledge_type=KnowledgeType.WARNING,
        title=f"Unusual {a.agent_type} interaction (rarity {a.score:.2f})",
        content=f'Task "{a.task_description[:200]}": {reasons}',
        context={"anomaly_id": a.id, "interaction_id": a.interaction_id, "score": a.score},
        priority=Priority.HIGH,
        tags=["anomaly", a.agent_type.lower()[:64]],
        channel="warnings",
        source_agent="kaizen",
    )


async def announce_anomalies(hub: HubService, found: list[AnomalyDraft]) -> None:
    """Publish the alerts. A failed publish is logged, never raised: the anomalies
    are already committed and listed at `GET /anomalies`."""
    results = await asyncio.gather(
        *(hub.announce(a.tenant, alert(a)) for a in found), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            log.warning("anomaly alert not published: %s", result)
