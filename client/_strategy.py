"""The adaptive strategy system's SDK methods (analyze_task,
select_strategy, record_outcome, get_statistics as `get_strategy_statistics`,
since `get_statistics` is the learning engine's); mixed into `KaizenClient`."""

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from client._build import local
from client._ops import operation
from schemas import encode
from schemas.strategy import (
    OutcomeReport,
    OutcomeResult,
    SelectRequest,
    StrategySelection,
    StrategyStatistics,
    TaskAnalysis,
    TaskDescription,
)

M = TypeVar("M", bound=BaseModel)


class StrategyMethods:
    """Needs `_call` from the client it is mixed into."""

    async def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        raise NotImplementedError

    @operation("analyze_task")
    async def analyze_task(
        self, task_description: str, context: dict[str, Any] | None = None
    ) -> TaskAnalysis:
        """Complexity, requirements, keywords, suggested agents and a duration estimate."""
        body = local(TaskDescription, description=task_description, context=context or {})
        return await self._call("POST", "/tasks/analyze", TaskAnalysis, body=encode(body))

    @operation("select_strategy")
    async def select_strategy(
        self,
        task: TaskAnalysis | int | str,
        *,
        agent_types: Sequence[str] | None = None,
        context: dict[str, Any] | None = None,
        greedy: bool = False,
    ) -> StrategySelection:
        """A strategy for an analysed task (its analysis or id) or a description."""
        ids: dict[str, Any] = (
            {"description": task, "context": context or {}}
            if isinstance(task, str)
            else {"task_id": task if isinstance(task, int) else task.task_id}
        )
        agents = list(agent_types) if agent_types is not None else None
        body = local(SelectRequest, **ids, agent_types=agents, greedy=greedy)
        reply = StrategySelection
        return await self._call(
            "POST", "/strategies/select", reply, body=encode(body, exclude_none=True)
        )

    @operation("record_outcome")
    async def record_outcome(
        self,
        strategy_id: int,
        *,
        task_id: int,
        success: bool,
        actual_duration: float,
        actual_iterations: int = 1,
        errors_encountered: int = 0,
        what_worked: Sequence[str] = (),
        improvements: Sequence[str] = (),
    ) -> OutcomeResult:
        """What happened when the selected strategy ran; one outcome per selection."""
        body = local(
            OutcomeReport,
            task_id=task_id,
            success=success,
            actual_duration=actual_duration,
            actual_iterations=actual_iterations,
            errors_encountered=errors_encountered,
            what_worked=list(what_worked),
            improvements=list(improvements),
        )
        path = f"/strategies/{strategy_id}/outcome"
        return await self._call("POST", path, OutcomeResult, body=encode(body))

    @operation("strategy_statistics")
    async def get_strategy_statistics(self) -> StrategyStatistics:
        return await self._call("GET", "/strategies/statistics", StrategyStatistics)
