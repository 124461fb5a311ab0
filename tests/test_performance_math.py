"""The Performance Optimizer's pure core: statistics, trends, bottlenecks,
recommendations, comparisons, and the schemas that guard its input."""

import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.performance import (
    BottleneckKind,
    CompareQuery,
    ExecutionBatch,
    ExecutionRecord,
    ExecutionRequest,
    PerformanceQuery,
    Priority,
    RecommendationsQuery,
    RecommendationType,
    TrendDirection,
    Verdict,
)
from server.performance.bottlenecks import bottlenecks
from server.performance.compare import compare
from server.performance.executions import Execution, NoExecutionsError, execution_from_record
from server.performance.recommend import recommend
from server.performance.stats import (
    benjamini_hochberg,
    fisher_exact,
    holm,
    mad,
    proportion_test,
    quantile,
    ratio_z_test,
    regularized_incomplete_beta,
    student_t_two_sided_p,
    two_proportion_z_test,
    welch_t_test,
    wilson_interval,
)
from server.performance.summary import agent_performance, performance_stats
from server.performance.trend import mann_kendall, theil_sen_slope, trend

T0 = 1_700_000_000.0
DAY = 86_400.0

# -- statistics: known values --------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1, 2, 3, 4], 0.25, 1.75),  # R: quantile(1:4, 0.25) (type 7)
        ([1, 2, 3, 4], 0.5, 2.5),
        ([5, 1, 4, 2, 3], 0.95, 4.8),  # h = 4·0.95 = 3.8
        ([7], 0.3, 7.0),
        ([1, 2, 3, 4], 0.0, 1.0),
        ([1, 2, 3, 4], 1.0, 4.0),
    ],
)
def test_quantile_type_7_known_values(values: list[float], q: float, expected: float) -> None:
    assert quantile(values, q) == pytest.approx(expected)


def test_quantile_refuses_empty_samples_and_bad_levels() -> None:
    with pytest.raises(ValueError):
        quantile([], 0.5)
    with pytest.raises(ValueError):
        quantile([1.0], 1.5)


@pytest.mark.parametrize(
    ("t", "df", "p"),
    [
        (2.0, 10, 0.0733880),  # R: 2 * pt(-2, 10)
        (2.228139, 10, 0.05),  # the 97.5% point of t(10)
        (12.706205, 1, 0.05),
        (2.085963, 20, 0.05),
        (0.0, 5, 1.0),
        (1.959964, 1e9, 0.05),  # df → ∞: the normal distribution
    ],
)
def test_student_t_known_values(t: float, df: float, p: float) -> None:
    assert student_t_two_sided_p(t, df) == pytest.approx(p, abs=2e-6)


@given(st.floats(-50, 50))
def test_student_t_matches_closed_forms_for_one_and_two_df(t: float) -> None:
    # df = 1 is Cauchy; df = 2 has P(|T| ≥ t) = 1 − |t|/sqrt(2 + t²).
    assert student_t_two_sided_p(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(abs(t)))
    assert student_t_two_sided_p(t, 2) == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t))


@given(st.floats(0.01, 0.99), st.floats(0.1, 20))
def test_incomplete_beta_matches_closed_forms(x: float, a: float) -> None:
    # I_x(a, 1) = x^a and I_x(1, b) = 1 − (1 − x)^b.
    assert regularized_incomplete_beta(a, 1.0, x) == pytest.approx(x**a, rel=1e-9)
    assert regularized_incomplete_beta(1.0, a, x) == pytest.approx(1 - (1 - x) ** a, rel=1e-9)


def test_welch_known_value() -> None:
    # R: t.test(1:5, c(2, 4, 6, 8, 10, 12)): t = −2.3764, df = 6.9723, p = 0.04928.
    result = welch_t_test([1, 2, 3, 4, 5], [2, 4, 6, 8, 10, 12])
    assert result.statistic == pytest.approx(-2.3764, abs=1e-4)
    assert result.df == pytest.approx(6.9723, abs=1e-4)
    assert result.p_value == pytest.approx(0.04928, abs=1e-5)


