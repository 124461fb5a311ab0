"""Summaries of executions: totals, an agent type's performance, per-category figures.

Times and iterations are summarised by their mean and their type 7 quantiles
(`stats.quantile`); the success rate comes with its 95% Wilson score interval
(`stats.wilson_interval`). The error rate is the share of executions that met at
least one error, whether they failed or recovered.
"""

from collections import Counter
from collections.abc import Sequence

from schemas.performance import (
    DAY_S,
    AgentPerformance,
    CategoryPerformance,
    ErrorCount,
    MetricSummary,
    PerformanceStats,
)
from server.performance.bottlenecks import bottlenecks
from server.performance.executions import Execution, NoExecutionsError, group_by, to_datetime
from server.performance.signals import failures_by_error
from server.performance.stats import mean, quantile_sorted, wilson_interval
from server.performance.trend import DEFAULT_WINDOWS, trend

TOP_ERRORS = 5


def metric_summary(executions: Sequence[Execution]) -> MetricSummary:
    if not executions:
        raise ValueError("a summary needs at least one execution")
    n = len(executions)
    successes = sum(e.success for e in executions)
    low, high = wilson_interval(successes, n)
    times = sorted(e.completion_time for e in executions)
    iterations = sorted(float(e.iterations) for e in executions)
    return MetricSummary(
        executions=n,
        successes=successes,
        success_rate=successes / n,
        success_rate_low=low,
        success_rate_high=high,
        mean_time=mean(times),
        p50_time=quantile_sorted(times, 0.5),
        p95_time=quantile_sorted(times, 0.95),
        mean_iterations=mean(iterations),
        p50_iterations=quantile_sorted(iterations, 0.5),
        p95_iterations=quantile_sorted(iterations, 0.95),
        mean_actions=mean([float(e.actions_count) for e in executions]),
        error_rate=sum(bool(e.errors) for e in executions) / n,
    )


def top_errors(executions: Sequence[Execution], limit: int = TOP_ERRORS) -> list[ErrorCount]:
    """The errors met by the most executions; an error repeated in one run counts once."""
    met = Counter(error for e in executions for error in set(e.errors))
    failed = failures_by_error(executions)
    failures = sum(not e.success for e in executions)
    ranked = sorted(met.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [
        ErrorCount(
            error=error,
            executions=count,
            failures=failed[error],
            share_of_failures=failed[error] / failures if failures else 0.0,
        )
        for error, count in ranked
    ]


def categories(executions: Sequence[Execution]) -> list[CategoryPerformance]:
    """Per-category figures, the busiest category first."""
    groups = group_by(executions, lambda e: e.task_category)
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [
        CategoryPerformance(task_category=category, **metric_summary(group).model_dump())
        for category, group in ranked
    ]


def agent_performance(
    executions: Sequence[Execution],
    agent_type: str,
    now: float,
    window_s: float = DAY_S,
    max_windows: int = DEFAULT_WINDOWS,
) -> AgentPerformance:
    """`agent_type`'s performance. `executions` holds every agent type's executions:
    the bottlenecks compare the agent with its peers. Raises NoExecutionsError when
    the agent type has none."""
    own = [e for e in executions if e.agent_type == agent_type]
    if not own:
        raise NoExecutionsError(agent_type)
    return AgentPerformance(
        agent_type=agent_type,
        first_at=to_datetime(min(e.timestamp for e in own)),
        last_at=to_datetime(max(e.timestamp for e in own)),
        top_errors=top_errors(own),
        trend=trend(own, now, window_s, max_windows),
        categories=categories(own),
        bottlenecks=bottlenecks(executions, agent_type),
        **metric_summary(own).model_dump(),
    )


def performance_stats(executions: Sequence[Execution]) -> PerformanceStats:
    if not executions:
        return PerformanceStats(
            executions=0,
            agent_types=0,
            task_categories=0,
            success_rate=None,
            first_at=None,
            last_at=None,
        )
    return PerformanceStats(
        executions=len(executions),
        agent_types=len({e.agent_type for e in executions}),
        task_categories=len({e.task_category for e in executions}),
        success_rate=sum(e.success for e in executions) / len(executions),
        first_at=to_datetime(min(e.timestamp for e in executions)),
        last_at=to_datetime(max(e.timestamp for e in executions)),
    )
