"""The miner's side of a miner host (`miner_host.py`): the calls a host makes on
its `Miner`, by name, and the loop that serves them in a process of its own.

One table serves a miner in a thread of the server and one in another process.

Every call answers `Answer(value, cursor, queued)`, so the host knows the miner's
cursor and whether group claims wait without asking again. Batches sent to another
process travel as `WireBatch`: the bodies the store already encoded for SQLite
(one bytes object per interaction pickles as a copy, where a pydantic model
pickles field by field on the server's GIL), rebuilt there by the store's own
decoder.
"""

import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from server.learning.committed import CommittedBatch, StoredItems
from server.learning.miner import Committed, Miner, MinerParams


@dataclass(frozen=True, slots=True)
class Answer:
    value: Any
    cursor: int
    queued: bool


@dataclass(frozen=True, slots=True)
class WireBatch:
    tenant: str
    first_id: int
    recorded_at: float
    bodies: Sequence[bytes]


def to_wire(batch: CommittedBatch) -> WireBatch:
    """A committed batch as another process is sent it. Every batch the store
    reports carries its bodies (`CommittedBatch.bodies`)."""
    if len(batch.bodies) != len(batch.items):
        raise ValueError("a batch for another process needs the stored body of each item")
    return WireBatch(batch.tenant, batch.first_id, batch.recorded_at, batch.bodies)


def from_wire(batch: WireBatch) -> CommittedBatch:
    items = list(StoredItems(batch.first_id, batch.recorded_at, batch.bodies))
    return CommittedBatch(batch.tenant, batch.first_id, batch.recorded_at, items)


def unknown(miner: Miner, asked: set[tuple[str, str]]) -> list[str]:
    """The distinct task descriptions of `asked` (tenant, text) that have no
    cluster yet, so need embedding before the fold."""
    return list({text for tenant, text in asked if not miner.knows(tenant, text)})


def fold_wire(miner: Miner, batches: list[WireBatch], vectors: Any, now: float) -> Any:
    committed: list[Committed] = [from_wire(b) for b in batches]
    return miner.fold(committed, vectors, now)


CALLS: dict[str, Callable[..., Any]] = {
    "restore": Miner.restore,
    "unknown": unknown,
    "fold": Miner.fold,
    "fold_wire": fold_wire,
    "sweep": Miner.sweep,
    "workflows": Miner.workflows,
    "history": Miner.history,
}


def call(miner: Miner, name: str, args: tuple[Any, ...]) -> Answer:
    """Run one call by name on `miner`."""
    value = CALLS[name](miner, *args)
    return Answer(value, miner.cursor, miner.queued)


def serve(conn: Connection, params: MinerParams) -> None:
    """A miner process's loop: answer each `(name, args)` with `(True, Answer)` or
    `(False, "Error: message")`, one at a time, until None or EOF. SIGINT is
    ignored, so Ctrl-C in a terminal reaches the server alone, which stops this."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    miner = Miner(params)
    while (request := _receive(conn)) is not None:
        name, args = request
        try:
            reply: tuple[bool, Any] = (True, call(miner, name, args))
        except Exception as exc:  # the host raises it as MinerFailed; the loop goes on
            reply = (False, f"{type(exc).__name__}: {exc}")
        conn.send(reply)


def _receive(conn: Connection) -> tuple[str, tuple[Any, ...]] | None:
    try:
        request: tuple[str, tuple[Any, ...]] | None = conn.recv()
    except EOFError:
        return None
    return request
