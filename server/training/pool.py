"""The training pool: fine-tuning jobs in worker processes, driven from asyncio.

Each job runs in a process of its own (multiprocessing "spawn" by default: a clean
interpreter, no forked torch or event-loop state) that runs `trainer.train` and exits.
A process per job buys real cancellation: `cancel` sends SIGTERM, then SIGKILL after a
grace period, and nothing of the job survives it, which a ProcessPoolExecutor cannot do
to a running task. At most `workers` jobs run at once; others queue, first come first
served.

A fresh interpreter spends seconds importing torch, transformers and peft (about 7 s on
a 2-core machine), so with `prewarm` (the default) the pool keeps one spare worker that
has done its imports and waits for a spec; a job takes it (waiting for it to finish
starting if need be) and a new spare starts warming at once. Without a spare a job gets
a cold worker. Either way a worker serves one job and exits.

A worker reads its TrainSpec from a Pipe, then sends ("progress", Progress), and
("result", TrainResult) or ("error", ...) back. A thread per job hands it the spec,
reads the pipe and reaps the process, passing everything to the event loop with
call_soon_threadsafe, so the loop never blocks. The outcome:

    a result arrives            → SUCCEEDED at once; run.result() returns it
    cancel was asked for        → CANCELLED once the worker is reaped; JobCancelled
    an error arrives            → FAILED at once; TrainingFailed (type, message, traceback)
    the worker exits, no word   → DIED; WorkerDied (exit code; −9 for SIGKILL or OOM)

The job's slot frees only when its worker has been reaped, so no more than `workers`
training processes (plus the spare) ever exist.

A dead worker takes only its own job down: its slot frees, and the next job gets
another process. Workers ignore SIGINT, so Ctrl-C in a terminal reaches the server
alone, and the server stops them with `close`. The server's entry point must not start
a server when imported under another name (spawn imports the main module as
`__mp_main__`, except a package's `__main__`, which it skips).
"""

import asyncio
import contextlib
import enum
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from server.training.trainer import Progress, TrainResult, TrainSpec

log = logging.getLogger("kaizen.training.pool")

DEFAULT_GRACE_S = 5.0


class TrainingPoolError(Exception):
    """Base of the ways a job can end without a TrainResult."""


class JobCancelled(TrainingPoolError):
    """The job was cancelled (queued, or its worker was stopped)."""


class WorkerDied(TrainingPoolError):
    """The worker process ended without a result or an error: killed (SIGKILL, the OOM
    killer) or crashed. `exitcode` is negative for a signal."""

    def __init__(self, job_id: str, exitcode: int | None) -> None:
        super().__init__(f"worker of job {job_id} died (exit code {exitcode})")
        self.exitcode = exitcode


