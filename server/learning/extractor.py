"""The extractor: a background task that folds committed interactions into patterns.

The store tells it of every committed batch (`InteractionStore.on_commit`), in id order. Each
tick it embeds the task descriptions the miner has not placed yet (micro-batched
with queries, `embedder.py`), folds the batches in the miner's host (a process of
its own by default, `miner_host.py`: mining is CPU work and stays off the event
loop and its GIL), commits the fold's clusters, patterns,
learnings, anomalies and new cursor in one write, and only then applies the fold
to the in-memory index and announces its anomalies. Every `sweep_interval_s` it
restates every claim at the current time, so learnings decay and retire without
new evidence; it does so a slice at a time (SWEEP_SLICES), since restating 128,000
learnings at once held the miner, and so every fold, for seconds. At start it
restores the miner and the index and catches up from the store past the persisted
cursor, so a crash between a commit and its fold loses nothing. A learning thus appears about one tick plus one fold after the
interaction that completes its evidence.
"""

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from schemas import ExtractorStats, LearningType
from server.core.clock import Clock
from server.core.embedder import Embedder
from server.learning.committed import CommittedBatch
from server.learning.index import LearningIndex
from server.learning.miner import AnomalyDraft, FoldResult, MiningState
from server.learning.miner_host import MinerHost
from server.learning.patterns import Evidence
from server.learning.store import InteractionStore, LearningStore
from server.workflows.mining import WorkflowPattern

if TYPE_CHECKING:
    from server.core.vectors import Vector

log = logging.getLogger("kaizen.extractor")

CATCH_UP_BATCH = 5000
BEHIND_READ = 1000
"""Interactions read back per fold while behind. A miner in a thread rebuilds each
from its stored body (~6 µs, `sql.StoredItems`) with the GIL held, so a read of
5,000 held the event loop for ~30 ms and showed in the ack p99 of the writes
arriving meanwhile."""
FOLD_MAX = 5000
"""Most interactions one fold takes: a backlog (a burst of ingest beyond what the
miner keeps up with) is folded in pieces, so no one fold's encoding, commit and
index update holds the event loop for long."""
RESTORE_TASKS_MAX = 100_000
"""Evidence tasks embedded again at start; past this, learnings rank by cluster."""
SWEEP_SLICES = 60
"""A sweep is cut in this many slices, one due every sweep_interval_s / SWEEP_SLICES."""
Announce = Callable[[list[AnomalyDraft]], Awaitable[None]]


