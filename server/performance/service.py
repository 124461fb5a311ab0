"""The performance optimizer service: record executions and
serve agent profiles, comparisons, bottlenecks and recommendations.

Every read loads the tenant's executions of the last `lookback_s` (at most
`max_rows`, newest first) and runs the pure core (`server.performance`) in a
thread: the statistics are CPU work, about a second per 100,000 executions.
"""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TypeVar

import orjson

from schemas import RecordResult
from schemas.performance import (
    AgentComparison,
    AgentPerformance,
    Bottlenecks,
    BottlenecksQuery,
    CompareQuery,
    ExecutionBatch,
    ExecutionRecord,
    PerformanceQuery,
    PerformanceStats,
    Recommendations,
    RecommendationsQuery,
)
from server.core.clock import Clock
from server.core.errors import BatchTooLarge, NotFound
from server.performance import bottlenecks, compare, recommend, summary
from server.performance.executions import Execution, NoExecutionsError, execution_from_record
from server.performance.store import ExecutionRow, ExecutionStore

T = TypeVar("T")
MAX_BATCH = 1000


class PerformanceService:
    def __init__(
        self, store: ExecutionStore, clock: Clock, *, lookback_s: float, max_rows: int
    ) -> None:
        self._store = store
        self._clock = clock
        self._lookback_s = lookback_s
        self._max_rows = max_rows

    async def record(
        self, tenant: str, records: Sequence[ExecutionRecord] | ExecutionRecord | ExecutionBatch
    ) -> RecordResult:
        """Store one execution, a batch or a list atomically; returns after the
        commit. Cancelling leaves the write's fate unknown."""
        if isinstance(records, ExecutionBatch):
            records = records.executions
        elif isinstance(records, ExecutionRecord):
            records = [records]
        if len(records) > MAX_BATCH:
            raise BatchTooLarge(f"at most {MAX_BATCH} executions per batch", max_batch=MAX_BATCH)
        now = self._clock.now()
        rows = [_row(execution_from_record(r, now)) for r in records]
        return RecordResult(ids=await self._store.add(tenant, rows))

    async def agent(self, tenant: str, agent_type: str, q: PerformanceQuery) -> AgentPerformance:
        """Safe to cancel: it only reads."""
        now = self._clock.now()
        found = await self._executions(tenant)
        return await self._run(
            lambda: summary.agent_performance(found, agent_type, now, q.window_s, q.windows),
            agent_type,
        )

    async def compare(self, tenant: str, q: CompareQuery) -> AgentComparison:
        """Safe to cancel: it only reads."""
        found = await self._executions(tenant)
        a = [e for e in found if e.agent_type == q.a]
        b = [e for e in found if e.agent_type == q.b]
        return await self._run(lambda: compare.compare(q.a, a, q.b, b), f"{q.a} or {q.b}")

    async def recommendations(self, tenant: str, q: RecommendationsQuery) -> Recommendations:
        """Safe to cancel: it only reads."""
        found = await self._executions(tenant)
        items = await asyncio.to_thread(recommend.recommend, found, q.agent_type, q.min_priority)
        return Recommendations(items=items)

    async def bottlenecks(self, tenant: str, q: BottlenecksQuery) -> Bottlenecks:
        """Safe to cancel: it only reads."""
        found = await self._executions(tenant)
        return Bottlenecks(
            items=await asyncio.to_thread(bottlenecks.bottlenecks, found, q.agent_type)
        )

    async def stats(self, tenant: str) -> PerformanceStats:
        found = await self._executions(tenant)
        return await asyncio.to_thread(summary.performance_stats, found)

    async def _executions(self, tenant: str) -> list[Execution]:
        since = self._clock.now() - self._lookback_s
        bodies = await self._store.since(tenant, None, since, self._max_rows)
        return [_execution(b) for b in bodies]

    async def _run(self, compute: Callable[[], T], agent: str) -> T:
        try:
            return await asyncio.to_thread(compute)
        except NoExecutionsError:
            raise NotFound("no executions of that agent type", agent_type=agent) from None


def _row(e: Execution) -> ExecutionRow:
    return ExecutionRow(
        e.agent_type, e.task_category, e.success, e.timestamp, orjson.dumps(asdict(e))
    )


def _execution(body: bytes) -> Execution:
    fields = orjson.loads(body)
    fields["errors"] = tuple(fields["errors"])
    return Execution(**fields)
