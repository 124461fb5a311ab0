"""What the transports reach through the application: settings and services."""

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from server.services.auth import AuthService, Principal
from server.services.extractor import Extractor
from server.services.hub import HubService
from server.services.kb import KnowledgeBaseService
from server.services.knowledge import KnowledgeService
from server.services.learning import LearningService
from server.services.looplag import LoopLagMonitor
from server.services.performance import PerformanceService
from server.services.sessions import SessionService
from server.services.strategy import StrategyService
from server.services.training import TrainingService
from server.services.workflows import WorkflowService
from server.settings import Settings
from server.store import Store

if TYPE_CHECKING:
    from server.transport.ws import Connection


@dataclass
class Services:
    settings: Settings
    store: Store
    auth: AuthService
    learning: LearningService
    extractor: Extractor
    hub: HubService
    knowledge: KnowledgeService
    kb: KnowledgeBaseService
    strategy: StrategyService
    performance: PerformanceService
    workflows: WorkflowService
    sessions: SessionService
    training: TrainingService
    loop_lag: LoopLagMonitor
    started_at: float = field(default_factory=time.time)
    sockets: "set[Connection]" = field(default_factory=set)


SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
PRINCIPAL = web.RequestKey("principal", Principal)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]