def test_welch_on_constant_samples_is_certain_or_silent() -> None:
    assert welch_t_test([3, 3, 3], [3, 3]).p_value == 1.0
    assert welch_t_test([3, 3, 3], [4, 4]).p_value == 0.0
    with pytest.raises(ValueError):
        welch_t_test([1.0], [1.0, 2.0])


def test_two_proportion_z_known_value() -> None:
    # R: prop.test(c(45, 30), c(100, 100), correct = FALSE): X² = 4.8 = z², p = 0.02846.
    result = two_proportion_z_test(45, 100, 30, 100)
    assert result.statistic == pytest.approx(math.sqrt(4.8))
    assert result.p_value == pytest.approx(0.028460, abs=1e-6)


@pytest.mark.parametrize(
    ("table", "p"),
    [
        ((3, 4, 1, 4), 34 / 70),  # Fisher's lady tasting tea, two-sided
        ((6, 8, 1, 5), 4 / 39),  # R: fisher.test(matrix(c(6, 1, 2, 4), 2)), 0.1026
        ((10, 10, 0, 10), 2 / math.comb(20, 10)),
        ((0, 10, 0, 10), 1.0),
    ],
)
def test_fisher_known_values(table: tuple[int, int, int, int], p: float) -> None:
    assert fisher_exact(*table).p_value == pytest.approx(p, rel=1e-9)


def test_proportion_test_takes_fisher_for_small_counts_only() -> None:
    assert proportion_test(3, 4, 1, 4)[0] == "fisher_exact"
    assert proportion_test(45, 100, 30, 100)[0] == "two_proportion_z"


def test_multiplicity_corrections_known_values() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_wilson_interval_known_value() -> None:
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def test_mann_kendall_known_value() -> None:
    # S = 10, var(S) = 5·4·15/18, z = (10 − 1)/sqrt(var(S)) = 2.2045, p = 0.0275.
    result = mann_kendall([1, 2, 3, 4, 5])
    assert result.s == 10
    assert result.z == pytest.approx(2.2045, abs=1e-4)
    assert result.p_value == pytest.approx(0.02749, abs=1e-5)
    assert mann_kendall([2, 2, 2, 2, 2]).p_value == 1.0


def test_theil_sen_ignores_an_outlier_and_keeps_gaps() -> None:
    assert theil_sen_slope([1, 3, 5, 7]) == 2
    assert theil_sen_slope([1, 2, 3, 4, 100]) == 1
    assert theil_sen_slope([1, 2, 5], positions=[0, 1, 4]) == 1


# -- statistics: properties ----------------------------------------------------

samples = st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30)


@st.composite
def counts(draw: st.DrawFn, max_n: int = 200) -> tuple[int, int]:
    n = draw(st.integers(1, max_n))
    return draw(st.integers(0, n)), n


@given(samples, samples)
def test_welch_is_a_symmetric_probability(x: list[float], y: list[float]) -> None:
    forward, backward = welch_t_test(x, y), welch_t_test(y, x)
    assert 0.0 <= forward.p_value <= 1.0
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.statistic == pytest.approx(-(backward.statistic or 0.0))


@given(counts(), counts())
def test_proportion_tests_are_symmetric_probabilities(
    a: tuple[int, int], b: tuple[int, int]
) -> None:
    for test in (two_proportion_z_test, fisher_exact):
        p = test(*a, *b).p_value
        assert 0.0 <= p <= 1.0
        assert p == pytest.approx(test(*b, *a).p_value)
        flipped = test(a[1] - a[0], a[1], b[1] - b[0], b[1]).p_value  # failures for successes
        assert p == pytest.approx(flipped)


