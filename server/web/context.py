"""What the transports reach through the application: settings and services."""

import time
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from server.auth.service import AuthService, Principal
from server.chat.service import ChatService
from server.core.looplag import LoopLagMonitor
from server.core.settings import Settings
from server.hub.messages import MessageService
from server.hub.service import HubService
from server.hub.subscriptions import Peer
from server.kb.service import KnowledgeBaseService
from server.learning.extractor import Extractor
from server.learning.service import LearningService
from server.performance.service import PerformanceService
from server.stores import Stores
from server.strategy.service import StrategyService
from server.training.service import TrainingService
from server.workflows.service import WorkflowService


@dataclass
class Services:
    settings: Settings
    stores: Stores
    auth: AuthService
    learning: LearningService
    extractor: Extractor
    hub: HubService
    messages: MessageService
    kb: KnowledgeBaseService
    strategy: StrategyService
    performance: PerformanceService
    workflows: WorkflowService
    chat: ChatService
    training: TrainingService
    loop_lag: LoopLagMonitor
    started_at: float = field(default_factory=time.time)
    sockets: "set[Socket]" = field(default_factory=set)


class Socket(Protocol):
    """A `/ws` connection, as the ops it runs and the application see it."""

    svc: Services
    caller: Principal
    peer: Peer

    async def close(self, code: int = ..., message: bytes = ..., grace_s: float = ...) -> None:
        """Idempotent."""


SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
PRINCIPAL = web.RequestKey("principal", Principal)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]
