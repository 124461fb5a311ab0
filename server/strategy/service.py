"""The adaptive strategy service: analyse a task against the
history of similar ones, pick an execution strategy by Thompson sampling with
back-off (`strategy.bandit`), and learn from the outcome.

An outcome feeds three things: the posteriors of every context level it was
selected in, an interaction for the learning engine (agent type `strategy`, so
the engine mines TASK_STRATEGY learnings from it like any other), and an
execution for the performance optimizer (agent type `strategy:<name>`, so
strategies can be compared and trended like agents).
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from schemas import Interaction
from schemas.performance import ExecutionRecord
from schemas.strategy import (
    Complexity,
    DurationEstimate,
    ExecutionStrategy,
    OutcomeReport,
    OutcomeResult,
    RankedStrategy,
    SelectRequest,
    StrategySelection,
    StrategyShare,
    StrategyStatistics,
    SuggestedAgent,
    TaskAnalysis,
    TaskDescription,
)
from server.core.clock import Clock, utc
from server.core.embedder import Embedder
from server.core.errors import Conflict, InvalidRequest, NotFound
from server.core.stats import wilson_lower_bound
from server.learning.claims import pool
from server.learning.extractor import Extractor
from server.learning.patterns import Evidence
from server.learning.service import LearningService
from server.performance.service import PerformanceService
from server.strategy import analysis
from server.strategy.bandit import STATE_VERSION, ArmScore, BanditParams, StrategyRanker
from server.strategy.sequence import agent_sequence
from server.strategy.store import OutcomeWrite, StrategyStore

STRATEGY_AGENT = "strategy"
"""The agent type strategy outcomes are recorded under in the learning engine."""
SUGGESTED_MAX = 4
DURATIONS_LOADED = 50_000
STRATEGIES = [s.value for s in ExecutionStrategy]


@dataclass(frozen=True, slots=True)
class History:
    cluster_id: int | None
    agents: dict[str, Evidence]


@dataclass(slots=True)
class LogDurations:
    """Running n, Σ ln(1 + d), Σ ln²(1 + d) of successful outcomes' durations."""

    n: int = 0
    s1: float = 0.0
    s2: float = 0.0

    def add(self, duration: float) -> None:
        x = math.log1p(duration)
        self.n, self.s1, self.s2 = self.n + 1, self.s1 + x, self.s2 + x * x