def brute_force_fisher(k1: int, n1: int, k2: int, n2: int) -> float:
    """Exact two-sided p by enumerating every table with the same margins."""
    total = k1 + k2

    def probability(x: int) -> Fraction:
        return Fraction(math.comb(n1, x) * math.comb(n2, total - x), math.comb(n1 + n2, total))

    observed = probability(k1)
    support = range(max(0, total - n2), min(total, n1) + 1)
    return float(sum(probability(x) for x in support if probability(x) <= observed))


@given(counts(12), counts(12))
def test_fisher_matches_enumeration(a: tuple[int, int], b: tuple[int, int]) -> None:
    assert fisher_exact(*a, *b).p_value == pytest.approx(brute_force_fisher(*a, *b), rel=1e-9)


@given(st.floats(-30, 30), st.floats(0.5, 1e6))
def test_student_t_is_a_probability_falling_with_t(t: float, df: float) -> None:
    p = student_t_two_sided_p(t, df)
    assert 0.0 <= p <= 1.0
    assert student_t_two_sided_p(abs(t) + 0.5, df) <= p + 1e-12


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40), st.floats(0, 1), st.floats(0, 1))
def test_quantile_is_monotone_and_bounded(values: list[float], q1: float, q2: float) -> None:
    low, high = sorted((q1, q2))
    assert min(values) <= quantile(values, low) <= quantile(values, high) <= max(values)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_adjusted_p_values_stay_above_the_raw_ones(p: list[float]) -> None:
    holm_p, bh_p = holm(p), benjamini_hochberg(p)
    for raw, strict, lenient in zip(p, holm_p, bh_p, strict=True):
        assert raw - 1e-12 <= lenient <= strict + 1e-12 <= 1.0 + 1e-12


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=30))
def test_mad_is_shift_invariant(values: list[float]) -> None:
    assert mad([v + 7.0 for v in values]) == pytest.approx(mad(values), abs=1e-9)


def test_ratio_test_finds_a_cheaper_ratio() -> None:
    rng = random.Random(1)
    wasteful = [float(rng.randint(15, 25)) for _ in range(40)]
    lean = [float(rng.randint(3, 6)) for _ in range(40)]
    outcomes = [1.0] * 30 + [0.0] * 10
    result = ratio_z_test(wasteful, outcomes, lean, outcomes)
    assert (result.statistic or 0) > 0 and result.p_value < 1e-6
    assert ratio_z_test(lean, outcomes, lean, outcomes).p_value == pytest.approx(1.0)


# -- data builders ---------------------------------------------------------------


def execution(
    agent: str = "a",
    category: str = "x",
    time: float = 10.0,
    iterations: int = 1,
    success: bool = True,
    errors: Sequence[str] = (),
    actions: int = 5,
    at: float = T0,
) -> Execution:
    return Execution(agent, category, time, iterations, success, tuple(errors), actions, at)