class TrainingFailed(TrainingPoolError):
    """train() raised in the worker; its type name, message and traceback text."""

    def __init__(self, error_type: str, message: str, traceback_text: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.traceback_text = traceback_text


class PoolClosed(TrainingPoolError):
    """submit() on a closed pool."""


class WorkerState(enum.Enum):
    QUEUED = "queued"  # waiting for a free worker slot
    STARTING = "starting"  # process spawning, importing torch, loading the model
    RUNNING = "running"  # the first progress report has arrived
    SUCCEEDED = "succeeded"  # the result is in; the worker may still be exiting
    FAILED = "failed"
    CANCELLED = "cancelled"
    DIED = "died"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset(
    {WorkerState.SUCCEEDED, WorkerState.FAILED, WorkerState.CANCELLED, WorkerState.DIED}
)


class PoolState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


ProgressHandler = Callable[[str, Progress], None]


class JobRun:
    """One submitted job: its state, its progress reports and its outcome. Created by
    TrainingPool.submit; all methods run on the event loop's thread."""

    def __init__(
        self,
        job_id: str,
        spec: TrainSpec,
        on_progress: ProgressHandler | None,
        on_done: Callable[["JobRun"], None],
    ) -> None:
        self.job_id = job_id
        self.spec = spec
        self.state = WorkerState.QUEUED
        self.pid: int | None = None  # the worker's, once started
        self.exitcode: int | None = None
        self.submitted_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.progress: list[Progress] = []
        self._on_progress = on_progress
        self._on_done = on_done
        self._loop = asyncio.get_running_loop()
        self._outcome: asyncio.Future[TrainResult] = self._loop.create_future()
        self._changed = asyncio.Event()
        self._exited = asyncio.Event()  # the worker has been reaped
        self._cancel_requested = False
        self._reaped = False  # set by the pump thread once the worker is waited for
        self._error: TrainingFailed | None = None

    @property
    def done(self) -> bool:
        return self.state.finished

    @property
    def last_progress(self) -> Progress | None:
        return self.progress[-1] if self.progress else None

    async def result(self) -> TrainResult:
        """The TrainResult, or raises JobCancelled, WorkerDied or TrainingFailed.
        Safe to cancel: only this wait ends; the job goes on."""
        return await asyncio.shield(self._outcome)

    async def events(self) -> AsyncGenerator[Progress, None]:
        """Every progress report, from the first (also those sent before this call),
        ending when the job ends, however it ends. Safe to cancel (or to stop
        iterating): the job goes on; several iterators may run at once."""
        seen = 0
        while True:
            while seen < len(self.progress):
                seen += 1
                yield self.progress[seen - 1]
            if self.done:
                return
            changed = self._changed
            await changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- called from the pump thread via call_soon_threadsafe -----------------------

    def _on_started(self, pid: int | None) -> None:
        self.pid, self.started_at = pid, time.time()
        if self._cancel_requested:  # cancel() came while the process was spawning
            self._signal(signal.SIGTERM)

    def _on_message(self, kind: str, payload: Any) -> None:
        """A result or an error settles the run at once: the worker may take a second
        or more to exit, and only the slot has to wait for that."""
        if kind == "progress":
            self._add_progress(payload)
        elif kind == "result":
            self._finish(WorkerState.SUCCEEDED, payload)
        elif kind == "error":
            self._error = TrainingFailed(*payload)
            if not self._cancel_requested:
                self._finish(WorkerState.FAILED, self._error)

    def _add_progress(self, progress: Progress) -> None:
        if self.state is WorkerState.STARTING:
            self.state = WorkerState.RUNNING
        self.progress.append(progress)
        if self._on_progress is not None:
            try:
                self._on_progress(self.job_id, progress)
            except Exception:
                log.exception("progress handler of job %s failed", self.job_id)
        self._wake()

    def _on_exit(self, exitcode: int | None) -> None:
        self.exitcode = exitcode
        self._exited.set()
        if self._cancel_requested:  # _finish ignores this when a result came first
            self._finish(WorkerState.CANCELLED, JobCancelled(f"job {self.job_id} cancelled"))
        elif self._error is not None:
            self._finish(WorkerState.FAILED, self._error)
        else:
            self._finish(WorkerState.DIED, WorkerDied(self.job_id, exitcode))

    def _finish(self, state: WorkerState, outcome: TrainResult | BaseException) -> None:
        if self.done:
            return
        self.state, self.finished_at = state, time.time()
        if isinstance(outcome, BaseException):
            self._outcome.set_exception(outcome)
            self._outcome.exception()  # retrieved: no "never retrieved" noise if unread
        else:
            self._outcome.set_result(outcome)
        log.info("job %s %s", self.job_id, state.value)
        self._on_done(self)
        self._wake()

    def _signal(self, signum: int) -> None:
        """Signal the worker unless it has been reaped (its pid may be reused then)."""
        if self.pid is not None and not self._reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)


@dataclass(frozen=True, slots=True)
class _Worker:
    """A started worker process and the parent's end of its pipe."""

    process: Any  # multiprocessing's BaseProcess; typeshed types contexts loosely
    conn: Connection

    def idle_alive(self) -> bool:
        """Alive? Only for a worker no pump thread waits on (it may reap it here)."""
        return bool(self.process.is_alive())


