"""The workflow service: accept activity events, learn workflows from
the sessions they make, predict the next command.

An event batch is committed as one row before it is acknowledged, then grouped
into sessions in memory (`server.workflows`). A background task closes idle
sessions every `tick_s` and learns them; every `checkpoint_s` (when something
changed) it saves the whole learner, open sessions included, with the id of the
last batch it reflects, and drops the batches up to it. A restart loads the
checkpoint and replays the batches after it, so an acknowledged event is never
lost; a crash only costs the replay.

Learned workflows also go to the learning engine (`publish`, the extractor's
`state_workflows`): at most every `publish_s`, each tenant that learned a session
or had an outcome revised since has its `published` best closed workflows of 3
commands or more stated as WORKFLOW learnings, so `GET /learnings` serves them.
"""

import asyncio
import contextlib
import enum
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

import orjson

from schemas.workflows import (
    ActivityEvent,
    EventBatch,
    EventsAccepted,
    NextCommand,
    NextCommands,
    NextQuery,
    OutcomeAccepted,
    RunOutcome,
    WorkflowPatternOut,
    Workflows,
    WorkflowsQuery,
    WorkflowStatsOut,
)
from server.core.clock import Clock, utc
from server.core.errors import InvalidRequest, NotFound
from server.workflows import Event, Outcome, WorkflowConfig, WorkflowLearner, WorkflowPattern
from server.workflows.events import is_known_type
from server.workflows.store import WorkflowStore

log = logging.getLogger("kaizen.workflows")
REPLAY_BATCH = 1000
PUBLISHED_MIN_LENGTH = 3
"""Shorter runs (`save_file → pytest`) are steps, not workflows worth a learning."""
Publish = Callable[[str, list[WorkflowPattern]], Awaitable[None]]


