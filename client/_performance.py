"""The performance optimizer's SDK methods (record_execution,
get_recommendations, get_agent_performance, compare_agents); mixed into
`KaizenClient`."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from client._build import local
from client._ops import operation
from schemas import RecordResult, encode
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
    Priority,
    Recommendation,
    Recommendations,
    RecommendationsQuery,
)

M = TypeVar("M", bound=BaseModel)


class PerformanceMethods:
    """Needs `_call` from the client it is mixed into."""

    async def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        raise NotImplementedError

    @operation("record_executions")
    async def record_execution(
        self,
        *,
        agent_type: str,
        task_category: str,
        completion_time: float,
        iterations: int,
        success: bool,
        errors: Sequence[str] = (),
        actions_count: int = 0,
        timestamp: datetime | None = None,
    ) -> int:
        """Record one execution; returns its id once stored."""
        record = local(
            ExecutionRecord,
            agent_type=agent_type,
            task_category=task_category,
            completion_time=completion_time,
            iterations=iterations,
            success=success,
            errors=list(errors),
            actions_count=actions_count,
            timestamp=timestamp,
        )
        return (await self.record_executions([record]))[0]

    @operation("record_executions")
    async def record_executions(self, records: Sequence[ExecutionRecord]) -> list[int]:
        """Record a batch atomically; returns the ids in order."""
        body = encode(local(ExecutionBatch, executions=list(records)), exclude_none=True)
        return (await self._call("POST", "/executions", RecordResult, body=body)).ids

    @operation("agent_performance")
    async def get_agent_performance(
        self, agent_type: str, *, window_s: int = 86_400, windows: int = 30
    ) -> AgentPerformance:
        query = local(PerformanceQuery, window_s=window_s, windows=windows)
        path = f"/performance/agents/{agent_type}"
        return await self._call("GET", path, AgentPerformance, params=query.model_dump())

    @operation("compare_agents")
    async def compare_agents(self, a: str, b: str) -> AgentComparison:
        query = local(CompareQuery, a=a, b=b)
        params = query.model_dump()
        return await self._call("GET", "/performance/compare", AgentComparison, params=params)

    @operation("recommendations")
    async def get_recommendations(
        self, agent_type: str | None = None, *, min_priority: Priority | str = Priority.LOW
    ) -> list[Recommendation]:
        """Recommendations, highest priority first."""
        query = local(RecommendationsQuery, agent_type=agent_type, min_priority=min_priority)
        params = query.model_dump(mode="json", exclude_none=True)
        return (await self._call("GET", "/recommendations", Recommendations, params=params)).items

    @operation("bottlenecks")
    async def get_bottlenecks(self, agent_type: str | None = None) -> Bottlenecks:
        params = local(BottlenecksQuery, agent_type=agent_type).model_dump(exclude_none=True)
        return await self._call("GET", "/performance/bottlenecks", Bottlenecks, params=params)

    @operation("performance_stats")
    async def get_performance_stats(self) -> PerformanceStats:
        return await self._call("GET", "/performance/stats", PerformanceStats)
