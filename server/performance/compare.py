"""Two agent types compared, metric by metric, with a verdict at α = 0.05.

    success_rate     proportion test (`stats.proportion_test`: Fisher's exact test
                     when an expected count is below 5, else the two-proportion
                     z-test); effect size Cohen's h.
    completion_time  Welch's t-test on ln(1 + t), as times are close to log-normal;
                     effect size Hedges' g on the same logs. a and b are the p50s.
    iterations       Welch's t-test on ln(1 + iterations); Hedges' g; a and b are
                     the p50s.

Welch's test needs two executions on each side; with fewer its p-value is None and
the metric takes no part in the verdict. The p-values of the tested metrics are
Holm-adjusted together, so the chance of declaring a winner between two equivalent
agents stays at α. The verdict goes to the agent that is significantly better on the
first metric, in the order success rate, time, iterations, where either is: success
is what a task is for, and speed is worth more than fewer iterations. `reason` names
any trade-off (better on one metric, worse on a later one).

The agents may have run different categories, and a mix of hard and easy tasks can
explain a difference on its own; `shared_categories` says which they have in common.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from schemas.performance import AgentComparison, AgentSummary, MetricComparison, Verdict
from server.performance.executions import Execution, NoExecutionsError
from server.performance.stats import (
    ALPHA,
    cohens_h,
    hedges_g,
    holm,
    median,
    proportion_test,
    welch_t_test,
)
from server.performance.summary import metric_summary

Metric = Literal["success_rate", "completion_time", "iterations"]
Side = Literal["a", "b"]


@dataclass(frozen=True, slots=True)
class Leaning:
    """A metric's comparison and the side that looks better, before any test says so."""

    comparison: MetricComparison
    side: Side | None


def lean(a_is_better: bool, b_is_better: bool) -> Side | None:
    return "a" if a_is_better else "b" if b_is_better else None


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def compare_success(a: Sequence[Execution], b: Sequence[Execution]) -> Leaning:
    k_a, k_b = sum(e.success for e in a), sum(e.success for e in b)
    rate_a, rate_b = k_a / len(a), k_b / len(b)
    name, significance = proportion_test(k_a, len(a), k_b, len(b))
    comparison = MetricComparison(
        metric="success_rate",
        a=rate_a,
        b=rate_b,
        difference=rate_a - rate_b,
        effect_size=cohens_h(rate_a, rate_b),
        effect_size_kind="cohens_h",
        test=name,
        statistic=finite_or_none(significance.statistic),
        p_value=significance.p_value,
        better=None,
    )
    return Leaning(comparison, lean(rate_a > rate_b, rate_b > rate_a))


def compare_cost(
    metric: Metric,
    a: Sequence[Execution],
    b: Sequence[Execution],
    figure: Callable[[Execution], float],
) -> Leaning:
    """A cost (lower is better), tested on ln(1 + figure); the side with the lower
    mean log leans better, as that is what the test compares."""
    values_a, values_b = [figure(e) for e in a], [figure(e) for e in b]
    logs_a, logs_b = [math.log1p(v) for v in values_a], [math.log1p(v) for v in values_b]
    testable = len(a) >= 2 and len(b) >= 2
    significance = welch_t_test(logs_a, logs_b) if testable else None
    comparison = MetricComparison(
        metric=metric,
        a=median(values_a),
        b=median(values_b),
        difference=median(values_a) - median(values_b),
        effect_size=finite_or_none(hedges_g(logs_a, logs_b)) if testable else None,
        effect_size_kind="hedges_g_log",
        test="welch_t_log",
        statistic=finite_or_none(significance.statistic) if significance else None,
        df=significance.df if significance else None,
        p_value=significance.p_value if significance else None,
        better=None,
    )
    mean_a, mean_b = math.fsum(logs_a) / len(a), math.fsum(logs_b) / len(b)
    return Leaning(comparison, lean(mean_a < mean_b, mean_b < mean_a))


def adjust(leanings: Sequence[Leaning], alpha: float) -> list[MetricComparison]:
    """Holm over the tested metrics; a metric's leaning side is better where its
    adjusted p-value is below α."""
    tested = [item for item in leanings if item.comparison.p_value is not None]
    adjusted = holm([item.comparison.p_value or 0.0 for item in tested])
    by_metric = {item.comparison.metric: p for item, p in zip(tested, adjusted, strict=True)}
    return [_settled(item, by_metric.get(item.comparison.metric), alpha) for item in leanings]


def _settled(item: Leaning, adjusted_p: float | None, alpha: float) -> MetricComparison:
    significant = adjusted_p is not None and adjusted_p < alpha
    better = item.side if significant else None
    return item.comparison.model_copy(update={"adjusted_p_value": adjusted_p, "better": better})


def verdict(comparisons: Sequence[MetricComparison]) -> tuple[Verdict, str]:
    decided = [c for c in comparisons if c.better is not None]
    if not decided:
        return Verdict.NO_SIGNIFICANT_DIFFERENCE, "no metric differs significantly"
    first = decided[0]
    result = Verdict.A_BETTER if first.better == "a" else Verdict.B_BETTER
    reason = f"{first.better} is significantly better on {first.metric}"
    trade_offs = [c.metric for c in decided[1:] if c.better != first.better]
    if trade_offs:
        reason += f", though worse on {', '.join(trade_offs)}"
    return result, reason


def compare(
    a: str,
    executions_a: Sequence[Execution],
    b: str,
    executions_b: Sequence[Execution],
    alpha: float = ALPHA,
) -> AgentComparison:
    """Compare agent types `a` and `b` on their executions; raises NoExecutionsError
    when either has none."""
    for name, executions in ((a, executions_a), (b, executions_b)):
        if not executions:
            raise NoExecutionsError(name)
    success, time, iterations = adjust(
        [
            compare_success(executions_a, executions_b),
            compare_cost(
                "completion_time", executions_a, executions_b, lambda e: e.completion_time
            ),
            compare_cost("iterations", executions_a, executions_b, lambda e: float(e.iterations)),
        ],
        alpha,
    )
    result, reason = verdict([success, time, iterations])
    return AgentComparison(
        a=AgentSummary(agent_type=a, **metric_summary(executions_a).model_dump()),
        b=AgentSummary(agent_type=b, **metric_summary(executions_b).model_dump()),
        alpha=alpha,
        success_rate=success,
        completion_time=time,
        iterations=iterations,
        verdict=result,
        reason=reason,
        shared_categories=sorted(
            {e.task_category for e in executions_a} & {e.task_category for e in executions_b}
        ),
    )
