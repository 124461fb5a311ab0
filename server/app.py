"""The application factory and its lifecycle.

Start-up runs `COMPONENTS` in order, each an aiohttp cleanup context: the store,
the embedder, then each capability's service, then the table of services the
transports reach. Shutdown: stop accepting (sites stop) → close WebSockets with
1001 (`on_shutdown`) → stop the components in reverse: the writes still queued
are committed before the store closes.
"""

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server.auth.service import AuthMode, AuthService
from server.chat.service import ChatService
from server.core.clock import Clock, SystemClock
from server.core.embedder import Embedder, make_embedder
from server.core.errors import ConfigError
from server.core.looplag import LoopLagMonitor
from server.core.settings import Settings
from server.core.window import DAY, Window
from server.db.database import Database
from server.hub.messages import MessageService
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
from server.stores import Stores
from server.strategy.bandit import BanditParams
from server.strategy.changepoint import DetectorParams
from server.strategy.service import StrategyService
from server.training.service import TrainingParams, TrainingService
from server.web.context import SERVICES, SETTINGS, Services
from server.web.middleware import kaizen_middleware
from server.web.routes import add_routes
from server.web.system import close_sockets_of
from server.web.ws import websocket
from server.workflows import WorkflowConfig
from server.workflows.service import WorkflowService

log = logging.getLogger("kaizen.app")
STORES = web.AppKey("stores", Stores)
CLOCK = web.AppKey("clock", Clock)
EMBEDDER: web.AppKey[Embedder | None] = web.AppKey("embedder")
AUTH = web.AppKey("auth", AuthService)
HUB = web.AppKey("hub", HubService)
MESSAGES = web.AppKey("messages", MessageService)
KB = web.AppKey("kb", KnowledgeBaseService)
LEARNING = web.AppKey("learning", LearningService)
EXTRACTOR = web.AppKey("extractor", Extractor)
PERFORMANCE = web.AppKey("performance", PerformanceService)
STRATEGY = web.AppKey("strategy", StrategyService)
WORKFLOWS = web.AppKey("workflows", WorkflowService)
TRAINING = web.AppKey("training", TrainingService)
CHAT = web.AppKey("chat", ChatService)
LOOP_LAG = web.AppKey("loop_lag", LoopLagMonitor)


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[kaizen_middleware])
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app.cleanup_ctx.extend(COMPONENTS)
    app.on_shutdown.append(close_websockets)
    add_routes(app)
    app.router.add_get("/ws", websocket)
    return app


