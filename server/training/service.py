"""The training service: fine-tuning jobs, the adapter registry and its gate.

A job is stored QUEUED, then runs in the process pool (`training.pool`, spawn):
its data are the tenant's training examples from ended sessions and its
successful interactions (task → what worked) inside the window, plus a replay
sample of older ones, deduplicated and split (`training.data`). Progress goes to
the job row (at most every `PROGRESS_SAVE_S`) and to the tenant's `jobs`
channel. A finished adapter is written atomically to the tenant's registry as a
candidate; the evaluation gate (`training.evaluate.decide`) promotes it only if
its held-out loss beats both the base model and the current adapter by the
margin, else it is rejected with the reason ("detect and revert bad
learning"). A promotion or rollback is announced on the `models` channel.

Restart: QUEUED jobs run again; a job that was RUNNING when the server stopped or
crashed is marked FAILED ("interrupted"), since its worker died with the server;
its trigger fires again on the next session or schedule tick. A worker that dies
(killed, out of memory) fails its job and nothing else: the registry only ever
changes after a run succeeded.
"""

import asyncio
import contextlib
import enum
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import KnowledgeType, MessageDraft, Page
from schemas.training import (
    AdapterVersion,
    FineTuneRequest,
    Job,
    JobProgress,
    JobResult,
    JobsQuery,
    JobState,
    JobTrigger,
    ModelEvent,
    Models,
)
from server.chat.store import ChatStore
from server.core.clock import Clock, utc
from server.core.cursor import decode_cursor, encode_cursor
from server.core.errors import Conflict, InvalidRequest, NotFound, Unavailable
from server.hub.service import HubService
from server.learning.store import InteractionStore
from server.training.data import Dataset, Example, build_dataset
from server.training.evaluate import decide
from server.training.pool import JobCancelled, TrainingPool, WorkerDied
from server.training.registry import AdapterRegistry, Manifest, NothingToRollBack, VersionNotFound
from server.training.store import JobStore
from server.training.trainer import Progress, TrainResult, TrainSpec

log = logging.getLogger("kaizen.training")
PROGRESS_SAVE_S = 2.0
PROGRESS_PUBLISH_S = 1.0
EXAMPLES_MAX = 50_000
JOBS_CHANNEL = "jobs"
MODELS_CHANNEL = "models"
INTERRUPTED = "interrupted: the server stopped while it ran"


@dataclass(frozen=True, slots=True)
class TrainingParams:
    base_model: str | None
    root: Path
    workers: int = 1
    threads: int = 1
    window_s: float = 30 * 86_400.0
    replay_fraction: float = 0.2
    held_out_fraction: float = 0.2
    min_examples: int = 2
    margin: float = 0.01
    epochs: int = 1
    max_steps: int | None = None
    learning_rate: float = 2e-4
    batch_size: int = 8
    lora_r: int = 8
    max_length: int = 256
    device: str = "auto"
    min_messages: int = 4
    schedule_s: float = 3600.0