class ExtractorState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class Extractor:
    def __init__(
        self,
        interactions: InteractionStore,
        learnings: LearningStore,
        miner: MinerHost,
        index: LearningIndex,
        embedder: Embedder | None,
        clock: Clock,
        *,
        interval_s: float,
        sweep_interval_s: float,
        backlog_max: int = 200_000,
        announce: Announce | None = None,
    ) -> None:
        self._interactions = interactions
        self._learnings = learnings
        self._miner = miner
        self._index = index
        self._embedder = embedder
        self._clock = clock
        self._interval = interval_s
        self._sweep_interval = sweep_interval_s
        self._announce = announce
        self._task: asyncio.Task[None] | None = None
        self._pending: deque[CommittedBatch] = deque()
        self._backlog = 0
        """Interactions in `_pending`."""
        self._backlog_max = backlog_max
        self._behind_since: float | None = None
        """Set while the extractor is behind: pending batches were dropped (past
        backlog_max) and are read back from the store, oldest first."""
        self._alarm: asyncio.Future[None] | None = None
        self._committing: asyncio.Task[None] | None = None
        self._last_sweep = clock.now()
        self.state = ExtractorState.NEW
        self.folded = 0
        self.sweeps = 0
        """Whole sweeps done: every claim restated once per sweep."""
        self._swept = 0
        self.anomalies = 0

    async def start(self) -> None:
        """Restore the miner and the index, catch up with the store, then run. Call
        before the server takes writes. Not safe to cancel."""
        await self._restore()
        self._interactions.on_commit(self._receive)
        self._task = asyncio.create_task(self._run(), name="kaizen-extractor")
        self.state = ExtractorState.RUNNING

    async def _restore(self) -> None:
        state = await self._learnings.mining_state()
        await self._embed_clusters(state)
        await self._miner.restore(state)
        self._index.clear()
        self._index.add_clusters(state.clusters)
        for tenant, entry in await self._learnings.active():
            self._index.load(tenant, entry)
        await self._embed_tasks()
        while batches := await self._interactions.committed_after(
            self._miner.cursor, CATCH_UP_BATCH
        ):
            await self._fold(batches)
        await self._settle()

    async def _embed_clusters(self, state: MiningState) -> None:
        """Clusters made without embeddings (the `ml` extra was absent) get their
        leader's, so semantic placement and ranking can use them."""
        missing = [c for c in state.clusters if c.vector is None]
        if self._embedder is None or not missing:
            return
        vectors = await self._embedder.embed([c.example for c in missing])
        for cluster, vector in zip(missing, vectors, strict=True):
            cluster.vector = vector

    async def _embed_tasks(self) -> None:
        """Evidence tasks of the restored learnings get their embeddings back, so
        ranking compares the query with each learning's own tasks at once."""
        missing = self._index.unembedded()[:RESTORE_TASKS_MAX]
        if self._embedder is None or not missing:
            return
        vectors = await self._embedder.embed([task for _, task in missing])
        self._index.add_tasks((t, task, v) for (t, task), v in zip(missing, vectors, strict=True))

    async def stop(self) -> None:
        """Let the fold in progress finish, fold what is pending, then stop.
        Idempotent. A fold is never cancelled halfway: its interactions would be
        past the saved cursor yet missing from the saved patterns."""
        if self.state is not ExtractorState.RUNNING or self._task is None:
            self.state = ExtractorState.STOPPED
            await self._miner.close()
            return
        self.state = ExtractorState.STOPPED
        if self._alarm is not None:
            _ring(self._alarm)
        await self._task
        await self.step()
        await self._miner.close()

    async def history(
        self, tenant: str, task: str, vector: "Vector | None"
    ) -> tuple[int | None, dict[str, Evidence]]:
        """The cluster nearest `task` and each agent type's pooled evidence on it,
        read between folds, so the miner is seen whole. Safe to cancel: the read
        finishes unobserved and changes nothing."""
        return await self._miner.history(tenant, task, vector, self._clock.now())

    def _receive(self, batch: CommittedBatch) -> None:
        """Hold a committed batch for the next fold. Past backlog_max (a burst of
        ingest beyond what the miner keeps up with) drop what is held: the store
        has it all, and `_next_batches` reads it back in order, so memory stays
        bounded however long the burst."""
        if self._behind_since is not None:
            return
        self._pending.append(batch)
        self._backlog += len(batch.items)
        if self._backlog > self._backlog_max:
            self._fall_behind(self._pending[0].recorded_at)

    def _fall_behind(self, since: float) -> None:
        """Drop what is held; `_next_batches` reads it back from the store."""
        if self._behind_since is None:
            self._behind_since = since
        self._pending.clear()
        self._backlog = 0

    def stats(self) -> ExtractorStats:
        oldest = self._pending[0].recorded_at if self._pending else None
        since = self._behind_since if self._behind_since is not None else oldest
        lag = self._clock.now() - since if since is not None else 0.0
        return ExtractorStats(
            cursor=self._miner.cursor,
            backlog=self._backlog,
            behind=self._behind_since is not None,
            folded=self.folded,
            lag_s=max(0.0, lag),
            miner_pid=self._miner.pid,
        )

    async def _run(self) -> None:
        while self.state is ExtractorState.RUNNING:
            if self._pending or self._behind_since is not None:
                await asyncio.sleep(0)  # a backlog: fold on at once, after the loop's turn
            else:
                await self._nap()
            try:
                await self._advance()
                await self._sweep_if_due()
            except Exception:
                log.exception("extractor step failed; reloading the miner from the store")
                await self._recover()

    async def _nap(self) -> None:
        """Wait one tick, or until `stop`. A bare future and a timer: `wait_for` on an
        event costs a task, a cancellation and an exception every tick."""
        loop = asyncio.get_running_loop()
        self._alarm = alarm = loop.create_future()
        timer = loop.call_later(self._interval, _ring, alarm)
        try:
            await alarm
        finally:
            timer.cancel()

    async def _recover(self) -> None:
        """Drop the unsaved fold: reload what was persisted and refold from the store."""
        try:
            try:
                await self._settle()  # a restore must not read beside a commit
            except Exception:
                log.exception("a fold's commit failed")
            await self._restore()
        except Exception:
            log.exception("extractor could not reload; retrying next tick")

    async def step(self) -> int:
        """Fold everything committed since the last step and wait for it to be
        committed and indexed; returns how many interactions. Not safe to cancel
        (see `stop`)."""
        folded = await self._advance()
        while self._pending or self._behind_since is not None:
            folded += await self._advance()
        await self._settle()
        return folded

    async def _advance(self) -> int:
        """Fold what is pending and leave its commit running (`_fold`); with
        nothing pending, an empty fold still restates queued group claims. Not
        safe to cancel (see `stop`)."""
        batches = await self._next_batches()
        return await self._fold(batches) if batches or self._miner.queued else 0

    async def _next_batches(self) -> list[CommittedBatch]:
        """What the next fold takes: pending batches, or while behind the next
        committed interactions from the store. The store read that comes up short
        ends being behind, and reads from there on take whatever was committed (and
        dropped) meanwhile, until one comes up short: from then on every commit is
        pending again, and one seen twice is folded once (the miner skips ids up to
        its cursor). Reads count interactions, not batches: a batch is one write."""
        if self._behind_since is None:
            return self._take_pending()
        batches, short = await self._read_back(self._miner.cursor)
        if not short:
            return batches
        since, self._behind_since = self._behind_since, None
        last = _last_id(batches, self._miner.cursor)
        try:
            while True:  # what was committed, and dropped, while the read before ran
                more, short = await self._read_back(last)
                batches += more
                last = _last_id(more, last)
                caught = self._pending and last >= self._pending[0].first_id
                if short or caught or self._behind_since is not None:
                    return batches  # behind again: the next call reads on from the cursor
        except BaseException:
            self._fall_behind(since)  # what was dropped is read again, from the cursor
            raise

    async def _read_back(self, after: int) -> tuple[list[CommittedBatch], bool]:
        """Up to BEHIND_READ committed interactions past `after`, and whether the
        read came up short (so reached the newest commit)."""
        batches = await self._interactions.committed_after(after, BEHIND_READ)
        return batches, sum(len(b.items) for b in batches) < BEHIND_READ

    def _take_pending(self) -> list[CommittedBatch]:
        """The oldest pending batches, FOLD_MAX interactions or just past it."""
        taken: list[CommittedBatch] = []
        count = 0
        while self._pending and count < FOLD_MAX:
            taken.append(self._pending.popleft())
            count += len(taken[-1].items)
        self._backlog -= count
        return taken

    async def _fold(self, batches: list[CommittedBatch]) -> int:
        """Embed and fold `batches`, then start committing the fold without waiting
        for it: the next fold (Python, on the miner's thread) runs while SQLite
        writes this one, and commits stay in fold order since each waits for the
        one before (`_settle`). At 100k learnings a commit took a third of a step.
        Not safe to cancel: the miner would be ahead of what is committed."""
        vectors = await self._vectors(batches)
        now = self._clock.now()
        fold = await self._miner.fold(batches, vectors, now)
        await self._settle()
        tasks = _tasks(batches, vectors)
        committing = self._commit(fold, now, tasks)
        self._committing = asyncio.create_task(committing, name="kaizen-fold-commit")
        self.folded += fold.folded
        return fold.folded

    async def _settle(self) -> None:
        """Wait for the fold commit in flight, if any; its failure is raised here.
        Cancelling leaves the commit running, and still in flight."""
        committing = self._committing
        if committing is not None:
            try:
                await asyncio.shield(committing)
            finally:
                if committing.done():
                    self._committing = None

    async def _vectors(self, batches: Iterable[CommittedBatch]) -> dict[str, Any]:
        if self._embedder is None:
            return {}
        # distinct texts first: a busy tick repeats the same few tasks many times
        asked = {(b.tenant, task) for b in batches for task in b.task_descriptions()}
        texts = await self._miner.unknown(asked)
        return dict(zip(texts, await self._embedder.embed(texts), strict=True)) if texts else {}

    async def state_workflows(self, tenant: str, patterns: list[WorkflowPattern]) -> None:
        """Make `patterns` the tenant's WORKFLOW learnings: state each, retire the
        others. Not safe to cancel (the statement may be committed unindexed)."""
        active = self._index.ids_of(tenant, LearningType.WORKFLOW)
        fold = await self._miner.workflows(tenant, patterns, active)
        committing = self._committing
        if committing is not None:
            # wait, but leave a failure for the extractor's loop to recover from
            await asyncio.wait([committing])
            if not committing.cancelled() and committing.exception() is not None:
                raise RuntimeError("a fold's commit failed; workflows wait for the reload")
        await self._commit(fold, self._clock.now())

    async def _commit(
        self, fold: FoldResult, now: float, tasks: list[tuple[str, str, Any]] | None = None
    ) -> None:
        await self._learnings.save_fold(fold, now)
        self._index.add_clusters(fold.clusters)
        self._index.add_tasks(tasks or ())
        self._index.apply(fold.learnings)
        self._index.retire(fold.retired)
        if fold.anomalies and self._announce is not None:
            self.anomalies += len(fold.anomalies)
            await self._announce(fold.anomalies)

    async def _sweep_if_due(self) -> None:
        """Sweep the slices owed since the last: one every interval / SWEEP_SLICES,
        all of them at once if the clock jumped a whole interval."""
        now = self._clock.now()
        owed = int((now - self._last_sweep) / (self._sweep_interval / SWEEP_SLICES))
        if owed < 1:
            return
        self._last_sweep = now
        await self.sweep(min(owed, SWEEP_SLICES))

    async def sweep(self, count: int = SWEEP_SLICES) -> None:
        """Restate the claims of the next `count` slices (by default all of them)
        at the current time. Not safe to cancel."""
        slices = {(self._swept + i) % SWEEP_SLICES for i in range(count)}
        await self._settle()  # the commit in flight serialises what the sweep changes
        now = self._clock.now()
        fold = await self._miner.sweep(now, slices, SWEEP_SLICES)
        await self._commit(fold, now)
        self._swept += count
        self.sweeps = self._swept // SWEEP_SLICES


def _tasks(
    batches: Iterable[CommittedBatch], vectors: dict[str, Any]
) -> list[tuple[str, str, Any]]:
    """(tenant, task, embedding) of the tasks embedded for this fold."""
    found = {(b.tenant, t) for b in batches for t in b.task_descriptions() if t in vectors}
    return [(tenant, task, vectors[task]) for tenant, task in found]


def _last_id(batches: list[CommittedBatch], default: int) -> int:
    last = batches[-1] if batches else None
    return last.first_id + len(last.items) - 1 if last is not None else default


def _ring(alarm: asyncio.Future[None]) -> None:
    if not alarm.done():
        alarm.set_result(None)
