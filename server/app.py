"""The application factory and its lifecycle.

Start-up opens the store, then starts the services. Shutdown runs in a fixed order,
which aiohttp's runner gives us: stop accepting (sites stop) → close WebSockets with
1001 (`on_shutdown`) → stop the extractor and drain the write queue (services
context exits) → close the store (store context exits).
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from server.errors import ConfigError
from server.learning.miner import Miner
from server.services.auth import AuthMode, AuthService
from server.services.extractor import Extractor
from server.services.hub import HubService
from server.services.knowledge import KnowledgeService
from server.services.learning import LearningService
from server.settings import Settings
from server.store import SqliteStore
from server.transport.context import SERVICES, SETTINGS, Services
from server.transport.http import add_routes
from server.transport.middleware import kaizen_middleware
from server.transport.ws import websocket

log = logging.getLogger("kaizen.app")
STORE = web.AppKey("store", SqliteStore)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[kaizen_middleware])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(store_context)
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
    )
    await store.open()
    app[STORE] = store
    yield
    await store.close()
    log.info("store closed")


async def services_context(app: web.Application) -> AsyncIterator[None]:
    s, store = app[SETTINGS], app[STORE]
    auth = AuthService(store, cache_ttl_s=s.token_cache_ttl_s, require_auth=s.require_auth)
    await auth.start()
    if auth.mode is AuthMode.OPEN and not s.is_loopback:
        raise ConfigError(
            f"refusing to serve {s.host} without tokens: anyone could read and write. "
            "Create one with `kaizen token create --tenant T --agent A`, or bind 127.0.0.1."
        )
    miner = Miner(
        similarity=s.cluster_similarity, min_support=s.min_support, evidence_max=s.evidence_max
    )
    extractor = Extractor(store, miner, interval_s=s.extractor_interval_s)
    learning = LearningService(
        store, max_batch=s.max_batch, cross_agent_weight=s.cross_agent_weight
    )
    hub = HubService(store.hub, s, time.time)
    knowledge = KnowledgeService(store.hub, hub.channels)
    await extractor.start()
    await hub.start()
    app[SERVICES] = Services(s, store, auth, learning, extractor, hub, knowledge)
    log.info("services started", extra={"auth": auth.mode.value})
    yield
    await hub.stop()
    await extractor.stop()
    await store.drain()
    log.info("writes drained")


async def close_websockets(app: web.Application) -> None:
    sockets = list(app[SERVICES].sockets)
    grace = app[SETTINGS].shutdown_timeout_s / 2
    await asyncio.gather(*(conn.close(grace_s=grace) for conn in sockets))
    log.info("closed %d websockets with 1001", len(sockets))