class TrainingState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class TrainingService:
    def __init__(
        self,
        jobs: JobStore,
        sessions: ChatStore,
        interactions: InteractionStore,
        hub: HubService,
        clock: Clock,
        params: TrainingParams,
    ) -> None:
        self._job_store = jobs
        self._sessions = sessions
        self._interactions = interactions
        self._hub = hub
        self._clock = clock
        self.params = params
        self._pool = TrainingPool(params.workers, params.threads, prewarm=False)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._jobs: dict[int, tuple[str, Job]] = {}
        self._last_saved: dict[int, float] = {}
        self._last_published: dict[int, float] = {}
        self._scheduler: asyncio.Task[None] | None = None
        self._last_scheduled: dict[str, float] = {}
        self.state = TrainingState.NEW

    async def start(self) -> None:
        """Fail interrupted jobs, start the pool, run queued jobs, start the schedule.
        Not safe to cancel."""
        for tenant, body in await self._job_store.in_state(JobState.RUNNING):
            job = Job.model_validate_json(body)
            await self._save(tenant, _finished(job, JobState.FAILED, self._now(), INTERRUPTED))
        await self._pool.start()
        self.state = TrainingState.RUNNING
        for tenant, body in await self._job_store.in_state(JobState.QUEUED):
            self._launch(tenant, Job.model_validate_json(body))
        if self.params.base_model is not None:
            self._scheduler = asyncio.create_task(self._schedule_forever(), name="kaizen-schedule")

    async def stop(self) -> None:
        """Stop the schedule and every worker; running jobs end FAILED (interrupted).
        Idempotent; not safe to cancel."""
        if self.state is not TrainingState.RUNNING:
            self.state = TrainingState.STOPPED
            return
        self.state = TrainingState.STOPPED
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
        await self._pool.close()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _now(self) -> float:
        return self._clock.now()

    # -- jobs --------------------------------------------------------------------

    async def fine_tune(self, tenant: str, request: FineTuneRequest) -> Job:
        """A job asked for by a client. Returns after the commit."""
        return await self.submit(tenant, JobTrigger.MANUAL, request)

    async def submit(self, tenant: str, trigger: JobTrigger, req: FineTuneRequest) -> Job:
        """Store a QUEUED job and start it. Returns after the commit; cancelling
        leaves its fate unknown."""
        if self.state is not TrainingState.RUNNING:
            raise Unavailable("the training service is not running")
        base = req.base_model or self.params.base_model
        if base is None:
            raise InvalidRequest("no base model: set KAIZEN_TRAINING_BASE_MODEL or give base_model")
        job = Job(
            id=self._job_store.next_id(),
            state=JobState.QUEUED,
            trigger=trigger,
            base_model=base,
            created_at=utc(self._now()),
            note=req.note,
        )
        await self._save(tenant, job)
        self._launch(tenant, job, req)
        return job

    def _launch(self, tenant: str, job: Job, req: FineTuneRequest | None = None) -> None:
        self._jobs[job.id] = (tenant, job)
        task = asyncio.create_task(
            self._run(tenant, job, req or FineTuneRequest()), name=f"kaizen-job-{job.id}"
        )
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.id, None))

    async def _run(self, tenant: str, job: Job, req: FineTuneRequest) -> None:
        try:
            await self._execute(tenant, job, req)
        except Exception as exc:  # a job's failure must never take the service down
            log.exception("job %d failed", job.id)
            await self._end(tenant, job.id, JobState.FAILED, f"{type(exc).__name__}: {exc}")
        finally:
            self._jobs.pop(job.id, None)

    async def _execute(self, tenant: str, job: Job, req: FineTuneRequest) -> None:
        window_s = (req.window_days * 86_400.0) if req.window_days else self.params.window_s
        data = await self._dataset(tenant, window_s)
        counts = _counts(data)
        if len(data.train) < self.params.min_examples:
            job = replace_job(job, examples=counts)
            self._jobs[job.id] = (tenant, job)
            await self._end(
                tenant,
                job.id,
                JobState.FAILED,
                f"not enough training data: {len(data.train)} examples, need {self.params.min_examples}",
            )
            return
        registry = self.registry(tenant)
        current = await asyncio.to_thread(registry.current)
        staging = self.params.root / tenant / "staging" / str(job.id)
        spec = self._spec(job, req, data, staging, registry, current)
        job = replace_job(job, state=JobState.RUNNING, started_at=utc(self._now()), examples=counts)
        self._jobs[job.id] = (tenant, job)
        await self._save(tenant, job)
        run = await self._pool.submit(
            str(job.id), spec, lambda _, p: self._progress(tenant, job.id, p)
        )
        try:
            result = await run.result()
        except JobCancelled:
            if self.state is TrainingState.STOPPED:
                await self._end(tenant, job.id, JobState.FAILED, INTERRUPTED)
            else:
                await self._end(tenant, job.id, JobState.CANCELLED, None)
            return
        except WorkerDied as died:
            await self._end(tenant, job.id, JobState.FAILED, f"worker died: {died}")
            return
        await self._conclude(tenant, job, result, data, registry, current)

    def _spec(
        self,
        job: Job,
        req: FineTuneRequest,
        data: Dataset,
        staging: Path,
        registry: AdapterRegistry,
        current: Manifest | None,
    ) -> TrainSpec:
        p = self.params
        return TrainSpec(
            base_model=job.base_model,
            output_dir=str(staging),
            train=data.train_pairs(),
            held_out=data.held_out_pairs(),
            current_adapter=str(registry.path_of(current.version)) if current else None,
            lora_r=p.lora_r,
            lora_alpha=2 * p.lora_r,
            epochs=req.epochs or p.epochs,
            max_steps=req.max_steps or p.max_steps,
            learning_rate=req.learning_rate or p.learning_rate,
            batch_size=p.batch_size,
            max_length=p.max_length,
            seed=job.id,
            device=p.device,
            progress_every=1,
        )

    async def _conclude(
        self,
        tenant: str,
        job: Job,
        result: TrainResult,
        data: Dataset,
        registry: AdapterRegistry,
        current: Manifest | None,
    ) -> None:
        held_out, base = result.held_out_loss, result.base_held_out_loss
        if held_out is None or base is None:
            raise RuntimeError("the run measured no held-out loss")
        same_base = current is not None and current.base_model == job.base_model
        current_loss = result.current_held_out_loss if same_base else None
        decision = decide(held_out, current_loss, base, self.params.margin)
        manifest = await asyncio.to_thread(
            registry.add,
            result.output_dir,
            base_model=job.base_model,
            job_id=str(job.id),
            window=data.window,
            counts=_counts(data),
            metrics=_metrics(result),
            reason=decision.reason,
        )
        if decision.promote:
            await asyncio.to_thread(registry.promote, manifest.version, decision.reason)
            await self._announce_model(tenant, "promoted", registry)
        else:
            await asyncio.to_thread(registry.reject, manifest.version, decision.reason)
        outcome = _result(manifest.version, decision.promote, decision.reason, result)
        await self._end(tenant, job.id, JobState.SUCCEEDED, None, outcome)

    async def _dataset(self, tenant: str, window_s: float) -> Dataset:
        """Session examples and successful interactions in the window, plus older
        ones as the replay pool."""
        now = self._now()
        examples = [
            Example(r.instruction, r.output, r.context, r.created_at, r.source)
            for r in await self._sessions.examples_of(tenant, EXAMPLES_MAX)
        ]
        since = now - 2 * window_s
        for item in await self._interactions.successful(tenant, since, EXAMPLES_MAX):
            examples.append(_from_interaction(item))
        fresh = [e for e in examples if e.created_at > now - window_s]
        older = [e for e in examples if e.created_at <= now - window_s]
        return await asyncio.to_thread(
            build_dataset,
            fresh,
            now,
            window_s=window_s,
            replay=older,
            replay_fraction=self.params.replay_fraction,
            held_out_fraction=self.params.held_out_fraction,
        )

    # -- progress and endings ----------------------------------------------------

    def _progress(self, tenant: str, job_id: int, p: Progress) -> None:
        found = self._jobs.get(job_id)
        if found is None:
            return
        progress = JobProgress(
            step=p.step,
            total_steps=p.total_steps,
            loss=p.loss,
            eta_s=p.eta_s,
            examples_per_s=p.examples_per_s,
            tokens_per_s=p.tokens_per_s,
        )
        job = replace_job(found[1], progress=progress)
        self._jobs[job_id] = (tenant, job)
        now = time.monotonic()
        last = p.step == p.total_steps
        if last or now - self._last_saved.get(job_id, 0.0) >= PROGRESS_SAVE_S:
            self._last_saved[job_id] = now
            self._background(self._save(tenant, job))
        if last or now - self._last_published.get(job_id, 0.0) >= PROGRESS_PUBLISH_S:
            self._last_published[job_id] = now
            self._background(self._publish_job(tenant, job))

    def _background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        task.add_done_callback(_log_failure)

    async def _end(
        self,
        tenant: str,
        job_id: int,
        state: JobState,
        error: str | None,
        result: JobResult | None = None,
    ) -> None:
        found = self._jobs.get(job_id)
        job = found[1] if found else Job.model_validate_json(await self._body(tenant, job_id))
        job = _finished(replace_job(job, result=result), state, self._now(), error)
        self._jobs[job_id] = (tenant, job)
        await self._save(tenant, job)
        await self._publish_job(tenant, job)

    async def _save(self, tenant: str, job: Job) -> None:
        await self._job_store.save(
            tenant,
            job.id,
            job.state.value,
            job.created_at.timestamp(),
            job.model_dump_json().encode(),
        )

    async def _publish_job(self, tenant: str, job: Job) -> None:
        draft = MessageDraft(
            knowledge_type=KnowledgeType.DISCOVERY,
            title=f"job {job.id} {job.state.value}"
            + (f" step {job.progress.step}/{job.progress.total_steps}" if job.progress else ""),
            content=job.model_dump_json(),
            channel=JOBS_CHANNEL,
            tags=["job", job.state.value],
        )
        await self._hub.announce(tenant, draft)

    async def _announce_model(self, tenant: str, event: str, registry: AdapterRegistry) -> None:
        pointers = await asyncio.to_thread(registry.pointers)
        current = pointers.current
        manifest = await asyncio.to_thread(registry.get, current) if current else None
        body = ModelEvent(
            event=event,
            version=current,
            previous=pointers.previous,
            base_model=manifest.base_model if manifest else "",
            path=str(registry.path_of(current)) if current else "",
            download=f"/models/{current}/download" if current else "",
        )
        draft = MessageDraft(
            knowledge_type=KnowledgeType.DISCOVERY,
            title=f"adapter {event}: {current}",
            content=body.model_dump_json(),
            channel=MODELS_CHANNEL,
            tags=["model", event],
        )
        await self._hub.announce(tenant, draft)

    # -- reads and control -------------------------------------------------------

    async def get(self, tenant: str, job_id: int) -> Job:
        found = self._jobs.get(job_id)
        if found is not None and found[0] == tenant:
            return found[1]
        return Job.model_validate_json(await self._body(tenant, job_id))

    async def _body(self, tenant: str, job_id: int) -> bytes:
        body = await self._job_store.get(tenant, job_id)
        if body is None:
            raise NotFound("no such job", job_id=job_id)
        return body

    async def jobs(self, tenant: str, q: JobsQuery) -> Page[Job]:
        before = decode_cursor(q.cursor, "before", int) or 2**62
        state = q.state.value if q.state else None
        bodies = await self._job_store.page(tenant, state, before, q.limit + 1)
        jobs = [await self.get(tenant, Job.model_validate_json(b).id) for b in bodies[: q.limit]]
        more = len(bodies) > q.limit
        return Page[Job](
            items=jobs, next_cursor=encode_cursor(before=jobs[-1].id) if more else None
        )

    async def cancel(self, tenant: str, job_id: int) -> Job:
        """Stop the job's worker for real; returns the job once it is CANCELLED.
        Safe to cancel: the stop goes on."""
        job = await self.get(tenant, job_id)
        if job.state not in (JobState.QUEUED, JobState.RUNNING):
            raise Conflict(f"the job is {job.state.value}", job_id=job_id)
        if not await self._pool.cancel(str(job_id)):
            task = self._tasks.get(job_id)
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._end(tenant, job_id, JobState.CANCELLED, None)
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)
        return await self.get(tenant, job_id)

    def worker_pid(self, job_id: int) -> int | None:
        run = self._pool.get(str(job_id))
        return run.pid if run is not None else None

    async def after_session(self, tenant: str, messages: int) -> Job | None:
        """fine-tune after a session of at least `min_messages` messages."""
        if self.params.base_model is None or messages < self.params.min_messages:
            return None
        return await self.submit(tenant, JobTrigger.SESSION, FineTuneRequest(note="session ended"))

    async def _schedule_forever(self) -> None:
        """retrain every `schedule_s` when there is new data."""
        while True:
            await asyncio.sleep(self.params.schedule_s)
            with contextlib.suppress(Exception):
                await self._schedule_tick()

    async def _schedule_tick(self) -> None:
        now = self._now()
        since = now - self.params.schedule_s
        tenants = {r.tenant for r in await self._sessions.examples_since(since, EXAMPLES_MAX)}
        for tenant in sorted(tenants):
            await self.submit(tenant, JobTrigger.SCHEDULE, FineTuneRequest(note="schedule"))

    # -- the registry ------------------------------------------------------------

    def registry(self, tenant: str) -> AdapterRegistry:
        return AdapterRegistry(self.params.root / tenant)

    async def models(self, tenant: str) -> Models:
        registry = self.registry(tenant)
        manifests = await asyncio.to_thread(registry.list)
        pointers = await asyncio.to_thread(registry.pointers)
        return Models(
            items=[_version(m) for m in sorted(manifests, key=lambda m: m.version, reverse=True)],
            current=pointers.current,
            previous=pointers.previous,
            best=pointers.best,
        )

    async def download(self, tenant: str, version: str) -> bytes:
        registry = self.registry(tenant)
        try:
            return await asyncio.to_thread(registry.archive_bytes, version)
        except VersionNotFound:
            raise NotFound("no such adapter version", version=version) from None

    async def promote(self, tenant: str, version: str) -> Models:
        """Make `version` current by hand (the gate is the operator's call here)."""
        registry = self.registry(tenant)
        try:
            await asyncio.to_thread(registry.promote, version, "promoted by an operator")
        except VersionNotFound:
            raise NotFound("no such adapter version", version=version) from None
        await self._announce_model(tenant, "promoted", registry)
        return await self.models(tenant)

    async def rollback(self, tenant: str) -> Models:
        registry = self.registry(tenant)
        try:
            await asyncio.to_thread(registry.rollback)
        except NothingToRollBack:
            raise Conflict("there is no previous adapter to roll back to") from None
        await self._announce_model(tenant, "rolled_back", registry)
        return await self.models(tenant)