def runs(
    agent: str,
    category: str,
    n: int,
    seed: int,
    *,
    time: float = 10.0,
    spread: float = 0.3,
    success: float = 0.8,
    iterations: tuple[int, int] = (1, 3),
    actions: tuple[int, int] = (3, 6),
    error: str | None = None,
    days: float = 20.0,
) -> list[Execution]:
    """n log-normal runs spread over `days`; a failure meets `error`, or one of 20
    distinct errors when None (so no error recurs more than chance allows)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ok = rng.random() < success
        errors = () if ok else ((error,) if error else (f"e{rng.randrange(20)}",))
        out.append(
            execution(
                agent,
                category,
                time * rng.lognormvariate(0, spread),
                rng.randint(*iterations),
                ok,
                errors,
                rng.randint(*actions),
                T0 + rng.uniform(0, days * DAY),
            )
        )
    return out


def balanced(seed: int = 7) -> list[Execution]:
    """Three agents, three categories, one distribution: nothing to recommend."""
    return [
        e
        for i, agent in enumerate(("a", "b", "c"))
        for j, category in enumerate(("x", "y", "z"))
        for e in runs(agent, category, 60, seed * 100 + i * 10 + j)
    ]


def types_of(executions: Sequence[Execution]) -> set[RecommendationType]:
    return {rec.type for rec in recommend(executions)}


def with_tail(executions: list[Execution]) -> list[Execution]:
    """Every tenth run takes ten times as long."""
    return [
        e if i % 10 else execution(e.agent_type, e.task_category, e.completion_time * 10)
        for i, e in enumerate(executions)
    ]


def loops_until_failure(seed: int) -> list[Execution]:
    """Failures take 8-12 iterations, successes 1-3."""
    rng = random.Random(seed)
    return [
        execution(
            iterations=rng.randint(1, 3) if i % 3 else rng.randint(8, 12),
            success=bool(i % 3),
            errors=() if i % 3 else (f"e{i}",),
            time=10 * rng.lognormvariate(0, 0.3),
            at=T0 + i * 1000,
        )
        for i in range(60)
    ]


def back_to_back(seed: int) -> list[Execution]:
    """20 runs of about 10 s, each starting within a second of the previous end."""
    rng = random.Random(seed)
    out, clock = [], T0
    for _ in range(20):
        took = 10 * rng.lognormvariate(0, 0.2)
        clock += took
        out.append(execution("serial", "jobs", time=took, at=clock))
        clock += rng.uniform(0, 1)
    return out


def repeated_work(seed: int) -> list[Execution]:
    """15 runs of one footprint within ±0.5% of 5 s, and 15 varied runs."""
    rng = random.Random(seed)
    same = [
        execution(time=5 * (1 + rng.uniform(-0.005, 0.005)), at=T0 + i * 5000) for i in range(15)
    ]
    varied = [
        execution(
            time=10 * rng.lognormvariate(0, 0.4),
            iterations=rng.randint(1, 4),
            actions=rng.randint(3, 9),
            at=T0 + 1e5 + i * 5000,
        )
        for i in range(15)
    ]
    return same + varied


# -- recommendations ---------------------------------------------------------------

SCENARIOS: dict[RecommendationType, Callable[[], list[Execution]]] = {
    RecommendationType.EXECUTION_SPEED: lambda: (
        runs("slow", "x", 40, 1, time=20) + runs("fast", "x", 40, 2)
    ),
    RecommendationType.ITERATION_REDUCTION: lambda: (
        runs("loopy", "x", 40, 4, iterations=(5, 8)) + runs("direct", "x", 40, 5)
    ),
    RecommendationType.ERROR_REDUCTION: lambda: runs("a", "x", 60, 7, success=0.6, error="Timeout"),
    RecommendationType.RESOURCE_EFFICIENCY: lambda: (
        runs("wasteful", "x", 40, 8, actions=(15, 25)) + runs("lean", "x", 40, 9)
    ),
    RecommendationType.AGENT_SELECTION: lambda: (
        runs("weak", "x", 50, 10, success=0.5) + runs("strong", "x", 50, 11, success=0.95)
    ),
    RecommendationType.PARALLEL_EXECUTION: lambda: back_to_back(12),
    RecommendationType.CACHING: lambda: repeated_work(13),
}


@pytest.mark.parametrize("kind", list(RecommendationType))
def test_each_type_appears_when_the_data_calls_for_it(kind: RecommendationType) -> None:
    found = [rec for rec in recommend(SCENARIOS[kind]()) if rec.type is kind]
    assert found, kind
    gain = found[0].expected_improvement
    assert 0 < gain.relative_gain <= 1
    assert gain.change == pytest.approx(gain.expected - gain.current)


def test_execution_speed_expects_the_peer_median() -> None:
    executions = SCENARIOS[RecommendationType.EXECUTION_SPEED]()
    (rec,) = [r for r in recommend(executions) if r.type is RecommendationType.EXECUTION_SPEED]
    fast = [e.completion_time for e in executions if e.agent_type == "fast"]
    assert (rec.agent_type, rec.peer_agent_type) == ("slow", "fast")
    assert rec.expected_improvement.expected == pytest.approx(quantile(fast, 0.5))
    assert rec.basis.test == "welch_t_log" and (rec.basis.adjusted_p_value or 1) < 0.05


def test_error_reduction_expects_the_success_rate_of_runs_without_the_error() -> None:
    executions = runs("a", "x", 60, 7, success=0.6, error="Timeout")
    executions += [execution(success=False, errors=("Other",)) for _ in range(3)]
    (rec,) = [r for r in recommend(executions) if r.type is RecommendationType.ERROR_REDUCTION]
    without = [e for e in executions if "Timeout" not in e.errors]
    assert "Timeout" in rec.title
    assert rec.expected_improvement.expected == pytest.approx(
        sum(e.success for e in without) / len(without)
    )


def test_a_long_tail_calls_for_speed_without_any_peer() -> None:
    rec = recommend(with_tail(runs("a", "x", 40, 3)))
    assert [r.type for r in rec] == [RecommendationType.EXECUTION_SPEED]
    assert rec[0].expected_improvement.metric == "mean_time"


def test_iterations_that_only_failures_need_call_for_a_cap() -> None:
    (rec,) = recommend(loops_until_failure(6))
    assert rec.type is RecommendationType.ITERATION_REDUCTION
    assert rec.title.endswith("at 3")


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_balanced_data_calls_for_nothing(seed: int) -> None:
    assert recommend(balanced(seed)) == []
    assert bottlenecks(balanced(seed)) == []


def test_scarce_data_calls_for_nothing_however_extreme() -> None:
    executions = runs("weak", "x", 6, 1, success=0.1, time=50, iterations=(9, 9), actions=(40, 40))
    executions += runs("strong", "x", 6, 2, success=1.0, time=1)
    executions += back_to_back(3)[:4] + repeated_work(4)[:4]
    assert recommend(executions) == []


def test_small_differences_call_for_nothing() -> None:
    executions = runs("a", "x", 200, 1, success=0.80) + runs("b", "x", 200, 2, success=0.83)
    executions += runs("c", "y", 200, 5, time=10) + runs("d", "y", 200, 6, time=11)
    assert recommend(executions) == []


def test_a_peer_that_fails_fast_is_no_model_for_speed() -> None:
    executions = runs("careful", "x", 40, 1, time=20, success=0.9)
    executions += runs("quitter", "x", 40, 2, time=5, success=0.3)
    assert RecommendationType.EXECUTION_SPEED not in types_of(executions)
    assert RecommendationType.AGENT_SELECTION in types_of(executions)


def test_spread_out_runs_call_for_no_parallelism() -> None:
    executions = [execution("lone", time=10, at=T0 + i * 3600) for i in range(30)]
    assert RecommendationType.PARALLEL_EXECUTION not in types_of(executions)


def test_steady_but_varied_work_is_not_repeated_work() -> None:
    rng = random.Random(5)
    executions = [execution(time=10 * rng.lognormvariate(0, 0.3), at=T0 + i) for i in range(60)]
    assert RecommendationType.CACHING not in types_of(executions)


def test_filters_by_agent_and_priority() -> None:
    executions = SCENARIOS[RecommendationType.AGENT_SELECTION]()
    executions += SCENARIOS[RecommendationType.PARALLEL_EXECUTION]()
    everything = recommend(executions)
    assert {rec.agent_type for rec in everything} == {"weak", "serial"}
    assert {rec.agent_type for rec in recommend(executions, agent_type="serial")} == {"serial"}
    assert recommend(executions, agent_type="strong") == []
    top = recommend(executions, min_priority=Priority.CRITICAL)
    assert top and all(rec.priority is Priority.CRITICAL for rec in top)
    ranks = [rec.priority.rank for rec in everything]
    assert ranks == sorted(ranks, reverse=True)


# -- bottlenecks ---------------------------------------------------------------------


def test_a_slow_category_is_a_bottleneck() -> None:
    executions = runs("a", "x", 30, 1) + runs("a", "y", 30, 2) + runs("a", "z", 30, 3, time=60)
    kinds = {(b.kind, b.task_category) for b in bottlenecks(executions)}
    assert (BottleneckKind.SLOW_CATEGORY, "z") in kinds


def test_a_failing_category_and_a_recurring_error_are_bottlenecks() -> None:
    executions = runs("a", "x", 40, 1, success=0.95) + runs("a", "y", 40, 2, success=0.95)
    executions += runs("a", "z", 40, 3, success=0.3, error="Timeout")
    kinds = {b.kind for b in bottlenecks(executions, "a")}
    assert {BottleneckKind.ERROR_HOTSPOT, BottleneckKind.RECURRING_ERROR} <= kinds


def test_a_slower_peer_is_a_bottleneck_of_the_slow_agent_only() -> None:
    executions = SCENARIOS[RecommendationType.EXECUTION_SPEED]()
    assert [b.kind for b in bottlenecks(executions, "slow")] == [BottleneckKind.PEER_GAP]
    assert bottlenecks(executions, "fast") == []


# -- trends -----------------------------------------------------------------------------


def daily(
    days: int,
    per_day: int,
    seed: int,
    success: Callable[[int], float],
    time: Callable[[int], float],
) -> list[Execution]:
    rng = random.Random(seed)
    return [
        execution(
            time=time(day) * rng.lognormvariate(0, 0.2),
            success=rng.random() < success(day),
            at=T0 + day * DAY + rng.uniform(0, DAY - 1),
        )
        for day in range(days)
        for _ in range(per_day)
    ]


def test_an_improving_series_is_improving() -> None:
    executions = daily(14, 20, 1, lambda d: 0.4 + 0.04 * d, lambda d: 20 - d)
    result = trend(executions, now=T0 + 14 * DAY)
    assert result.direction is TrendDirection.IMPROVING
    assert result.success_rate is not None and result.success_rate.slope_per_window > 0
    assert result.p50_time is not None and result.p50_time.slope_per_window < 0


def test_a_degrading_series_is_degrading() -> None:
    executions = daily(14, 20, 2, lambda d: 0.9 - 0.04 * d, lambda d: 10 + d)
    assert trend(executions, now=T0 + 14 * DAY).direction is TrendDirection.DEGRADING


def test_a_flat_noisy_series_is_stable() -> None:
    executions = daily(30, 15, 3, lambda d: 0.7, lambda d: 10)
    result = trend(executions, now=T0 + 30 * DAY)
    assert result.direction is TrendDirection.STABLE
    assert len(result.windows) == 30


def test_too_few_windows_are_insufficient_data() -> None:
    executions = daily(4, 20, 4, lambda d: 0.2 * d, lambda d: 10)
    executions += daily(10, 2, 5, lambda d: 1.0, lambda d: 1)  # windows too thin to count
    result = trend(executions, now=T0 + 14 * DAY)
    assert result.direction is TrendDirection.INSUFFICIENT_DATA
    assert len(result.windows) == 4 and result.success_rate is None


def test_trend_looks_back_a_bounded_number_of_windows_and_never_ahead() -> None:
    executions = daily(20, 10, 6, lambda d: 0.5, lambda d: 10)
    result = trend(executions, now=T0 + 9.5 * DAY, window_s=DAY, max_windows=5)
    assert [w.start for w in result.windows][-1] <= datetime.fromtimestamp(T0 + 9.5 * DAY, UTC)
    assert len(result.windows) == 5


# -- comparison and summaries ------------------------------------------------------------


def test_a_more_successful_agent_wins_the_comparison() -> None:
    a, b = runs("a", "x", 80, 1, success=0.9), runs("b", "x", 80, 2, success=0.6)
    result = compare("a", a, "b", b)
    assert result.verdict is Verdict.A_BETTER
    assert result.success_rate.better == "a" and (result.success_rate.p_value or 1) < 0.01
    assert result.shared_categories == ["x"]


def test_a_faster_agent_wins_when_success_ties() -> None:
    a, b = runs("a", "x", 60, 3, time=30), runs("b", "y", 60, 4, time=10)
    result = compare("a", a, "b", b)
    assert result.verdict is Verdict.B_BETTER
    assert result.completion_time.better == "b" and result.success_rate.better is None
    assert result.shared_categories == []


def test_like_agents_differ_insignificantly() -> None:
    result = compare("a", runs("a", "x", 60, 5), "b", runs("b", "x", 60, 6))
    assert result.verdict is Verdict.NO_SIGNIFICANT_DIFFERENCE


def test_a_single_run_cannot_be_tested_on_time() -> None:
    result = compare("a", [execution("a")], "b", [execution("b", time=99)])
    assert result.completion_time.p_value is None
    assert result.verdict is Verdict.NO_SIGNIFICANT_DIFFERENCE


def test_an_agent_without_executions_is_not_found() -> None:
    with pytest.raises(NoExecutionsError):
        compare("a", [], "b", [execution("b")])
    with pytest.raises(NoExecutionsError):
        agent_performance([execution("b")], "a", now=T0)


def test_agent_performance_summarises_the_agent() -> None:
    executions = runs("a", "x", 30, 1, error="Boom") + runs("a", "y", 10, 2) + runs("b", "x", 5, 3)
    perf = agent_performance(executions, "a", now=T0 + 20 * DAY)
    own = [e for e in executions if e.agent_type == "a"]
    assert perf.executions == 40
    assert perf.success_rate == pytest.approx(sum(e.success for e in own) / 40)
    assert perf.success_rate_low <= perf.success_rate <= perf.success_rate_high
    assert perf.p50_time == pytest.approx(quantile([e.completion_time for e in own], 0.5))
    assert perf.p50_time <= perf.p95_time
    assert [c.task_category for c in perf.categories] == ["x", "y"]
    assert perf.top_errors[0].error == "Boom"
    assert perf.trend.window_s == DAY


def test_performance_stats_count_everything() -> None:
    stats = performance_stats(balanced())
    assert (stats.executions, stats.agent_types, stats.task_categories) == (540, 3, 3)
    assert performance_stats([]).success_rate is None


# -- any data: no crash, finite figures --------------------------------------------


def finite_everywhere(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_everywhere(v) for v in value.values())
    if isinstance(value, list):
        return all(finite_everywhere(v) for v in value)
    return True


executions_strategy = st.lists(
    st.builds(
        Execution,
        agent_type=st.sampled_from(["a", "b"]),
        task_category=st.sampled_from(["x", "y", "z"]),
        completion_time=st.sampled_from([0.0, 0.5, 1.0, 10.0]) | st.floats(0, 1e7),
        iterations=st.integers(0, 20),
        success=st.booleans(),
        errors=st.lists(st.sampled_from(["E1", "E2"]), max_size=2).map(tuple),
        actions_count=st.integers(0, 30),
        timestamp=st.floats(T0, T0 + 10 * DAY),
    ),
    max_size=80,
)


@settings(max_examples=40)
@given(executions_strategy)
def test_any_executions_give_valid_finite_answers(executions: list[Execution]) -> None:
    answers: list[Any] = [
        *recommend(executions),
        *bottlenecks(executions),
        performance_stats(executions),
    ]
    by_agent = {agent: [e for e in executions if e.agent_type == agent] for agent in ("a", "b")}
    if by_agent["a"]:
        answers.append(agent_performance(executions, "a", now=T0 + 10 * DAY, window_s=DAY / 2))
    if by_agent["a"] and by_agent["b"]:
        answers.append(compare("a", by_agent["a"], "b", by_agent["b"]))
    for answer in answers:
        assert finite_everywhere(answer.model_dump(mode="json"))


# -- bad input ----------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "agent_type": "code",
    "task_category": "api_development",
    "completion_time": 15.3,
    "iterations": 3,
    "success": True,
    "errors": ["Timeout"],
    "actions_count": 5,
}


def test_a_good_record_becomes_an_execution() -> None:
    record = ExecutionRecord.model_validate({**GOOD, "timestamp": "2024-01-01T00:00:00Z"})
    converted = execution_from_record(record, now=T0)
    assert converted.timestamp == datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    assert converted.errors == ("Timeout",)
    assert execution_from_record(ExecutionRecord.model_validate(GOOD), now=T0).timestamp == T0
    assert ExecutionRecord.model_validate({**GOOD, "completion_time": 15}).completion_time == 15


@pytest.mark.parametrize(
    "change",
    [
        {"completion_time": -1.0},
        {"completion_time": "15.3"},
        {"iterations": -1},
        {"iterations": 2.5},
        {"actions_count": -3},
        {"success": "yes"},
        {"success": 1},
        {"errors": "Timeout"},
        {"errors": [""]},
        {"errors": ["x" * 513]},
        {"errors": ["e"] * 65},
        {"agent_type": ""},
        {"agent_type": "has space"},
        {"task_category": "x" * 65},
        {"timestamp": "yesterday"},
        {"metadata": [1, 2]},
        {"unknown": 1},
    ],
)
def test_bad_records_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ExecutionRecord.model_validate({**GOOD, **change})


@pytest.mark.parametrize("field", ["agent_type", "task_category", "completion_time", "success"])
def test_required_fields_are_required(field: str) -> None:
    with pytest.raises(ValidationError):
        ExecutionRecord.model_validate({k: v for k, v in GOOD.items() if k != field})


def test_batches_are_bounded() -> None:
    request: TypeAdapter[Any] = TypeAdapter(ExecutionRequest)
    assert isinstance(request.validate_python({"executions": [GOOD] * 2}), ExecutionBatch)
    assert isinstance(request.validate_python(GOOD), ExecutionRecord)
    bad_batches: list[dict[str, Any]] = [{"executions": []}, {"executions": [GOOD] * 1001}]
    for bad in bad_batches:
        with pytest.raises(ValidationError):
            request.validate_python(bad)


def test_queries_refuse_bad_values() -> None:
    assert CompareQuery.model_validate({"a": "code", "b": "test"}).b == "test"
    query = RecommendationsQuery.model_validate({"min_priority": "HIGH"})
    assert query.min_priority is Priority.HIGH and query.agent_type is None
    assert PerformanceQuery.model_validate({"window_s": "3600"}).window_s == 3600
    bad_queries: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (CompareQuery, {"a": "code", "b": "code"}),
        (CompareQuery, {"a": "code"}),
        (RecommendationsQuery, {"min_priority": "7"}),
        (RecommendationsQuery, {"agent": "code"}),
        (PerformanceQuery, {"window_s": "10"}),
        (PerformanceQuery, {"windows": "1"}),
    ]
    for model, values in bad_queries:
        with pytest.raises(ValidationError):
            model.model_validate(values)


@pytest.mark.parametrize(
    "fields",
    [
        {"completion_time": -1.0},
        {"completion_time": math.nan},
        {"iterations": -1},
        {"timestamp": math.inf},
    ],
)
def test_executions_refuse_impossible_values(fields: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "agent_type": "a",
        "task_category": "x",
        "completion_time": 1.0,
        "iterations": 1,
        "success": True,
        "errors": (),
        "actions_count": 1,
        "timestamp": T0,
    }
    with pytest.raises(ValueError):
        Execution(**{**base, **fields})
