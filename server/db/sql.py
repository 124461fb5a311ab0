"""SQL text and the row tuples it binds, for the SQLite store."""

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from schemas import Interaction, StoredInteraction
from server.core.clock import utc
from server.core.errors import InvalidRequest
from server.db.records import CommittedBatch
from server.db.writer import Insert

INSERT_INTERACTIONS = Insert(
    "INSERT INTO interactions (id, tenant, agent_type, success, session_id, recorded_at, body) VALUES",
    7,
)
_INTERACTION_COLUMNS = "id, recorded_at, body"
GET_INTERACTION = f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE tenant = ? AND id = ?"
LIST_INTERACTIONS = f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?"
SUCCESSFUL_SINCE = (
    f"SELECT {_INTERACTION_COLUMNS} FROM interactions "
    "WHERE tenant = ? AND success = 1 AND recorded_at >= ? ORDER BY id DESC LIMIT ?"
)
# json_extract reads the task in SQLite's thread, without the GIL; SQLite 3.40
# refuses a BLOB there (3.45 would read it as JSONB), hence the CAST
COMMITTED_AFTER = (
    f"SELECT tenant, {_INTERACTION_COLUMNS}, json_extract(CAST(body AS TEXT), '$.task_description') "
    "FROM interactions WHERE id > ? ORDER BY id LIMIT ?"
)

SET_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
GET_META = "SELECT value FROM meta WHERE key = ?"

INSERT_TOKEN = "INSERT INTO tokens (id, tenant, agent, hash, created_at) VALUES (?, ?, ?, ?, ?)"
_TOKEN_COLUMNS = "id, tenant, agent, created_at, revoked_at"
FIND_TOKEN = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?"
LIST_TOKENS = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?"
TOKEN_ACTIVE_IN_TENANT = "SELECT 1 FROM tokens WHERE tenant = ? AND id = ? AND revoked_at IS NULL"
REVOKE_TOKEN = "UPDATE tokens SET revoked_at = ? WHERE tenant = ? AND id = ? AND revoked_at IS NULL"
COUNT_ACTIVE_TOKENS = "SELECT count(*) FROM tokens WHERE revoked_at IS NULL"

COUNTS = """
SELECT (SELECT count(*) FROM interactions WHERE tenant = ?),
       (SELECT count(*) FROM learnings WHERE tenant = ? AND status = 'active')
"""


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


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