class WorkflowState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class WorkflowService:
    def __init__(
        self,
        store: WorkflowStore,
        clock: Clock,
        config: WorkflowConfig,
        *,
        tick_s: float,
        checkpoint_s: float,
        publish: Publish | None = None,
        publish_s: float = 5.0,
        published: int = 50,
    ) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        self._tick_s = tick_s
        self._checkpoint_s = checkpoint_s
        self._learner = WorkflowLearner(config)
        self._applied: set[int] = set()
        self._watermark = 0
        self._saved_watermark = 0
        self._last_checkpoint = clock.now()
        self._publish = publish
        self._publish_s = publish_s
        self._published = published
        self._dirty: set[str] = set()
        self._last_publish = -math.inf
        self._task: asyncio.Task[None] | None = None
        self.state = WorkflowState.NEW

    async def start(self) -> None:
        """Load the checkpoint, replay the batches after it, start ticking. Not
        safe to cancel."""
        saved = await self._store.checkpoint()
        if saved is not None:
            self._watermark = self._saved_watermark = saved[0]
            self._learner = WorkflowLearner.from_state(orjson.loads(saved[1]), self._config)
        while rows := await self._store.batches_after(self._watermark, REPLAY_BATCH):
            for batch_id, tenant, received_at, body in rows:
                self._apply(batch_id, tenant, received_at, EventBatch.model_validate_json(body))
        self._task = asyncio.create_task(self._run(), name="kaizen-workflows")
        self.state = WorkflowState.RUNNING

    async def stop(self) -> None:
        """Stop ticking and checkpoint. Idempotent; not safe to cancel."""
        if self.state is not WorkflowState.RUNNING or self._task is None:
            self.state = WorkflowState.STOPPED
            return
        self.state = WorkflowState.STOPPED
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.publish()
        await self.checkpoint()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s)
            try:
                self.tick()
                if self._clock.now() - self._last_publish >= self._publish_s:
                    await self.publish()
                if self._clock.now() - self._last_checkpoint >= self._checkpoint_s:
                    await self.checkpoint()
            except Exception:
                log.exception("workflow tick failed")

    def tick(self) -> int:
        """Close and learn the sessions idle now; how many were learned."""
        learned = [s for s in self._learner.tick(self._clock.now()) if s.learned]
        self._dirty.update(s.tenant for s in learned)
        return len(learned)

    async def publish(self) -> None:
        """State the workflows of the tenants that learned since the last time as
        learnings. Not safe to cancel (see `Extractor.state_workflows`)."""
        self._last_publish = self._clock.now()
        if self._publish is None or self._published < 1:
            return
        while self._dirty:
            tenant = self._dirty.pop()
            found = self._learner.patterns(
                tenant, None, self._published, min_length=PUBLISHED_MIN_LENGTH
            )
            try:
                await self._publish(tenant, found)
            except BaseException:
                self._dirty.add(tenant)
                raise

    async def checkpoint(self) -> None:
        """Save the learner if it moved since the last save. Not safe to cancel."""
        self._last_checkpoint = self._clock.now()
        if self._watermark == self._saved_watermark:
            return
        cursor = self._watermark
        state = orjson.dumps(self._learner.to_state(include_open=True))
        await self._store.save_checkpoint(cursor, state)
        self._saved_watermark = cursor

    # -- events ------------------------------------------------------------------

    async def ingest(self, tenant: str, batch: EventBatch) -> EventsAccepted:
        """Commit the batch, then group its events; returns after the commit.
        Cancelling leaves the write's fate unknown."""
        _check_types(batch.events)
        now = self._clock.now()
        batch_id = await self._store.add_batch(tenant, now, _encode(batch))
        self._apply(batch_id, tenant, now, batch)
        return EventsAccepted(accepted=len(batch.events), batch_id=batch_id)

    def _apply(self, batch_id: int, tenant: str, at: float, batch: EventBatch) -> None:
        add = self._learner.add
        for e in batch.events:
            add(Event(tenant, e.session_id, e.event_type, _epoch(e.timestamp), e.metadata), at)
        self._applied.add(batch_id)
        while self._watermark + 1 in self._applied:
            self._watermark += 1
            self._applied.discard(self._watermark)

    def report_outcome(self, tenant: str, report: RunOutcome) -> OutcomeAccepted:
        outcome = Outcome.SUCCESS if report.success else Outcome.FAILURE
        applied = self._learner.report_outcome(tenant, report.session_id, outcome)
        if applied:
            self._dirty.add(tenant)
        return OutcomeAccepted(session_id=report.session_id, applied=applied)

    def close_session(self, tenant: str, session_id: str) -> int:
        """Close and learn one open session now; its number of commands."""
        session = self._learner.close(tenant, session_id)
        if session is None:
            raise NotFound("no such open workflow session", session_id=session_id)
        if session.learned:
            self._dirty.add(tenant)
        return len(session.commands)

    # -- reads -------------------------------------------------------------------

    def workflows(self, tenant: str, q: WorkflowsQuery) -> Workflows:
        found = self._learner.patterns(tenant, q.min_support, q.limit, min_length=q.min_length)
        return Workflows(items=[_pattern(p) for p in found])

    def next_commands(self, tenant: str, q: NextQuery) -> NextCommands:
        if q.after is not None:
            after = [c.strip() for c in q.after.split(",") if c.strip()]
            found = self._learner.predict(tenant, after, q.k, q.session_id)
            return _next(after, "after", found)
        if q.session_id is None:
            raise InvalidRequest("give after=cmd1,cmd2 or session_id")
        own = self._learner.predict_session(tenant, q.session_id, q.k)
        if own is None:
            raise NotFound("no such workflow session", session_id=q.session_id)
        return _next([], "session", own)

    def stats(self, tenant: str) -> WorkflowStatsOut:
        snapshot = self._learner.stats(tenant)
        return WorkflowStatsOut(running=self.state is WorkflowState.RUNNING, **snapshot.to_dict())

    def patterns(self, tenant: str, limit: int) -> list[WorkflowPattern]:
        return self._learner.patterns(tenant, None, limit)


def _check_types(events: list[ActivityEvent]) -> None:
    for n, e in enumerate(events):
        if not is_known_type(e.event_type):
            raise InvalidRequest("unknown event type", index=n, event_type=e.event_type)


def _encode(batch: EventBatch) -> bytes:
    return orjson.dumps(batch.model_dump())


def _epoch(stamp: float | datetime) -> float:
    if isinstance(stamp, datetime):
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    return float(stamp)


def _pattern(p: WorkflowPattern) -> WorkflowPatternOut:
    return WorkflowPatternOut(
        commands=list(p.commands),
        support=p.support,
        success_rate=p.success_rate,
        confidence=p.confidence,
        support_error=p.support_error,
        first_seen=utc(p.first_seen),
        last_seen=utc(p.last_seen),
        examples=list(p.examples),
    )


def _next(
    after: list[str], source: Literal["after", "session"], found: list[tuple[str, float]]
) -> NextCommands:
    predictions = [NextCommand(command=c, probability=p) for c, p in found]
    return NextCommands(after=after, source=source, predictions=predictions)
