"""The extractor: a background task that folds committed interactions into patterns.

The store tells it of every committed batch (`Store.on_commit`), in id order; each
tick it folds what arrived in a one-thread executor (mining is CPU work and stays
off the event loop) and commits the fold's clusters, patterns, learnings and new
cursor in one write. At start it restores the miner and catches up from the store
past the persisted cursor, so a crash between a commit and its fold loses nothing.
A learning thus appears about one tick plus one fold after the interaction that
completes its evidence.
"""

import asyncio
import contextlib
import enum
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from schemas import ExtractorStats
from server.learning.miner import Miner
from server.store import Store
from server.store.records import CommittedBatch

log = logging.getLogger("kaizen.extractor")

CATCH_UP_BATCH = 5000


class ExtractorState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class Extractor:
    def __init__(self, store: Store, miner: Miner, *, interval_s: float) -> None:
        self._store = store
        self._miner = miner
        self._interval = interval_s
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="kaizen-miner")
        self._task: asyncio.Task[None] | None = None
        self._pending: list[CommittedBatch] = []
        self._wake = asyncio.Event()
        self.state = ExtractorState.NEW
        self.folded = 0

    async def start(self) -> None:
        """Restore the miner, catch up with the store, then run. Call before the
        server takes writes. Not safe to cancel."""
        await self._restore()
        self._store.on_commit(self._receive)
        self._task = asyncio.create_task(self._run(), name="kaizen-extractor")
        self.state = ExtractorState.RUNNING

    async def _restore(self) -> None:
        clusters, patterns, cursor = await self._store.mining_state()
        self._miner.restore(clusters, patterns, cursor)
        while batches := await self._store.committed_after(self._miner.cursor, CATCH_UP_BATCH):
            await self._fold(batches)

    async def stop(self) -> None:
        """Let the fold in progress finish, fold what is pending, then stop.
        Idempotent. A fold is never cancelled halfway: its interactions would be
        past the saved cursor yet missing from the saved patterns."""
        if self.state is not ExtractorState.RUNNING or self._task is None:
            self.state = ExtractorState.STOPPED
            return
        self.state = ExtractorState.STOPPED
        self._wake.set()
        await self._task
        await self.step()
        self._pool.shutdown(wait=True)

    def _receive(self, batch: CommittedBatch) -> None:
        self._pending.append(batch)

    def stats(self) -> ExtractorStats:
        backlog = sum(len(b.items) for b in self._pending)
        lag = time.time() - self._pending[0].recorded_at if self._pending else 0.0
        return ExtractorStats(
            cursor=self._miner.cursor, backlog=backlog, folded=self.folded, lag_s=lag
        )

    async def _run(self) -> None:
        while self.state is ExtractorState.RUNNING:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            try:
                await self.step()
            except Exception:
                log.exception("extractor step failed; reloading the miner from the store")
                await self._recover()

    async def _recover(self) -> None:
        """Drop the unsaved fold: reload what was persisted and refold from the store."""
        try:
            await self._restore()
        except Exception:
            log.exception("extractor could not reload; retrying next tick")

    async def step(self) -> int:
        """Fold everything committed since the last step; returns how many interactions."""
        batches, self._pending = self._pending, []
        return await self._fold(batches) if batches else 0

    async def _fold(self, batches: list[CommittedBatch]) -> int:
        loop = asyncio.get_running_loop()
        fold = await loop.run_in_executor(self._pool, self._miner.fold, batches)
        await self._store.save_fold(fold, time.time())
        count = sum(len(b.items) for b in batches)
        self.folded += count
        return count
