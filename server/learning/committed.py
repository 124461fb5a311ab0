"""Interactions as committed: the body each is stored as, and the batches the
interaction store reports after each commit. No SQL here: `store.py` binds these."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from schemas import Interaction, StoredInteraction
from server.core.clock import utc
from server.core.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """Interactions of one write, as the store reports them once committed (read
    back from the store, adjacent writes of a tenant committed together may make
    one batch)."""

    tenant: str
    first_id: int
    recorded_at: float
    items: Sequence[Interaction]
    bodies: Sequence[bytes] = ()
    """Each item as stored (`interaction_body`), when the store has it at hand:
    what a miner in another process is sent instead of the models."""
    tasks: Sequence[str] = ()
    """Each item's task description, when the store read it beside the body: a
    batch read back from the store need then build no model on the event loop."""

    def task_descriptions(self) -> Sequence[str]:
        return self.tasks or [item.task_description for item in self.items]


REPLY_NESTING = 58
"""Spare levels proved when a body is first encoded. orjson writes 254 levels and
pydantic's JSON parser (the SDK) reads 200, and a stored interaction sits 3 levels
down in a page: 254 - 58 leaves fields at most 195 deep, so every reply carrying
one stays under 200."""
MAX_BODY_DEPTH = 253 - REPLY_NESTING


def interaction_body(item: Interaction) -> bytes:
    """An interaction's fields, whole, for the `body` column.

    orjson reads JSON nested up to 1024 levels but writes only 254, so a body could
    be accepted yet never be sent back. Encoding it once inside REPLY_NESTING arrays
    proves every reply that carries it can be written and read; that costs one C call,
    where walking every value in Python to measure depth cost ~10% of WebSocket
    ingest (bench/ingest.py). Raises InvalidRequest for deeper bodies.

    Most bodies need no such proof: every level of nesting opens with `[` or `{`,
    so a body holding fewer of them than MAX_BODY_DEPTH is shallow enough as it
    stands. Counting them is two C scans (well under 1 µs for a typical body), where
    wrapping costs a Python loop of REPLY_NESTING steps (about 2 µs)."""
    try:
        body = orjson.dumps(item.__dict__, option=orjson.OPT_NAIVE_UTC)
        if body.count(b"[") + body.count(b"{") < MAX_BODY_DEPTH:
            return body
        wrapped = orjson.dumps(_nest(item.__dict__), option=orjson.OPT_NAIVE_UTC)
    except orjson.JSONEncodeError:
        raise InvalidRequest("JSON nested too deep to store", max_depth=MAX_BODY_DEPTH) from None
    return wrapped[REPLY_NESTING:-REPLY_NESTING]


def _nest(value: object) -> object:
    for _ in range(REPLY_NESTING):
        value = [value]
    return value


def interaction_values(
    interaction_id: int, tenant: str, item: Interaction, body: bytes, now: float
) -> tuple[object, ...]:
    """The row of one interaction: its fields go whole into `body` (one encode,
    few bound parameters: binding is GIL-held work on the writer thread); the
    columns beside it are the ones queries filter on."""
    return (interaction_id, tenant, item.agent_type, item.success, item.session_id, now, body)


def stored_interaction(r: Sequence[Any]) -> StoredInteraction:
    """Rebuild a stored interaction from (id, recorded_at, body)."""
    fields = orjson.loads(r[2])
    recorded_at = utc(r[1])
    stamp = fields.pop("timestamp")
    timestamp = datetime.fromisoformat(stamp) if stamp else recorded_at
    return StoredInteraction.model_construct(
        id=r[0], recorded_at=recorded_at, timestamp=timestamp, **fields
    )


class StoredItems(Sequence[Interaction]):
    """Interactions of one write read back from the store, each rebuilt from its
    body only when asked for. A miner in another process is sent the bodies, so
    while the extractor reads a backlog back (`Extractor._next_batches`) the event
    loop builds no model: at ~6 µs each, rebuilding 1,000 per fold showed in the
    ack p99 of the writes arriving meanwhile (bench/ingest.py)."""

    __slots__ = ("_bodies", "_first_id", "_recorded_at")

    def __init__(self, first_id: int, recorded_at: float, bodies: Sequence[bytes]) -> None:
        self._first_id = first_id
        self._recorded_at = recorded_at
        self._bodies = bodies

    def __len__(self) -> int:
        return len(self._bodies)

    def __getitem__(self, n: Any) -> Any:
        if isinstance(n, slice):
            return [self[i] for i in range(*n.indices(len(self)))]
        body = self._bodies[n]
        first = self._first_id if n >= 0 else self._first_id + len(self)
        return stored_interaction((first + n, self._recorded_at, body))

    def __iter__(self) -> Iterator[Interaction]:
        for n, body in enumerate(self._bodies):
            yield stored_interaction((self._first_id + n, self._recorded_at, body))


def committed_batches(rows: Sequence[Sequence[Any]]) -> list[CommittedBatch]:
    """Rows of COMMITTED_AFTER as batches: consecutive rows of one tenant, one
    commit time and consecutive ids (one write, or adjacent writes of a tenant
    committed together) make one batch."""
    batches: list[CommittedBatch] = []
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or not _same_write(rows[end - 1], rows[end]):
            batches.append(_batch(rows[start:end]))
            start = end
    return batches


def _same_write(before: Sequence[Any], row: Sequence[Any]) -> bool:
    return bool(row[0] == before[0] and row[1] == before[1] + 1 and row[2] == before[2])


def _batch(rows: Sequence[Sequence[Any]]) -> CommittedBatch:
    tenant, first_id, recorded_at = rows[0][0], rows[0][1], rows[0][2]
    bodies = [r[3] for r in rows]
    items = StoredItems(first_id, recorded_at, bodies)
    # SQLite before 3.45 ends a string json_extract reads at \u0000: such a batch's
    # tasks come from its items instead
    cut = any(b"\\u0000" in body for body in bodies)
    tasks = [] if cut else [r[4] for r in rows]
    return CommittedBatch(tenant, first_id, recorded_at, items, bodies, tasks)
