"""`/stats` and the `stats` frame: one view of the server for one tenant."""

import time

import server
from schemas import Counts, Stats
from server.web.context import Services


async def collect_stats(svc: Services, tenant: str) -> Stats:
    counts = await svc.stores.interactions.counts(tenant)
    return Stats(
        version=server.__version__,
        uptime_s=time.time() - svc.started_at,
        tenant=tenant,
        counts=Counts(interactions=counts.interactions, learnings=counts.learnings),
        writer=svc.stores.db.writer_stats(),
        extractor=svc.extractor.stats(),
        websockets=len(svc.sockets),
        hub=svc.hub.stats(tenant),
        learning=svc.learning.stats(svc.extractor.sweeps, svc.extractor.anomalies),
        learning_effect=await svc.learning.effect(tenant),
        sessions=await svc.chat.stats(tenant),
        loop_lag=svc.loop_lag.snapshot(),
    )
