"""Storage of fine-tuning jobs: one row per job, its encoded `Job` as the body."""

from collections.abc import Callable

from server.db.database import Fetch
from server.db.writer import Writer

MAX_JOB_ID = "SELECT coalesce(max(id), 0) FROM jobs"
UPSERT_JOB = """
INSERT INTO jobs (id, tenant, state, created_at, body) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body
"""
GET_JOB = "SELECT body FROM jobs WHERE tenant = ? AND id = ?"
JOBS_IN_STATE = "SELECT tenant, body FROM jobs WHERE state = ? ORDER BY id"
LIST_JOBS = "SELECT body FROM jobs WHERE tenant = ? AND id < ? ORDER BY id DESC LIMIT ?"
LIST_JOBS_IN_STATE = (
    "SELECT body FROM jobs WHERE tenant = ? AND id < ? AND state = ? ORDER BY id DESC LIMIT ?"
)
LAST_JOB_AT = "SELECT max(created_at) FROM jobs WHERE tenant = ?"
COUNT_FINISHED = "SELECT count(*) FROM jobs WHERE tenant = ? AND state = 'succeeded'"


class JobStore:
    def __init__(self, writer: Callable[[], Writer], fetch: Fetch) -> None:
        self._writer = writer
        self._fetch = fetch
        self._next_id = 1

    async def open(self) -> None:
        self._next_id = int((await self._fetch(MAX_JOB_ID, ()))[0][0]) + 1

    def next_id(self) -> int:
        job_id = self._next_id
        self._next_id += 1
        return job_id

    async def save(self, tenant: str, job_id: int, state: str, at: float, body: bytes) -> None:
        """Insert or update; returns after the commit. Cancelling leaves its fate unknown."""
        await self._writer().submit([(UPSERT_JOB, [(job_id, tenant, state, at, body)])])

    async def get(self, tenant: str, job_id: int) -> bytes | None:
        rows = await self._fetch(GET_JOB, (tenant, job_id))
        return bytes(rows[0][0]) if rows else None

    async def in_state(self, state: str) -> list[tuple[str, bytes]]:
        return [(r[0], bytes(r[1])) for r in await self._fetch(JOBS_IN_STATE, (state,))]

    async def page(self, tenant: str, state: str | None, before: int, limit: int) -> list[bytes]:
        if state is None:
            rows = await self._fetch(LIST_JOBS, (tenant, before, limit))
        else:
            rows = await self._fetch(LIST_JOBS_IN_STATE, (tenant, before, state, limit))
        return [bytes(r[0]) for r in rows]

    async def succeeded(self, tenant: str) -> int:
        return int((await self._fetch(COUNT_FINISHED, (tenant,)))[0][0])
