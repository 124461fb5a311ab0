"""The session service: track chat sessions, and process each
one when it ends.

Ending a session (by request, or after `idle_s` without a message) only marks it
and queues it; a background worker runs the pipeline (`server.chat`) in a
thread, off the request path: topics, preferences, memory storage, training
examples, then the logs. Each stage is isolated; the log is always written. The
memory and examples stages reach back to the event loop for the embedder and the
store. Sessions that ended but were not processed when the server stopped are
queued again at start.
"""

import asyncio
import contextlib
import enum
import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from schemas.chat import (
    ChatMessage,
    MemoryHit,
    MemoryHits,
    MemoryQuery,
    MessageAdded,
    PreferenceOut,
    SessionInfo,
    SessionReport,
    SessionStart,
    SessionState,
    SessionStats,
    StageOut,
    TopicOut,
)
from server.chat import (
    MemoryResult,
    Message,
    PipelineReport,
    SessionRecord,
    Stage,
    detect_preferences,
    extract_topics,
    make_log_stage,
    prepare_examples,
    run_pipeline,
)
from server.chat.examples import ExamplesResult
from server.chat.store import ChatStore, ExampleRow, MemoryRow, SessionRow
from server.core.clock import Clock, utc
from server.core.embedder import Embedder
from server.core.errors import Conflict, NotFound
from server.core.text import fts_query, query_terms

if TYPE_CHECKING:
    # vectors imports numpy, which only the `ml` extra brings; a plain install
    # must still start and search memory lexically.
    from server.core.vectors import VectorSet

log = logging.getLogger("kaizen.sessions")
EMBEDDED_ROLES = ("user", "assistant")
"""The roles whose messages topics and memory embed."""
Processed = Callable[[str, str, int, PipelineReport], Awaitable[object]]
"""Called with (tenant, session id, messages, report) after a session is processed."""


class SessionServiceState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(slots=True)
class OpenSession:
    seq: int
    last_activity: float


