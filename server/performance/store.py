"""Executions: the performance optimizer's evidence, one row per task run."""

from collections.abc import Callable
from dataclasses import dataclass

from server.db.database import Fetch
from server.db.writer import Writer

LAST_EXECUTION_ID = "SELECT coalesce(max(id), 0) FROM executions"
INSERT_EXECUTION = """
INSERT INTO executions (id, tenant, agent_type, task_category, success, at, body)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
EXECUTIONS_OF_AGENT = """
SELECT body FROM executions WHERE tenant = ? AND agent_type = ? AND at >= ?
ORDER BY at DESC LIMIT ?
"""
EXECUTIONS = "SELECT body FROM executions WHERE tenant = ? AND at >= ? ORDER BY at DESC LIMIT ?"


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    agent_type: str
    task_category: str
    success: bool
    at: float
    body: bytes


class ExecutionStore:
    def __init__(self, writer: Callable[[], Writer], fetch: Fetch) -> None:
        self._writer = writer
        self._fetch = fetch
        self._next_id = 1

    async def open(self) -> None:
        self._next_id = int((await self._fetch(LAST_EXECUTION_ID, ()))[0][0]) + 1

    async def add(self, tenant: str, rows: list[ExecutionRow]) -> list[int]:
        """Ids after the commit. Cancelling leaves their fate unknown."""
        first = self._next_id
        self._next_id += len(rows)
        values = [
            (first + n, tenant, r.agent_type, r.task_category, int(r.success), r.at, r.body)
            for n, r in enumerate(rows)
        ]
        await self._writer().submit([(INSERT_EXECUTION, values)])
        return list(range(first, first + len(rows)))

    async def since(
        self, tenant: str, agent_type: str | None, since: float, limit: int
    ) -> list[bytes]:
        """Encoded executions since `since`, newest first."""
        if agent_type is None:
            rows = await self._fetch(EXECUTIONS, (tenant, since, limit))
        else:
            rows = await self._fetch(EXECUTIONS_OF_AGENT, (tenant, agent_type, since, limit))
        return [bytes(r[0]) for r in rows]