def replace_job(job: Job, **changes: Any) -> Job:
    return job.model_copy(update=changes)


def _finished(job: Job, state: JobState, now: float, error: str | None) -> Job:
    return replace_job(job, state=state, finished_at=utc(now), error=error)


def _from_interaction(item: Any) -> Example:
    """An interaction as instruction → what worked: its action sequence."""
    steps = [
        str(a.get("type") or a.get("action") or a.get("tool") or a.get("name") or "?")
        for a in item.actions_taken
    ]
    output = " -> ".join(steps) if steps else "done"
    return Example(
        item.task_description,
        output,
        f"interaction:{item.id}",
        item.recorded_at.timestamp(),
        "interaction",
    )


def _counts(data: Dataset) -> dict[str, int]:
    c = data.counts
    return {
        "seen": c.seen,
        "fresh": c.fresh,
        "duplicates": c.duplicates,
        "replayed": c.replayed,
        "train": c.train,
        "held_out": c.held_out,
    }


def _metrics(r: TrainResult) -> dict[str, float | None]:
    return {
        "train_loss_first": r.train_loss_first,
        "train_loss_last": r.train_loss_last,
        "held_out_loss": r.held_out_loss,
        "base_held_out_loss": r.base_held_out_loss,
        "current_held_out_loss": r.current_held_out_loss,
        "examples_per_s": r.examples_per_s,
        "tokens_per_s": r.tokens_per_s,
    }


def _result(version: str, promoted: bool, reason: str, r: TrainResult) -> JobResult:
    return JobResult(
        version=version,
        promoted=promoted,
        reason=reason,
        held_out_loss=r.held_out_loss,
        base_held_out_loss=r.base_held_out_loss,
        current_held_out_loss=r.current_held_out_loss,
        train_loss_first=r.train_loss_first,
        train_loss_last=r.train_loss_last,
        examples_per_s=r.examples_per_s,
        tokens_per_s=r.tokens_per_s,
        device=r.device,
    )


def _version(m: Manifest) -> AdapterVersion:
    return AdapterVersion(
        version=m.version,
        status=m.status.value,
        base_model=m.base_model,
        job_id=m.job_id,
        created_at=utc(m.created_at),
        reason=m.reason,
        window=(utc(m.window[0]), utc(m.window[1])) if m.window else None,
        counts=m.counts,
        metrics=m.metrics,
        sha256=m.files,
    )


def _log_failure(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("job progress update failed: %s", task.exception())
