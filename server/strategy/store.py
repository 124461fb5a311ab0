"""Storage of the adaptive strategy system: analysed tasks, selections and their
outcomes, and the posterior state per context."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from server.db.database import Fetch
from server.db.writer import Step, Writer

MAX_IDS = """
SELECT (SELECT coalesce(max(id), 0) FROM strategy_tasks),
       (SELECT coalesce(max(id), 0) FROM strategy_selections)
"""
INSERT_TASK = "INSERT INTO strategy_tasks (id, tenant, created_at, body) VALUES (?, ?, ?, ?)"
GET_TASK = "SELECT body FROM strategy_tasks WHERE tenant = ? AND id = ?"
INSERT_SELECTION = """
INSERT INTO strategy_selections (id, tenant, task_id, strategy, complexity, contexts,
    created_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
GET_SELECTION = """
SELECT id, task_id, strategy, complexity, contexts, body, outcome_at IS NOT NULL
FROM strategy_selections WHERE tenant = ? AND id = ?
"""
SET_OUTCOME = """
UPDATE strategy_selections SET success = ?, duration = ?, outcome_at = ?, outcome = ?
WHERE tenant = ? AND id = ? AND outcome_at IS NULL
"""
UPSERT_ARM = """
INSERT INTO strategy_arms (tenant, context, state) VALUES (?, ?, ?)
ON CONFLICT (tenant, context) DO UPDATE SET state = excluded.state
"""
ALL_ARMS = "SELECT tenant, context, state FROM strategy_arms"
SUCCESSFUL_DURATIONS = """
SELECT tenant, complexity, duration FROM strategy_selections
WHERE success = 1 ORDER BY outcome_at DESC LIMIT ?
"""
TASK_COUNT = "SELECT count(*) FROM strategy_tasks WHERE tenant = ?"
BY_STRATEGY = """
SELECT strategy, count(*), count(outcome_at), coalesce(sum(success), 0), max(outcome_at)
FROM strategy_selections WHERE tenant = ? GROUP BY strategy
"""


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


class StrategyStore:
    def __init__(self, writer: Callable[[], Writer], fetch: Fetch) -> None:
        self._writer = writer
        self._fetch = fetch
        self._next = [1, 1]

    async def open(self) -> None:
        row = (await self._fetch(MAX_IDS, ()))[0]
        self._next = [int(v) + 1 for v in row]

    def _take(self, table: int, count: int = 1) -> int:
        first = self._next[table]
        self._next[table] += count
        return first

    async def add_task(self, tenant: str, at: float, body: Callable[[int], bytes]) -> int:
        """`body` encodes the task once its id is known; returns the id after the
        commit. Cancelling leaves its fate unknown."""
        task_id = self._take(0)
        await self._writer().submit([(INSERT_TASK, [(task_id, tenant, at, body(task_id))])])
        return task_id

    async def task(self, tenant: str, task_id: int) -> bytes | None:
        rows = await self._fetch(GET_TASK, (tenant, task_id))
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
        await self._writer().submit([(INSERT_SELECTION, [row])])
        return sid

    async def selection(self, tenant: str, selection_id: int) -> SelectionRecord | None:
        rows = await self._fetch(GET_SELECTION, (tenant, selection_id))
        if not rows:
            return None
        r = rows[0]
        return SelectionRecord(r[0], r[1], r[2], r[3], orjson.loads(r[4]), bytes(r[5]), bool(r[6]))

    async def record_outcome(self, tenant: str, o: OutcomeWrite) -> None:
        """The outcome and the posteriors it moved, in one commit."""
        steps: list[Step] = [
            (SET_OUTCOME, [(int(o.success), o.duration, o.at, o.body, tenant, o.selection_id)]),
            (UPSERT_ARM, [(tenant, ctx, state) for ctx, state in o.arms.items()]),
        ]
        await self._writer().submit([s for s in steps if s[1]])

    async def arms(self) -> list[tuple[str, str, bytes]]:
        """(tenant, context, state) of every posterior context."""
        return [(r[0], r[1], bytes(r[2])) for r in await self._fetch(ALL_ARMS, ())]

    async def successful_durations(self, limit: int) -> list[tuple[str, int, float]]:
        """(tenant, complexity, duration) of the latest successful outcomes."""
        rows = await self._fetch(SUCCESSFUL_DURATIONS, (limit,))
        return [(r[0], int(r[1]), float(r[2])) for r in rows]

    async def task_count(self, tenant: str) -> int:
        return int((await self._fetch(TASK_COUNT, (tenant,)))[0][0])

    async def by_strategy(self, tenant: str) -> list[StrategyShareRow]:
        rows = await self._fetch(BY_STRATEGY, (tenant,))
        return [StrategyShareRow(r[0], r[1], r[2], r[3], r[4]) for r in rows]
