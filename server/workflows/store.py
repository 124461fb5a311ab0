"""Storage of the workflow learner: each accepted event batch as one row (so an
acknowledged batch is durable at any rate), and a checkpoint of the learner with
the last batch it reflects."""

from collections.abc import Callable

from server.db.database import Fetch
from server.db.writer import Writer

MAX_BATCH_ID = "SELECT coalesce(max(id), 0) FROM workflow_batches"
INSERT_BATCH = "INSERT INTO workflow_batches (id, tenant, received_at, body) VALUES (?, ?, ?, ?)"
BATCHES_AFTER = (
    "SELECT id, tenant, received_at, body FROM workflow_batches WHERE id > ? ORDER BY id LIMIT ?"
)
SAVE_CHECKPOINT = """
INSERT INTO workflow_checkpoint (id, cursor, state) VALUES (1, ?, ?)
ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, state = excluded.state
"""
DROP_BATCHES = "DELETE FROM workflow_batches WHERE id <= ?"
CHECKPOINT = "SELECT cursor, state FROM workflow_checkpoint WHERE id = 1"


class WorkflowStore:
    def __init__(self, writer: Callable[[], Writer], fetch: Fetch) -> None:
        self._writer = writer
        self._fetch = fetch
        self._next_id = 1

    async def open(self) -> None:
        self._next_id = int((await self._fetch(MAX_BATCH_ID, ()))[0][0]) + 1

    async def add_batch(self, tenant: str, at: float, body: bytes) -> int:
        """The batch's id, after its commit. Cancelling leaves its fate unknown."""
        batch_id = self._next_id
        self._next_id += 1
        await self._writer().submit([(INSERT_BATCH, [(batch_id, tenant, at, body)])])
        return batch_id

    async def batches_after(self, cursor: int, limit: int) -> list[tuple[int, str, float, bytes]]:
        rows = await self._fetch(BATCHES_AFTER, (cursor, limit))
        return [(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    async def checkpoint(self) -> tuple[int, bytes] | None:
        rows = await self._fetch(CHECKPOINT, ())
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    async def save_checkpoint(self, cursor: int, state: bytes) -> None:
        """The learner as of batch `cursor`, and drop the batches it reflects, in
        one commit."""
        await self._writer().submit(
            [(SAVE_CHECKPOINT, [(cursor, state)]), (DROP_BATCHES, [(cursor,)])]
        )
