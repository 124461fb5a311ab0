"""The application factory and its lifecycle.

Start-up opens the store, then starts the services. Shutdown runs in a fixed order,
which aiohttp's runner gives us: stop accepting (sites stop) → close WebSockets with
1001 (`on_shutdown`) → stop the extractor and drain the write queue (services
context exits) → close the store (store context exits).
"""

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server.auth.service import AuthMode, AuthService
from server.chat.service import SessionService
from server.core.clock import Clock, SystemClock
from server.core.embedder import Embedder, make_embedder
from server.core.errors import ConfigError
from server.core.looplag import LoopLagMonitor
from server.core.settings import Settings
from server.core.window import DAY, Window
from server.db.sqlite import SqliteStore
from server.hub.messages import KnowledgeService
from server.hub.service import HubService
from server.kb.service import KnowledgeBaseService
from server.kb.states import StateRules
from server.learning.alerts import announce_anomalies
from server.learning.claims import ClaimRules
from server.learning.extractor import Extractor
from server.learning.index import LearningIndex
from server.learning.miner import MinerParams
from server.learning.miner_host import miner_host
from server.learning.ranking import RankParams
from server.learning.service import LearningService
from server.performance.service import PerformanceService
from server.strategy.bandit import BanditParams
from server.strategy.changepoint import DetectorParams
from server.strategy.service import StrategyService
from server.training.service import TrainingParams, TrainingService
from server.web.context import SERVICES, SETTINGS, Services
from server.web.http import add_routes
from server.web.middleware import kaizen_middleware
from server.web.ws import websocket
from server.workflows import WorkflowConfig
from server.workflows.service import WorkflowService

log = logging.getLogger("kaizen.app")
STORE = web.AppKey("store", SqliteStore)
CLOCK = web.AppKey("clock", Clock)
EMBEDDER: web.AppKey[Embedder | None] = web.AppKey("embedder")


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[kaizen_middleware])
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app.cleanup_ctx.append(store_context)
    app.cleanup_ctx.append(embedder_context)
    app.cleanup_ctx.append(services_context)
    app.on_shutdown.append(close_websockets)
    add_routes(app)
    app.router.add_get("/ws", websocket)
    return app