class TrainingPool:
    """Runs TrainSpecs in worker processes; see the module doc."""

    def __init__(
        self,
        workers: int = 1,
        threads_per_worker: int = 1,
        mp_context: str = "spawn",
        grace_s: float = DEFAULT_GRACE_S,
        prewarm: bool = True,
    ) -> None:
        if workers < 1 or threads_per_worker < 1 or grace_s < 0:
            raise ValueError("workers and threads_per_worker must be ≥ 1, grace_s ≥ 0")
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.grace_s = grace_s
        self.prewarm = prewarm
        # Any: typeshed gives a context chosen by a run-time name no Process attribute.
        self._context: Any = multiprocessing.get_context(mp_context)
        self.state = PoolState.NEW
        self._runs: dict[str, JobRun] = {}  # jobs not yet finished
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._spare: asyncio.Future[_Worker] | None = None
        self._closing: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return self.state is PoolState.CLOSED

    def get(self, job_id: str) -> JobRun | None:
        """The unfinished job with this id, if any."""
        return self._runs.get(job_id)

    def active(self) -> list[JobRun]:
        """Jobs queued or running, in submission order."""
        return list(self._runs.values())

    async def start(self) -> None:
        """Ready the pool and, with prewarm, start warming a spare worker (in the
        background: this returns at once). Safe to cancel."""
        if self.state is not PoolState.NEW:
            raise RuntimeError(f"pool is {self.state.value}, not new")
        self._slots = asyncio.Semaphore(self.workers)
        self.state = PoolState.RUNNING
        self._warm_spare()

    async def submit(
        self, job_id: str, spec: TrainSpec, on_progress: ProgressHandler | None = None
    ) -> JobRun:
        """Queue a job and return its JobRun at once. `on_progress(job_id, progress)` is
        called on the loop's thread for each report (exceptions are logged). A spec
        without `threads` gets threads_per_worker. Raises PoolClosed after close and
        ValueError when a job with this id is unfinished. Safe to cancel: nothing awaits
        before the job is queued, so a cancelled submit queued nothing."""
        if self.state is not PoolState.RUNNING:
            raise PoolClosed("pool closed") if self.closed else RuntimeError("pool not started")
        if job_id in self._runs:
            raise ValueError(f"job {job_id} is already queued or running")
        if spec.threads is None:
            spec = replace(spec, threads=self.threads_per_worker)
        run = JobRun(job_id, spec, on_progress, self._forget)
        self._runs[job_id] = run
        self._spawn_task(self._drive(run), f"kaizen-train-{job_id}")
        return run

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job: a queued one ends at once; a running worker gets SIGTERM, then
        SIGKILL after grace_s, and this returns once it is reaped and its slot free.
        True when the job ended cancelled, False when there was no such unfinished job
        or it finished first. Safe to cancel: the stop goes on without this caller."""
        run = self._runs.get(job_id)
        if run is None:
            return False
        await asyncio.shield(self._stop(run))
        return run.state is WorkerState.CANCELLED

    async def close(self) -> None:
        """Refuse new jobs, cancel queued ones and stop running workers as `cancel`
        does (their runs raise JobCancelled), and stop the spare. Idempotent; a second
        call waits for the first. Safe to cancel: the closing goes on in its own task."""
        if self._closing is None:
            self.state = PoolState.CLOSED
            self._closing = asyncio.create_task(self._close(), name="kaizen-train-close")
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        await asyncio.gather(*(self._stop(run) for run in list(self._runs.values())))
        await asyncio.gather(*self._tasks, return_exceptions=True)
        spare, self._spare = self._spare, None
        if spare is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(_retire, await spare)

    async def _stop(self, run: JobRun) -> None:
        run._cancel_requested = True
        if run.state is WorkerState.QUEUED:
            run._finish(WorkerState.CANCELLED, JobCancelled(f"job {run.job_id} cancelled"))
            return
        run._signal(signal.SIGTERM)
        if await _exited_within(run, self.grace_s):
            return
        log.warning("job %s ignored SIGTERM for %.1f s; killing it", run.job_id, self.grace_s)
        run._signal(signal.SIGKILL)
        await run._exited.wait()

    async def _drive(self, run: JobRun) -> None:
        """Wait for a slot, hand the job to a worker, free the slot once it is reaped."""
        assert self._slots is not None
        async with self._slots:
            if run.done:  # cancelled while queued
                return
            run.state = WorkerState.STARTING
            worker = await self._take_spare()
            self._warm_spare()
            pump = threading.Thread(
                target=_pump,
                args=(run, worker, self._context, self.threads_per_worker),
                name=f"kaizen-train-pump-{run.job_id}",
                daemon=True,
            )
            pump.start()
            await run._exited.wait()

    async def _take_spare(self) -> "_Worker | None":
        """The warm spare if it is alive (waiting for it if it is still starting), else
        None: the pump thread then starts a fresh worker."""
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        try:
            worker = await spare
        except Exception:
            log.exception("a spare training worker did not start")
            return None
        if worker.idle_alive():
            return worker
        log.warning("the spare training worker died while idle (exit %s)", worker.process.exitcode)
        await asyncio.to_thread(_retire, worker)
        return None

    def _warm_spare(self) -> None:
        if self.prewarm and self._spare is None and self.state is PoolState.RUNNING:
            spawning = asyncio.to_thread(_spawn, self._context, self.threads_per_worker, True)
            spare = asyncio.ensure_future(spawning)
            self._spare = spare

    def _spawn_task(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, run: JobRun) -> None:
        if self._runs.get(run.job_id) is run:
            del self._runs[run.job_id]


async def _exited_within(run: JobRun, timeout_s: float) -> bool:
    """Whether the run's worker was reaped within timeout_s."""
    try:
        await asyncio.wait_for(run._exited.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


def _spawn(context: Any, threads: int, warm: bool) -> _Worker:
    """Start a worker process (blocking: spawn starts an interpreter); `warm`: it
    imports the training stack before it waits for a spec. daemon=True: a server that
    exits without close() still takes its workers down."""
    mine, theirs = context.Pipe(duplex=True)
    args = (theirs, threads, warm)
    process = context.Process(target=worker_main, args=args, name="kaizen-train", daemon=True)
    process.start()
    theirs.close()  # the worker holds the only other end now: its exit means EOF here
    return _Worker(process, mine)


def _retire(worker: _Worker) -> None:
    """Stop an unused worker (blocking)."""
    worker.conn.close()
    worker.process.terminate()
    worker.process.join()


def _pump(run: JobRun, worker: _Worker | None, context: Any, threads: int) -> None:
    """The job's thread: start a worker unless given one, send it the spec, relay its
    messages, reap it. Whatever happens, the run hears of the exit, so its slot frees."""
    loop = run._loop
    exitcode: int | None = None
    try:
        worker = worker or _spawn(context, threads, warm=False)  # its spec is ready
        _post(loop, run._on_started, worker.process.pid)
        with contextlib.suppress(OSError):  # a worker dead already: _relay sees EOF
            worker.conn.send(run.spec)
        _relay(loop, run, worker.conn)
        worker.process.join()
        exitcode = worker.process.exitcode
    except Exception as exc:
        log.exception("job %s: the worker process failed to start or to be reaped", run.job_id)
        _post(loop, run._on_message, "error", (type(exc).__name__, str(exc), ""))
    finally:
        run._reaped = True
        _post(loop, run._on_exit, exitcode)


def _relay(loop: asyncio.AbstractEventLoop, run: JobRun, conn: Connection) -> None:
    with conn:
        while True:
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                return
            except Exception:  # a payload that does not unpickle here
                log.exception("job %s sent a message that could not be read", run.job_id)
                return
            _post(loop, run._on_message, kind, payload)


def _post(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop is closed: nobody is left to tell
        pass


def worker_main(conn: Connection, threads: int, warm: bool) -> None:
    """The worker process: import the training stack when `warm`, wait for one
    TrainSpec, run `train` and send what happens down `conn`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when we stop
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)  # before torch loads, so its pools start this small
    with conn:
        from server.training.trainer import warm_up

        if warm:
            with contextlib.suppress(Exception):  # train() raises it again, to the parent
                warm_up()
        try:
            spec: TrainSpec = conn.recv()
        except (EOFError, OSError):  # a spare the pool no longer wants
            return
        _train_and_report(conn, spec)


def _train_and_report(conn: Connection, spec: TrainSpec) -> None:
    try:
        from server.training.trainer import train

        result = train(spec, lambda progress: conn.send(("progress", progress)))
        conn.send(("result", result))
    except Exception as exc:
        conn.send(("error", (type(exc).__name__, str(exc), traceback.format_exc())))
    finally:
        # Everything is sent and the adapter saved; skip the interpreter's teardown of
        # torch and friends, which takes seconds and holds the worker slot meanwhile.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