class StrategyService:
    def __init__(
        self,
        store: StrategyStore,
        extractor: Extractor,
        learning: LearningService,
        performance: PerformanceService,
        embedder: Embedder | None,
        clock: Clock,
        params: BanditParams,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._extractor = extractor
        self._learning = learning
        self._performance = performance
        self._embedder = embedder
        self._clock = clock
        self._params = params
        self._rng = rng or random.Random()
        self._rankers: dict[str, StrategyRanker] = {}
        self._durations: dict[tuple[str, int], LogDurations] = {}
        self._settling: set[tuple[str, int]] = set()
        self.change_points = 0

    async def start(self) -> None:
        """Load the posteriors and duration history. Not safe to cancel."""
        saved: dict[str, dict[str, Any]] = {}
        for tenant, context, state in await self._store.arms():
            saved.setdefault(tenant, {})[context] = orjson.loads(state)
        for tenant, contexts in saved.items():
            whole = {"version": STATE_VERSION, "contexts": contexts}
            self._rankers[tenant] = StrategyRanker.from_state(whole, self._params)
        for tenant, level, duration in await self._store.successful_durations(DURATIONS_LOADED):
            self._durations.setdefault((tenant, level), LogDurations()).add(duration)

    def _ranker(self, tenant: str) -> StrategyRanker:
        found = self._rankers.get(tenant)
        if found is None:
            found = self._rankers[tenant] = StrategyRanker(self._params)
        return found

    # -- analysis --------------------------------------------------------------

    async def analyze(self, tenant: str, task: TaskDescription) -> TaskAnalysis:
        """Analyse and store the task. Cancelling leaves the store write's fate unknown."""
        families = analysis.requirements(task.description, task.context)
        level = analysis.complexity(task.description, families, task.context)
        history = await self._history(tenant, task.description)
        now = self._clock.now()

        def build(task_id: int) -> TaskAnalysis:
            return TaskAnalysis(
                task_id=task_id,
                description=task.description,
                complexity=level,
                complexity_name=level.name,
                requirements=families,
                keywords=analysis.keywords(task.description),
                suggested_agents=_suggested(history, families),
                estimated_duration=self._duration(tenant, history, level),
                cluster_id=history.cluster_id,
                similar_tasks=sum(ev.n for ev in history.agents.values()),
                created_at=utc(now),
            )

        built: list[TaskAnalysis] = []
        await self._store.add_task(tenant, now, _encoder(build, built, task.context))
        return built[0]

    async def _history(self, tenant: str, description: str) -> History:
        vector = await self._embedder.embed_one(description) if self._embedder else None
        cluster_id, profile = await self._extractor.history(tenant, description, vector)
        profile.pop(STRATEGY_AGENT, None)
        return History(cluster_id, profile)

    def _duration(self, tenant: str, history: History, level: Complexity) -> DurationEstimate:
        """Back-off: similar tasks, then outcomes at this complexity, then the prior."""
        pooled = pool(list(history.agents.values())) if history.agents else None
        similar = (
            analysis.from_similar_tasks(pooled.k, pooled.sum_t, pooled.sum_t2) if pooled else None
        )
        logs = self._durations.get((tenant, int(level)))
        by_level = analysis.from_log_durations(logs.n, logs.s1, logs.s2) if logs else None
        return similar or by_level or analysis.prior(level)

    # -- selection -------------------------------------------------------------

    async def select(self, tenant: str, request: SelectRequest) -> StrategySelection:
        """Rank the strategies for the task and store the selection. Cancelling
        leaves the store write's fate unknown."""
        task = await self._task_for(tenant, request)
        agents = request.agent_types or [a.agent_type for a in task.suggested_agents]
        contexts = _contexts(task.cluster_id, agents)
        ranked = self._ranker(tenant).rank(contexts, STRATEGIES, self._rng, greedy=request.greedy)
        best = ranked[0]
        chosen = ExecutionStrategy(best.arm)
        now = self._clock.now()

        def build(selection_id: int) -> StrategySelection:
            return StrategySelection(
                strategy_id=selection_id,
                task_id=task.task_id,
                execution_strategy=chosen,
                agent_sequence=agent_sequence(chosen, agents),
                confidence=best.lower,
                expected_success=best.mean,
                expected_duration=task.estimated_duration,
                greedy=request.greedy,
                alternatives=[_ranked(r) for r in ranked],
                created_at=utc(now),
            )

        built: list[StrategySelection] = []
        await self._store.add_selection(
            tenant,
            task.task_id,
            chosen.value,
            int(task.complexity),
            contexts,
            now,
            _encoder(build, built, {"description": task.description}),
        )
        return built[0]

    async def _task_for(self, tenant: str, request: SelectRequest) -> TaskAnalysis:
        if request.task_id is not None:
            return (await self._stored_task(tenant, request.task_id))[0]
        if request.description is None:
            raise InvalidRequest("give task_id or description")
        return await self.analyze(
            tenant, TaskDescription(description=request.description, context=request.context)
        )

    async def _stored_task(self, tenant: str, task_id: int) -> tuple[TaskAnalysis, dict[str, Any]]:
        body = await self._store.task(tenant, task_id)
        if body is None:
            raise NotFound("no such task", task_id=task_id)
        stored = orjson.loads(body)
        return TaskAnalysis.model_validate(stored["model"]), stored["extra"]

    # -- outcomes --------------------------------------------------------------

    async def record_outcome(
        self, tenant: str, strategy_id: int, report: OutcomeReport
    ) -> OutcomeResult:
        """Learn from one outcome: at most one per selection (409 after that).
        Cancelling after the posterior moved leaves the write's fate unknown."""
        key = (tenant, strategy_id)
        if key in self._settling:
            raise Conflict(
                "an outcome for this selection is being recorded", strategy_id=strategy_id
            )
        self._settling.add(key)
        try:
            return await self._settle(tenant, strategy_id, report)
        finally:
            self._settling.discard(key)

    async def _settle(self, tenant: str, strategy_id: int, report: OutcomeReport) -> OutcomeResult:
        selection = await self._store.selection(tenant, strategy_id)
        if selection is None:
            raise NotFound("no such strategy selection", strategy_id=strategy_id)
        if selection.has_outcome:
            raise Conflict("this selection already has its outcome", strategy_id=strategy_id)
        if selection.task_id != report.task_id:
            raise InvalidRequest("task_id does not match the selection", expected=selection.task_id)
        chosen = StrategySelection.model_validate(orjson.loads(selection.body)["model"])
        description = orjson.loads(selection.body)["extra"]["description"]
        interaction_id = await self._record_interaction(tenant, chosen, description, report)
        await self._performance.record(tenant, [_execution(chosen, selection.complexity, report)])
        ranker = self._ranker(tenant)
        changed = ranker.update(
            selection.contexts, chosen.execution_strategy.value, float(report.success)
        )
        self.change_points += int(changed)
        now = self._clock.now()
        await self._store.record_outcome(
            tenant,
            OutcomeWrite(
                strategy_id,
                report.success,
                report.actual_duration,
                now,
                report.model_dump_json().encode(),
                _context_states(ranker, selection.contexts),
            ),
        )
        if report.success:
            self._durations.setdefault((tenant, selection.complexity), LogDurations()).add(
                report.actual_duration
            )
        mean = ranker.rank(
            selection.contexts, [chosen.execution_strategy.value], self._rng, greedy=True
        )
        return OutcomeResult(
            strategy_id=strategy_id,
            execution_strategy=chosen.execution_strategy,
            success=report.success,
            expected_success=mean[0].mean,
            change_detected=changed,
            interaction_id=interaction_id,
        )

    async def _record_interaction(
        self, tenant: str, chosen: StrategySelection, description: str, report: OutcomeReport
    ) -> int:
        actions = [{"action": f"strategy:{chosen.execution_strategy.value}"}]
        actions += [{"action": f"agent:{a}"} for a in chosen.agent_sequence]
        item = Interaction(
            agent_type=STRATEGY_AGENT,
            task_description=description,
            actions_taken=actions,
            success=report.success,
            completion_time=report.actual_duration,
            iterations=report.actual_iterations,
            errors_encountered=report.errors_encountered,
            metadata={
                "strategy_id": chosen.strategy_id,
                "what_worked": report.what_worked,
                "improvements": report.improvements,
            },
        )
        return (await self._learning.record(tenant, [item])).ids[0]

    # -- statistics ------------------------------------------------------------

    async def statistics(self, tenant: str) -> StrategyStatistics:
        rows = await self._store.by_strategy(tenant)
        outcomes = sum(r.outcomes for r in rows)
        successes = sum(r.successes for r in rows)
        last = max((r.last_outcome_at for r in rows if r.last_outcome_at), default=None)
        ranker = self._rankers.get(tenant)
        return StrategyStatistics(
            total_tasks_analyzed=await self._store.task_count(tenant),
            strategies_selected=sum(r.selected for r in rows),
            outcomes_recorded=outcomes,
            learned_patterns=ranker.learned_arms() if ranker else 0,
            task_strategy_learnings=await self._learning.count_task_strategies(tenant),
            overall_success_rate=successes / outcomes if outcomes else None,
            change_points=self.change_points,
            by_strategy=[_share(r.strategy, r.selected, r.outcomes, r.successes) for r in rows],
            last_outcome_at=utc(last) if last else None,
        )


def _encoder(
    build: Callable[[int], Any], out: list[Any], extra: dict[str, Any]
) -> Callable[[int], bytes]:
    """Build the model once its id is known, keep it in `out`, and encode it with
    what the service needs later (`extra`)."""

    def encode(row_id: int) -> bytes:
        model = build(row_id)
        out.append(model)
        return orjson.dumps({"model": model.model_dump(mode="json"), "extra": extra})

    return encode


def _suggested(history: History, families: list[str]) -> list[SuggestedAgent]:
    """Agent types that succeed on similar tasks, by the Wilson lower bound of
    their success; without any, the roles the requirements call for (support 0)."""
    scored = [
        SuggestedAgent(
            agent_type=agent,
            success_rate=ev.success_rate,
            confidence=wilson_lower_bound(ev.k, ev.n),
            support=ev.n,
        )
        for agent, ev in history.agents.items()
        if ev.k > 0
    ]
    scored.sort(key=lambda s: (-s.confidence, s.agent_type))
    if scored:
        return scored[:SUGGESTED_MAX]
    roles = analysis.roles(families) or ["code"]
    return [
        SuggestedAgent(agent_type=r, success_rate=0.0, confidence=0.0, support=0.0)
        for r in roles[:SUGGESTED_MAX]
    ]


def _contexts(cluster_id: int | None, agents: list[str]) -> list[str]:
    """Finest to coarsest: the task cluster, the set of agent types, everything."""
    levels = [f"cluster:{cluster_id}"] if cluster_id is not None else []
    return [*levels, "agents:" + "+".join(sorted(set(agents))), "global"]


def _ranked(score: ArmScore) -> RankedStrategy:
    return RankedStrategy(
        strategy=ExecutionStrategy(score.arm),
        score=score.value,
        expected_success=score.mean,
        low=score.lower,
        high=score.upper,
        outcomes=score.outcomes,
        level=score.levels[0] if score.levels else "prior",
    )


def _context_states(ranker: StrategyRanker, contexts: list[str]) -> dict[str, bytes]:
    """The persisted form of the contexts an outcome moved."""
    states = {c: ranker.context_state(c) for c in contexts}
    return {c: orjson.dumps(state) for c, state in states.items() if state is not None}


def _execution(
    chosen: StrategySelection, complexity: int, report: OutcomeReport
) -> ExecutionRecord:
    return ExecutionRecord(
        agent_type=f"{STRATEGY_AGENT}:{chosen.execution_strategy.value}",
        task_category=Complexity(complexity).name.lower(),
        completion_time=report.actual_duration,
        iterations=report.actual_iterations,
        success=report.success,
        errors=[],
        actions_count=len(chosen.agent_sequence),
    )


def _share(strategy: str, selected: int, outcomes: int, successes: int) -> StrategyShare:
    return StrategyShare(
        strategy=ExecutionStrategy(strategy),
        selected=selected,
        outcomes=outcomes,
        success_rate=successes / outcomes if outcomes else None,
    )
