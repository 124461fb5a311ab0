"""Where the miner runs: a thread of the server's process, or a process of its own.

Mining is Python CPU work. In a thread it shares the GIL with the event loop: under
WebSocket ingest (bench/ingest.py) py-spy put 60% of the server's samples in the
miner's thread, and the loop that acknowledges writes got the rest of one core. In
a process of its own (multiprocessing "spawn") it runs beside the loop on another
core: the server sends it the bodies it already encoded for SQLite and reads back
what changed (`miner_worker.py`). Both hosts run the same `Miner`, one call at a
time, in the order the calls were made, so the extractor sees no difference.

A dead miner process fails the call in flight and every call after it with
`MinerFailed`, until `restore` starts a new one from the store's state (the
extractor's recovery path does exactly that).
"""

import asyncio
import enum
import logging
import multiprocessing
from collections.abc import Container, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from server.core.errors import KaizenServerError
from server.learning import miner_worker
from server.learning.committed import CommittedBatch
from server.learning.miner import FoldResult, Miner, MinerParams, MiningState, Vectors
from server.learning.miner_worker import Answer, call, to_wire
from server.learning.patterns import Evidence
from server.workflows.mining import WorkflowPattern

if TYPE_CHECKING:
    from server.core.vectors import Vector

log = logging.getLogger("kaizen.miner")

STOP_WAIT_S = 10.0
"""How long `close` waits for the miner process to exit before killing it."""


class MinerFailed(KaizenServerError):
    """The miner raised, or its process died; `restore` starts afresh."""


class HostState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


class MinerHost:
    """The calls the extractor and the strategy service make on the miner. This
    base runs the miner in a thread of the server (`miner_process=false`)."""

    def __init__(self, params: MinerParams) -> None:
        self._params = params
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="kaizen-miner")
        self._miner = self._local_miner(params)
        self.cursor = 0
        self.queued = False
        self.state = HostState.NEW

    @property
    def pid(self) -> int | None:
        """The miner's process id, when it has a process of its own."""
        return None

    async def restore(self, state: MiningState) -> None:
        """Start again from persisted state. Not safe to cancel: the miner may be
        left between two states."""
        self.state = HostState.RUNNING
        await self._call("restore", state)

    async def unknown(self, asked: set[tuple[str, str]]) -> list[str]:
        """The texts of `asked` (tenant, text) that the miner has not placed yet.
        Safe to cancel (a read)."""
        found: list[str] = await self._call("unknown", asked)
        return found

    async def fold(
        self, batches: Sequence[CommittedBatch], vectors: Vectors, now: float
    ) -> FoldResult:
        """`Miner.fold`. Not safe to cancel: the miner would be ahead of what the
        caller persists."""
        result: FoldResult = await self._call("fold", batches, vectors, now)
        return result

    async def sweep(self, now: float, slices: Container[int], parts: int) -> FoldResult:
        """`Miner.sweep`. Not safe to cancel (see `fold`)."""
        result: FoldResult = await self._call("sweep", now, slices, parts)
        return result

    async def workflows(
        self, tenant: str, patterns: list[WorkflowPattern], active: Iterable[int]
    ) -> FoldResult:
        """`Miner.workflows`. Not safe to cancel (see `fold`)."""
        result: FoldResult = await self._call("workflows", tenant, patterns, list(active))
        return result

    async def history(
        self, tenant: str, task: str, vector: "Vector | None", now: float
    ) -> tuple[int | None, dict[str, Evidence]]:
        """`Miner.history`, between folds. Safe to cancel (a read)."""
        found: tuple[int | None, dict[str, Evidence]] = await self._call(
            "history", tenant, task, vector, now
        )
        return found

    async def close(self) -> None:
        """Finish the call in flight, then let the thread go. Idempotent."""
        self.state = HostState.CLOSED
        await asyncio.to_thread(self._pool.shutdown, True)

    async def _call(self, name: str, *args: Any) -> Any:
        if self.state is HostState.CLOSED:
            raise MinerFailed("the miner host is closed")
        loop = asyncio.get_running_loop()
        answer: Answer = await loop.run_in_executor(self._pool, self._answer, name, args)
        self.cursor, self.queued = answer.cursor, answer.queued
        return answer.value

    def _local_miner(self, params: MinerParams) -> Miner | None:
        """The miner this process runs calls on (none when it has its own)."""
        return Miner(params)

    def _answer(self, name: str, args: tuple[Any, ...]) -> Answer:
        assert self._miner is not None  # set by _local_miner for a thread host
        return call(self._miner, name, args)


class ProcessMinerHost(MinerHost):
    """The miner in a process of its own (`miner_process=true`, the default). The
    host's one thread sends each call down a pipe and waits for its answer, with
    the GIL released while it waits."""

    def __init__(self, params: MinerParams, *, mp_context: str = "spawn") -> None:
        super().__init__(params)
        self._context: Any = multiprocessing.get_context(mp_context)
        self._process: Any = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _local_miner(self, params: MinerParams) -> Miner | None:
        return None  # the miner lives in the process `restore` starts

    async def restore(self, state: MiningState) -> None:
        """Start a miner process if none is alive, then restore it. Not safe to
        cancel (see `MinerHost.restore`)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._ensure_process)
        await super().restore(state)

    async def fold(
        self, batches: Sequence[CommittedBatch], vectors: Vectors, now: float
    ) -> FoldResult:
        wire = [to_wire(b) for b in batches]
        result: FoldResult = await self._call("fold_wire", wire, vectors, now)
        return result

    async def close(self) -> None:
        """Finish the call in flight, ask the process to exit, kill it if it has
        not within STOP_WAIT_S. Idempotent; not safe to cancel."""
        if self.state is HostState.CLOSED:
            return
        self.state = HostState.CLOSED
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._stop_process)
        await super().close()

    def _ensure_process(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self._stop_process()
        mine, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=miner_worker.serve,
            args=(theirs, self._params),
            name="kaizen-miner",
            daemon=True,  # a server that exits without close() takes it down too
        )
        process.start()
        theirs.close()  # the process holds the only other end: its exit means EOF here
        self._process, self._conn = process, mine
        log.info("miner process %d started", process.pid)

    def _answer(self, name: str, args: tuple[Any, ...]) -> Answer:
        if self._conn is None:
            raise MinerFailed("the miner process is not running; restore starts one")
        try:
            self._conn.send((name, args))
            ok, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._stop_process()
            raise MinerFailed("the miner process died", call=name) from exc
        if not ok:
            raise MinerFailed(f"the miner failed: {value}", call=name)
        answer: Answer = value
        return answer

    def _stop_process(self) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass  # already gone
            conn.close()
        if process is not None:
            process.join(STOP_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join()


def miner_host(params: MinerParams, *, in_process: bool) -> MinerHost:
    return ProcessMinerHost(params) if in_process else MinerHost(params)
