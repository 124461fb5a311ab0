"""Every capability's store over one database: opened in order, closed in reverse."""

from server.auth.store import TokenStore
from server.chat.store import ChatStore
from server.core.clock import Clock, SystemClock
from server.db.database import Database
from server.db.writer import Writer
from server.hub.store import HubStore
from server.kb.store import KnowledgeBaseStore
from server.learning.store import InteractionStore, LearningStore
from server.performance.store import ExecutionStore
from server.strategy.store import StrategyStore
from server.training.store import JobStore
from server.workflows.store import WorkflowStore


class Stores:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db

        def writer() -> Writer:
            return db.writer

        fetch = db.fetch
        self.tokens = TokenStore(writer, fetch)
        self.interactions = InteractionStore(writer, fetch, clock or SystemClock())
        self.learning = LearningStore(writer, fetch)
        self.hub = HubStore(writer, fetch)
        self.kb = KnowledgeBaseStore(writer, fetch)
        self.strategy = StrategyStore(writer, fetch)
        self.executions = ExecutionStore(writer, fetch)
        self.workflows = WorkflowStore(writer, fetch)
        self.chat = ChatStore(writer, fetch)
        self.jobs = JobStore(writer, fetch)

    async def open(self) -> None:
        """Open the database, then let each store read what it keeps in memory.
        Not safe to cancel."""
        await self.db.open()
        for store in (
            self.interactions,
            self.hub,
            self.strategy,
            self.executions,
            self.workflows,
            self.chat,
            self.jobs,
            self.kb,
        ):
            await store.open()

    async def drain(self) -> None:
        await self.db.drain()

    async def close(self) -> None:
        """Idempotent."""
        await self.db.close()
