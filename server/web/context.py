"""What the transports reach through the application: settings and services."""

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from server.auth.service import AuthService, Principal
from server.chat.service import SessionService
from server.core.looplag import LoopLagMonitor
from server.core.settings import Settings
from server.db.store import Store
from server.hub.messages import KnowledgeService
from server.hub.service import HubService
from server.kb.service import KnowledgeBaseService
from server.learning.extractor import Extractor
from server.learning.service import LearningService
from server.performance.service import PerformanceService
from server.strategy.service import StrategyService
from server.training.service import TrainingService
from server.workflows.service import WorkflowService

if TYPE_CHECKING:
    from server.web.ws import Connection


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