async def store_context(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    store = SqliteStore(
        s.db_path,
        synchronous=s.sqlite_synchronous,
        read_connections=s.read_connections,
        batch_max=s.write_batch_max,
        queue_max=s.write_queue_max,
        commit_interval_s=s.write_commit_interval_s,
        clock=app[CLOCK],
    )
    await store.open()
    app[STORE] = store
    yield
    await store.close()
    log.info("store closed")


async def embedder_context(app: web.Application) -> AsyncIterator[None]:
    """Load the embedding model (once per process), or run lexical only."""
    s = app[SETTINGS]
    embedder = make_embedder(
        s.embedding_model,
        device=s.embedding_device,
        dtype=s.embedding_dtype,
        threads=s.embedding_threads,
        batch_max=s.embedding_batch_max,
        cache_size=s.embedding_cache_size,
    )
    if embedder is not None:
        await embedder.start()
    app[EMBEDDER] = embedder
    yield
    if embedder is not None:
        await embedder.close()


async def services_context(app: web.Application) -> AsyncIterator[None]:
    s, store, clock = app[SETTINGS], app[STORE], app[CLOCK]
    auth = AuthService(store, cache_ttl_s=s.token_cache_ttl_s, require_auth=s.require_auth)
    await auth.start()
    if auth.mode is AuthMode.OPEN and not s.is_loopback:
        raise ConfigError(
            f"refusing to serve {s.host} without tokens: anyone could read and write. "
            "Create one with `kaizen token create --tenant T --agent A`, or bind 127.0.0.1."
        )
    hub = HubService(store.hub, s, clock.now)
    knowledge = KnowledgeService(store.hub, hub.channels)
    kb = KnowledgeBaseService(
        store.kb,
        app[EMBEDDER],
        clock,
        knowledge,
        rules=StateRules(s.kb_min_uses, s.kb_validate_percent, s.kb_deprecate_percent),
        min_votes=s.kb_promote_min_votes,
        min_applications=s.kb_promote_min_applications,
    )
    index = LearningIndex(s.recency_half_life_days * DAY)
    extractor = Extractor(
        store,
        miner_host(miner_params(s), in_process=s.miner_process),
        index,
        app[EMBEDDER],
        clock,
        interval_s=s.extractor_interval_s,
        sweep_interval_s=s.sweep_interval_s,
        backlog_max=s.extractor_backlog_max,
        announce=lambda found: announce_anomalies(hub, found),
    )
    learning = LearningService(
        store,
        index,
        app[EMBEDDER],
        clock,
        max_batch=s.max_batch,
        ranking=rank_params(s),
        lexical_postings_max=s.lexical_postings_max,
        holdout_fraction=s.learning_holdout_fraction,
    )
    performance = PerformanceService(
        store,
        clock,
        lookback_s=s.performance_lookback_days * DAY,
        max_rows=s.performance_max_rows,
    )
    strategy = StrategyService(
        store, extractor, learning, performance, app[EMBEDDER], clock, bandit_params(s)
    )
    workflows = WorkflowService(
        store,
        clock,
        WorkflowConfig(idle_s=s.workflow_idle_s, min_support=s.workflow_min_support),
        tick_s=s.workflow_tick_s,
        checkpoint_s=s.workflow_checkpoint_s,
        publish=extractor.state_workflows,
        publish_s=s.workflow_publish_s,
        published=s.workflow_learnings,
    )
    sessions = SessionService(
        store,
        app[EMBEDDER],
        clock,
        s.data_dir / "logs",
        idle_s=s.session_idle_s,
        sweep_s=s.session_sweep_s,
    )
    training = TrainingService(store, hub, clock, training_params(s))
    sessions.on_processed = lambda tenant, _sid, messages, _report: training.after_session(
        tenant, messages
    )
    sessions.fine_tunes = store.jobs.succeeded
    await extractor.start()
    await hub.start()
    await strategy.start()
    await workflows.start()
    await sessions.start()
    await training.start()
    loop_lag = LoopLagMonitor(window_s=s.loop_lag_window_s)
    await loop_lag.start()
    app[SERVICES] = Services(
        s,
        store,
        auth,
        learning,
        extractor,
        hub,
        knowledge,
        kb,
        strategy,
        performance,
        workflows,
        sessions,
        training,
        loop_lag,
    )
    log.info("services started", extra={"auth": auth.mode.value, "retrieval": learning.retrieval})
    yield
    await loop_lag.stop()
    await training.stop()
    await sessions.stop()
    await workflows.stop()
    await hub.stop()
    await extractor.stop()
    await store.drain()
    log.info("writes drained")


def miner_params(s: Settings) -> MinerParams:
    window = Window(
        span_s=s.learning_window_days * DAY, half_life_s=s.learning_half_life_days * DAY
    )
    rules = ClaimRules(
        window=window,
        min_support=s.min_support,
        prior_outcomes=s.prior_outcomes,
        retire_support=s.retire_support,
        min_gain=s.optimization_min_gain,
        best_practice_breadth=s.best_practice_breadth,
    )
    return MinerParams(
        claims=rules,
        jaccard_similarity=s.cluster_similarity,
        cosine_similarity=s.semantic_cluster_similarity,
        evidence_max=s.evidence_max,
        anomaly_threshold=s.anomaly_threshold,
        familiarity=s.anomaly_familiarity,
        min_history=s.anomaly_min_history,
    )


def bandit_params(s: Settings) -> BanditParams:
    return BanditParams(
        discount=s.strategy_discount,
        discount_from="first_change" if s.strategy_change_detection else "start",
        backoff_outcomes=s.strategy_backoff_outcomes,
        detector=DetectorParams() if s.strategy_change_detection else None,
    )


def training_params(s: Settings) -> TrainingParams:
    return TrainingParams(
        base_model=s.training_base_model,
        root=s.data_dir / "models",
        workers=s.training_workers,
        threads=s.training_threads,
        window_s=s.training_window_days * DAY,
        replay_fraction=s.training_replay_fraction,
        held_out_fraction=s.training_held_out_fraction,
        min_examples=s.training_min_examples,
        margin=s.training_gate_margin,
        epochs=s.training_epochs,
        max_steps=s.training_max_steps,
        learning_rate=s.training_learning_rate,
        batch_size=s.training_batch_size,
        lora_r=s.training_lora_r,
        max_length=s.training_max_length,
        device=s.training_device,
        min_messages=s.training_min_messages,
        schedule_s=s.training_schedule_s,
    )


def rank_params(s: Settings) -> RankParams:
    return RankParams(
        alpha=s.semantic_weight,
        cross_agent_weight=s.cross_agent_weight,
        recency_half_life_s=s.recency_half_life_days * DAY,
        min_relevance=s.min_relevance,
        relevance_power=s.relevance_power,
    )


async def close_websockets(app: web.Application) -> None:
    sockets = list(app[SERVICES].sockets)
    grace = app[SETTINGS].shutdown_timeout_s / 2
    await asyncio.gather(*(conn.close(grace_s=grace) for conn in sockets))
    log.info("closed %d websockets with 1001", len(sockets))