class ChatService:
    def __init__(
        self,
        store: ChatStore,
        embedder: Embedder | None,
        clock: Clock,
        logs_dir: Path,
        *,
        idle_s: float,
        sweep_s: float,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._clock = clock
        self._logs_dir = logs_dir
        self._idle_s = idle_s
        self._sweep_s = sweep_s
        self._open: dict[tuple[str, str], OpenSession] = {}
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._vectors: dict[str, VectorSet] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._prefetching: set[asyncio.Task[Any]] = set()
        self.on_processed: Processed | None = None
        self.fine_tunes: Callable[[str], Awaitable[int]] | None = None
        self.state = SessionServiceState.NEW

    async def start(self) -> None:
        """Load open sessions and memory vectors, queue unprocessed ones, start the
        sweeper and the pipeline worker. Not safe to cancel."""
        counts = await self._store.open_message_counts()
        for tenant, row in await self._store.in_state(SessionState.OPEN):
            self._open[(tenant, row.id)] = OpenSession(
                counts.get((tenant, row.id), 0), row.last_activity
            )
        for tenant, row in await self._store.in_state(SessionState.ENDED):
            self._queue.put_nowait((tenant, row.id))
        for item_id, tenant, blob in await self._store.memory_vectors():
            self._remember(tenant, item_id, blob)
        self._tasks = [
            asyncio.create_task(self._sweep_forever(), name="kaizen-session-sweeper"),
            asyncio.create_task(self._work_forever(), name="kaizen-session-pipeline"),
        ]
        self.state = SessionServiceState.RUNNING

    async def stop(self) -> None:
        """Stop sweeping and processing; a session being processed is finished first
        only if it completes within the cancellation (its stages run in a thread and
        it stays ENDED, so it is processed again at the next start). Idempotent."""
        self.state = SessionServiceState.STOPPED
        tasks = [*self._tasks, *self._prefetching]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []

    # -- tracking ----------------------------------------------------------------

    async def start_session(self, tenant: str, agent: str, req: SessionStart) -> SessionInfo:
        """Cancelling leaves the write's fate unknown."""
        sid = req.session_id or secrets.token_hex(8)
        now = self._clock.now()
        agent = req.agent or agent
        try:
            await self._store.create(tenant, sid, agent, now, orjson.dumps(req.metadata))
        except sqlite3.IntegrityError:
            raise Conflict("a session with this id exists", session_id=sid) from None
        self._open[(tenant, sid)] = OpenSession(0, now)
        return await self.get(tenant, sid)

    async def add_message(self, tenant: str, session_id: str, message: ChatMessage) -> MessageAdded:
        """Cancelling leaves the write's fate unknown (the sequence number is spent)."""
        found = self._open.get((tenant, session_id))
        if found is None:
            raise await self._not_open(tenant, session_id)
        found.seq += 1
        found.last_activity = now = self._clock.now()
        meta = orjson.dumps(message.metadata)
        await self._store.add_message(
            tenant, session_id, found.seq, message.role, message.content, meta, now
        )
        self._prefetch(message)
        return MessageAdded(session_id=session_id, seq=found.seq)

    def _prefetch(self, message: ChatMessage) -> None:
        """Embed a message the pipeline will embed (topics, memory) now, in the
        background: the embedder micro-batches and caches it, so a session's end
        only waits for its candidate phrases. A failure only costs the cache hit."""
        if self._embedder is None or message.role not in EMBEDDED_ROLES:
            return
        if not message.content.strip():
            return
        task = asyncio.create_task(self._embedder.embed([message.content]))
        self._prefetching.add(task)
        task.add_done_callback(self._prefetched)

    def _prefetched(self, task: "asyncio.Task[Any]") -> None:
        self._prefetching.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("prefetching an embedding failed", exc_info=task.exception())

    async def end(self, tenant: str, session_id: str) -> SessionInfo:
        """End and queue for processing. Cancelling leaves the write's fate unknown."""
        if self._open.pop((tenant, session_id), None) is None:
            raise await self._not_open(tenant, session_id)
        await self._store.end(tenant, session_id, self._clock.now())
        self._queue.put_nowait((tenant, session_id))
        return await self.get(tenant, session_id)

    async def _not_open(self, tenant: str, sid: str) -> Exception:
        if await self._store.get(tenant, sid) is None:
            return NotFound("no such session", session_id=sid)
        return Conflict("the session has ended", session_id=sid)

    async def get(self, tenant: str, session_id: str) -> SessionInfo:
        row = await self._store.get(tenant, session_id)
        if row is None:
            raise NotFound("no such session", session_id=session_id)
        return _info(row, await self._store.message_count(tenant, session_id))

    async def sweep(self) -> int:
        """End every session idle for `idle_s`; how many. Not safe to cancel."""
        now = self._clock.now()
        idle = [k for k, s in self._open.items() if now - s.last_activity >= self._idle_s]
        for tenant, sid in idle:
            with contextlib.suppress(NotFound, Conflict):
                await self.end(tenant, sid)
        return len(idle)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("idle sweep failed")

    # -- the pipeline ------------------------------------------------------------

    async def _work_forever(self) -> None:
        while True:
            tenant, sid = await self._queue.get()
            try:
                await self.process(tenant, sid)
            except Exception:
                log.exception("processing session %s failed", sid)

    async def process(self, tenant: str, sid: str) -> PipelineReport:
        """Run the pipeline on an ended session. Not safe to cancel."""
        record = await self._record(tenant, sid)
        loop = asyncio.get_running_loop()
        stages = self._stages(loop)
        report = await asyncio.to_thread(
            run_pipeline, record, stages, log_stage=make_log_stage(self._logs_dir, self._clock.now)
        )
        await self._store.processed(tenant, sid, _report(report, self._clock.now()))
        if self.on_processed is not None:
            await self.on_processed(tenant, sid, len(record.messages), report)
        return report

    async def _record(self, tenant: str, sid: str) -> SessionRecord:
        row = await self._store.get(tenant, sid)
        if row is None:
            raise NotFound("no such session", session_id=sid)
        rows = await self._store.messages(tenant, sid)
        messages = [Message(r[0], r[1], orjson.loads(r[2]), r[3]) for r in rows]  # type: ignore[arg-type]
        return SessionRecord(tenant, sid, row.agent, row.started_at, row.ended_at, messages)

    def _stages(self, loop: asyncio.AbstractEventLoop) -> list[Stage]:
        def on_loop(coro: Awaitable[Any]) -> Any:
            return asyncio.run_coroutine_threadsafe(coro, loop).result()  # type: ignore[arg-type]

        embed = None
        if self._embedder is not None:
            embedder = self._embedder
            embed = lambda texts: on_loop(embedder.embed(texts))  # noqa: E731

        return [
            Stage("topics", lambda record, _: extract_topics(record, embed)),
            Stage("preferences", lambda record, _: detect_preferences(record)),
            Stage("memory", lambda record, _: on_loop(self._store_memory(record))),
            Stage("examples", lambda record, _: on_loop(self._store_examples(record))),
        ]

    async def _store_memory(self, record: SessionRecord) -> MemoryResult:
        """Every user and assistant message becomes a memory item with its embedding."""
        kept = [m for m in record.messages if m.role in EMBEDDED_ROLES]
        vectors = (
            await self._embedder.embed([m.content for m in kept])
            if self._embedder and kept
            else None
        )
        rows = [
            MemoryRow(record.session_id, m.role, m.content, m.at, _blob(vectors, n))
            for n, m in enumerate(kept)
        ]
        ids = await self._store.add_memory(record.tenant, rows) if rows else []
        for item_id, row in zip(ids, rows, strict=True):
            if row.vector is not None:
                self._remember(record.tenant, item_id, row.vector)
        return MemoryResult(items_created=len(rows))

    async def _store_examples(self, record: SessionRecord) -> ExamplesResult:
        result = prepare_examples(record)
        now = self._clock.now()
        rows = [
            ExampleRow(record.tenant, "session", e.context, e.instruction, e.output, now)
            for e in result.examples
        ]
        if rows:
            await self._store.add_examples(rows)
        return result

    def _remember(self, tenant: str, item_id: int, blob: bytes) -> None:
        import numpy as np

        from server.core.vectors import VectorSet

        vector = np.frombuffer(blob, dtype=np.float32)
        found = self._vectors.get(tenant)
        if found is None:
            found = self._vectors[tenant] = VectorSet(len(vector))
        found.add(item_id, vector)

    # -- memory search -----------------------------------------------------------

    async def search(self, tenant: str, q: MemoryQuery) -> MemoryHits:
        """Conversation memory by meaning (cosine of MiniLM embeddings), or by BM25
        without the `ml` extra. Safe to cancel: it only reads."""
        vectors = self._vectors.get(tenant)
        if self._embedder is not None and vectors is not None:
            query = await self._embedder.embed_one(q.query)
            scored = vectors.top(query, q.limit * 4)
            return MemoryHits(method="embedding", items=await self._hits(tenant, scored, q))
        match = fts_query(query_terms(q.query))
        found = await self._store.search_memory(tenant, match, q.limit * 4) if match else []
        best = max((s for _, s in found), default=1.0) or 1.0
        scored = [(i, s / best) for i, s in found]
        return MemoryHits(method="lexical", items=await self._hits(tenant, scored, q))

    async def _hits(
        self, tenant: str, scored: list[tuple[int, float]], q: MemoryQuery
    ) -> list[MemoryHit]:
        rows = await self._store.memory_by_ids(tenant, [i for i, _ in scored])
        hits = [
            MemoryHit(
                session_id=r.session_id, role=r.role, content=r.content, at=utc(r.at), score=s
            )
            for i, s in scored
            if (r := rows.get(i)) is not None and q.session_id in (None, r.session_id)
        ]
        return hits[: q.limit]

    async def stats(self, tenant: str) -> SessionStats:
        opened, processed, messages, memory, examples = await self._store.stats(tenant)
        return SessionStats(
            sessions_open=opened,
            sessions_processed=processed,
            total_messages=messages,
            memory_items=memory,
            examples_prepared=examples,
            fine_tunes=await self.fine_tunes(tenant) if self.fine_tunes else 0,
        )


def _blob(vectors: Any, n: int) -> bytes | None:
    return None if vectors is None else bytes(vectors[n].astype("float32").tobytes())


def _info(row: SessionRow, messages: int) -> SessionInfo:
    report = SessionReport.model_validate_json(row.report) if row.report else None
    return SessionInfo(
        id=row.id,
        state=SessionState(row.state),
        agent=row.agent,
        started_at=utc(row.started_at),
        last_activity=utc(row.last_activity),
        ended_at=utc(row.ended_at) if row.ended_at is not None else None,
        messages=messages,
        metadata=orjson.loads(row.metadata),
        report=report,
    )


def _report(report: PipelineReport, now: float) -> bytes:
    topics = report.topics
    preferences = report.preferences
    examples = report.examples
    memory = report.memory
    out = SessionReport(
        topics=[TopicOut(phrase=t.phrase, score=t.score) for t in topics.topics] if topics else [],
        topic_method=topics.method if topics else "failed",
        preferences=[
            PreferenceOut(
                name=p.name,
                value=p.value,
                confidence=p.confidence,
                signals=sorted({e.signal for e in p.evidence}),
            )
            for p in (preferences.preferences if preferences else ())
        ],
        memory_items=memory.items_created if memory else 0,
        examples_kept=len(examples.examples) if examples else 0,
        examples_dropped=dict(examples.dropped_counts) if examples else {},
        stages=[
            StageOut(name=o.name, ok=o.ok, seconds=o.seconds, error=o.error)
            for o in report.outcomes
        ],
        processed_at=utc(now),
    )
    return out.model_dump_json().encode()
