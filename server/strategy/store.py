"""Storage of the adaptive strategy system and the performance optimizer: analysed
tasks, selections and their outcomes, posterior state per context, executions."""

import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from server.db.writer import Step, Writer
from server.strategy import store_sql as sql

Fetch = Callable[[str, tuple[Any, ...]], Awaitable[list[sqlite3.Row]]]


@dataclass(frozen=True, slots=True)
class SelectionRecord:
    id: int
    task_id: int
    strategy: str
    complexity: int
    contexts: list[str]
    body: bytes
    has_outcome: bool


@dataclass(frozen=True, slots=True)
class OutcomeWrite:
    selection_id: int
    success: bool
    duration: float
    at: float
    body: bytes
    arms: Mapping[str, bytes]
    """Posterior state of every context the outcome updated."""


@dataclass(frozen=True, slots=True)
class StrategyShareRow:
    strategy: str
    selected: int
    outcomes: int
    successes: int
    last_outcome_at: float | None


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    agent_type: str
    task_category: str
    success: bool
    at: float
    body: bytes


class StrategyStore:
    def __init__(self, writer: Callable[[], Writer], fetch: Fetch) -> None:
        self._writer = writer
        self._fetch = fetch
        self._next = [1, 1, 1]

    async def open(self) -> None:
        row = (await self._fetch(sql.MAX_IDS, ()))[0]
        self._next = [int(v) + 1 for v in row]

    def _take(self, table: int, count: int = 1) -> int:
        first = self._next[table]
        self._next[table] += count
        return first

    async def add_task(self, tenant: str, at: float, body: Callable[[int], bytes]) -> int:
        """`body` encodes the task once its id is known; returns the id after the
        commit. Cancelling leaves its fate unknown."""
        task_id = self._take(0)
        await self._writer().submit([(sql.INSERT_TASK, [(task_id, tenant, at, body(task_id))])])
        return task_id

    async def task(self, tenant: str, task_id: int) -> bytes | None:
        rows = await self._fetch(sql.GET_TASK, (tenant, task_id))
        return bytes(rows[0][0]) if rows else None

    async def add_selection(
        self,
        tenant: str,
        task_id: int,
        strategy: str,
        complexity: int,
        contexts: list[str],
        at: float,
        body: Callable[[int], bytes],
    ) -> int:
        """`body` encodes the selection once its id is known. Cancelling leaves its
        fate unknown."""
        sid = self._take(1)
        row = (sid, tenant, task_id, strategy, complexity, orjson.dumps(contexts), at, body(sid))
        await self._writer().submit([(sql.INSERT_SELECTION, [row])])
        return sid

    async def selection(self, tenant: str, selection_id: int) -> SelectionRecord | None:
        rows = await self._fetch(sql.GET_SELECTION, (tenant, selection_id))
        if not rows:
            return None
        r = rows[0]
        return SelectionRecord(r[0], r[1], r[2], r[3], orjson.loads(r[4]), bytes(r[5]), bool(r[6]))

    async def record_outcome(self, tenant: str, o: OutcomeWrite) -> None:
        """The outcome and the posteriors it moved, in one commit."""
        steps: list[Step] = [
            (sql.SET_OUTCOME, [(int(o.success), o.duration, o.at, o.body, tenant, o.selection_id)]),
            (sql.UPSERT_ARM, [(tenant, ctx, state) for ctx, state in o.arms.items()]),
        ]
        await self._writer().submit([s for s in steps if s[1]])

    async def arms(self) -> list[tuple[str, str, bytes]]:
        """(tenant, context, state) of every posterior context."""
        return [(r[0], r[1], bytes(r[2])) for r in await self._fetch(sql.ALL_ARMS, ())]

    async def successful_durations(self, limit: int) -> list[tuple[str, int, float]]:
        """(tenant, complexity, duration) of the latest successful outcomes."""
        rows = await self._fetch(sql.SUCCESSFUL_DURATIONS, (limit,))
        return [(r[0], int(r[1]), float(r[2])) for r in rows]

    async def task_count(self, tenant: str) -> int:
        return int((await self._fetch(sql.TASK_COUNT, (tenant,)))[0][0])

    async def by_strategy(self, tenant: str) -> list[StrategyShareRow]:
        rows = await self._fetch(sql.BY_STRATEGY, (tenant,))
        return [StrategyShareRow(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    # -- executions ------------------------------------------------------------

    async def add_executions(self, tenant: str, rows: list[ExecutionRow]) -> list[int]:
        """Ids after the commit. Cancelling leaves their fate unknown."""
        first = self._take(2, len(rows))
        values = [
            (first + n, tenant, r.agent_type, r.task_category, int(r.success), r.at, r.body)
            for n, r in enumerate(rows)
        ]
        await self._writer().submit([(sql.INSERT_EXECUTION, values)])
        return list(range(first, first + len(rows)))

    async def executions(
        self, tenant: str, agent_type: str | None, since: float, limit: int
    ) -> list[bytes]:
        """Encoded executions since `since`, newest first."""
        if agent_type is None:
            rows = await self._fetch(sql.EXECUTIONS, (tenant, since, limit))
        else:
            rows = await self._fetch(sql.EXECUTIONS_OF_AGENT, (tenant, agent_type, since, limit))
        return [bytes(r[0]) for r in rows]

    async def execution_count(self, tenant: str) -> int:
        return int((await self._fetch(sql.EXECUTION_COUNT, (tenant,)))[0][0])