async def store_component(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    db = Database(
        s.db_path,
        synchronous=s.sqlite_synchronous,
        read_connections=s.read_connections,
        batch_max=s.write_batch_max,
        queue_max=s.write_queue_max,
        commit_interval_s=s.write_commit_interval_s,
    )
    stores = Stores(db, app[CLOCK])
    try:
        await stores.open()
        app[STORES] = stores
        yield
        await stores.drain()
        log.info("writes drained")
    finally:
        await stores.close()
        log.info("store closed")


async def embedder_component(app: web.Application) -> AsyncIterator[None]:
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
    app[EMBEDDER] = embedder
    if embedder is None:
        yield
        return
    await embedder.start()
    try:
        yield
    finally:
        await embedder.close()


async def auth_component(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    auth = AuthService(
        app[STORES].tokens, cache_ttl_s=s.token_cache_ttl_s, require_auth=s.require_auth
    )
    await auth.start()
    if auth.mode is AuthMode.OPEN and not s.is_loopback:
        raise ConfigError(
            f"refusing to serve {s.host} without tokens: anyone could read and write. "
            "Create one with `kaizen token create --tenant T --agent A`, or bind 127.0.0.1."
        )
    app[AUTH] = auth
    yield


async def hub_component(app: web.Application) -> AsyncIterator[None]:
    s, stores = app[SETTINGS], app[STORES]
    hub = HubService(stores.hub, s, app[CLOCK].now)
    await hub.start()
    app[HUB] = hub
    app[MESSAGES] = MessageService(stores.hub, hub.channels)
    try:
        yield
    finally:
        await hub.stop()


async def kb_component(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    app[KB] = KnowledgeBaseService(
        app[STORES].kb,
        app[EMBEDDER],
        app[CLOCK],
        app[MESSAGES],
        rules=StateRules(s.kb_min_uses, s.kb_validate_percent, s.kb_deprecate_percent),
        min_votes=s.kb_promote_min_votes,
        min_applications=s.kb_promote_min_applications,
    )
    yield


async def learning_component(app: web.Application) -> AsyncIterator[None]:
    """The index, the extractor that fills it (with its miner) and the service
    that reads it."""
    s, stores, hub = app[SETTINGS], app[STORES], app[HUB]
    index = LearningIndex(s.recency_half_life_days * DAY)
    extractor = Extractor(
        stores.interactions,
        stores.learning,
        miner_host(miner_params(s), in_process=s.miner_process),
        index,
        app[EMBEDDER],
        app[CLOCK],
        interval_s=s.extractor_interval_s,
        sweep_interval_s=s.sweep_interval_s,
        backlog_max=s.extractor_backlog_max,
        announce=lambda found: announce_anomalies(hub, found),
    )
    app[LEARNING] = LearningService(
        stores.interactions,
        stores.learning,
        index,
        app[EMBEDDER],
        app[CLOCK],
        max_batch=s.max_batch,
        ranking=rank_params(s),
        lexical_postings_max=s.lexical_postings_max,
        holdout_fraction=s.learning_holdout_fraction,
    )
    app[EXTRACTOR] = extractor
    await extractor.start()
    try:
        yield
    finally:
        await extractor.stop()


async def performance_component(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    app[PERFORMANCE] = PerformanceService(
        app[STORES].executions,
        app[CLOCK],
        lookback_s=s.performance_lookback_days * DAY,
        max_rows=s.performance_max_rows,
    )
    yield


async def strategy_component(app: web.Application) -> AsyncIterator[None]:
    strategy = StrategyService(
        app[STORES].strategy,
        app[EXTRACTOR],
        app[LEARNING],
        app[PERFORMANCE],
        app[EMBEDDER],
        app[CLOCK],
        bandit_params(app[SETTINGS]),
    )
    await strategy.start()
    app[STRATEGY] = strategy
    yield


async def workflows_component(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    workflows = WorkflowService(
        app[STORES].workflows,
        app[CLOCK],
        WorkflowConfig(idle_s=s.workflow_idle_s, min_support=s.workflow_min_support),
        tick_s=s.workflow_tick_s,
        checkpoint_s=s.workflow_checkpoint_s,
        publish=app[EXTRACTOR].state_workflows,
        publish_s=s.workflow_publish_s,
        published=s.workflow_learnings,
    )
    await workflows.start()
    app[WORKFLOWS] = workflows
    try:
        yield
    finally:
        await workflows.stop()


async def training_component(app: web.Application) -> AsyncIterator[None]:
    """Before the chat sessions that may trigger its jobs."""
    stores = app[STORES]
    training = TrainingService(
        stores.jobs,
        stores.chat,
        stores.interactions,
        app[HUB],
        app[CLOCK],
        training_params(app[SETTINGS]),
    )
    await training.start()
    app[TRAINING] = training
    try:
        yield
    finally:
        await training.stop()


async def chat_component(app: web.Application) -> AsyncIterator[None]:
    s, stores, training = app[SETTINGS], app[STORES], app[TRAINING]
    sessions = ChatService(
        stores.chat,
        app[EMBEDDER],
        app[CLOCK],
        s.data_dir / "logs",
        idle_s=s.session_idle_s,
        sweep_s=s.session_sweep_s,
    )
    sessions.on_processed = lambda tenant, _sid, messages, _report: training.after_session(
        tenant, messages
    )
    sessions.fine_tunes = stores.jobs.succeeded
    await sessions.start()
    app[CHAT] = sessions
    try:
        yield
    finally:
        await sessions.stop()


async def loop_lag_component(app: web.Application) -> AsyncIterator[None]:
    loop_lag = LoopLagMonitor(window_s=app[SETTINGS].loop_lag_window_s)
    await loop_lag.start()
    app[LOOP_LAG] = loop_lag
    try:
        yield
    finally:
        await loop_lag.stop()


async def services_component(app: web.Application) -> AsyncIterator[None]:
    """What the transports reach, once every component has started."""
    app[SERVICES] = Services(
        app[SETTINGS],
        app[STORES],
        app[AUTH],
        app[LEARNING],
        app[EXTRACTOR],
        app[HUB],
        app[MESSAGES],
        app[KB],
        app[STRATEGY],
        app[PERFORMANCE],
        app[WORKFLOWS],
        app[CHAT],
        app[TRAINING],
        app[LOOP_LAG],
    )
    svc = app[SERVICES]
    app[AUTH].on_revoke(lambda token_id: close_sockets_of(svc, token_id))
    log.info(
        "services started",
        extra={"auth": app[AUTH].mode.value, "retrieval": app[LEARNING].retrieval},
    )
    yield


COMPONENTS = (
    store_component,
    embedder_component,
    auth_component,
    hub_component,
    kb_component,
    learning_component,
    performance_component,
    strategy_component,
    workflows_component,
    training_component,
    chat_component,
    loop_lag_component,
    services_component,
)
"""Started in this order, each a cleanup context; stopped in reverse. One that
fails to start stops those started before it (aiohttp's cleanup contexts)."""


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
