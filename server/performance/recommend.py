"""Recommendations: seven rules, each firing only when the data calls for it.

Every rule reads cells (one agent type's executions in one task category, at least
MIN_SAMPLES = 10 of them; `cells.py`) and, where it compares, peers (`peers.py`).
Rules that test pool their tests: `discovery.discover` adjusts all of one call's
tests together (Benjamini-Hochberg, α = 0.05), so on data where nothing is going on
the tested rules return nothing 95% of the time. A rule fires only on a significant
difference (or a clear pattern) AND a practical gain: MIN_RELATIVE_GAIN (20%) of a
cost, or MIN_SUCCESS_GAIN (5 points) of success rate. Its expected improvement is
computed from the data, in the metric's unit; its priority is effect × evidence
(`priority.py`). Each (type, agent type, category) keeps its strongest finding: the
best significant peer, or the tail rather than a peer.

EXECUTION_SPEED (metric p50_time, or mean_time for a tail)
    peer:  a peer that succeeds about as often has a lower p50 time, Welch's t on
           ln(1 + t) is significant (cell slower), and 1 − p50_peer/p50_cell ≥ 20%.
           Expected: p50 → p50_peer.
    tail:  p95/p50 ≥ 3 on ≥ 20 runs (`signals.long_tail`). Expected: the
           mean time if the runs past 3·p50 had taken p50, gain ≥ 20%.

ITERATION_REDUCTION (metric mean_iterations)
    peer:  a peer that succeeds about as often needs fewer iterations on average,
           Welch's t on ln(1 + iterations) is significant, gain ≥ 20%.
           Expected: mean → the peer's mean.
    self:  with ≥ 5 failed and ≥ 5 successful runs, failed runs take
           significantly more iterations (Welch on ln(1 + iterations)): iterating
           rarely rescues a run. Expected: the mean if runs were
           capped at cap = ceil(p95 of the successful runs' iterations); the
           rationale counts the successes past the cap that a cap could cost.

ERROR_REDUCTION (metric success_rate)
    An error met by ≥ 5 failed runs of the cell, whose share of the failures has a
    Wilson 95% lower bound ≥ 25% (so 5 of 12 failures, likely by chance among many
    errors, is not enough; 8 of 12 is), and where runs that meet it succeed
    significantly less often than runs that don't (proportion test).
    Expected: if runs that meet the error succeeded as often as runs that don't,
    the cell's success rate becomes exactly that of the runs without it:
        (k − k_e + n_e·r_0)/n = r_0,   r_0 = (k − k_e)/(n − n_e)
    Fires when r_0 − k/n ≥ 5 points; one per cell, the largest gain.

RESOURCE_EFFICIENCY (metric actions_per_success)
    Actions spent per success, sum(actions)/successes, counting failed runs' actions
    as cost. A peer spends significantly fewer (z on the log ratio, delta method)
    and the gain is ≥ 20%; both need ≥ 5 successes. Expected: the peer's ratio.

AGENT_SELECTION (metric success_rate)
    Another agent type succeeds significantly more often on the same category
    (Fisher's exact test for small counts, the z-test otherwise) by ≥ 5 points.
    Expected: routing the category to it gives its success rate.

PARALLEL_EXECUTION (metric chain_makespan)
    An agent type runs separate executions back to back (`signals.serial_chains`):
    ≥ 10 of its executions, and at least half of them, sit in chains, its median
    time is ≥ 1 s, and running each chain side by side, max(t_i) instead of the
    chain's makespan, saves ≥ 20%. An upper bound: it assumes the executions are
    independent, which the data cannot show.

CACHING (metric mean_time)
    Repeated work (`signals.repeat_groups`): runs of a cell with identical actions,
    iterations, outcome and errors, and times within ±2% of each other, in groups
    of ≥ 5. Expected: the mean time if every run of a group but the first were a
    free cache hit, gain ≥ 20%.
"""

import math
from collections.abc import Callable, Iterable, Sequence

from schemas.performance import (
    ExpectedImprovement,
    ImprovementMetric,
    ImprovementUnit,
    Priority,
    Recommendation,
    RecommendationType,
    StatisticalBasis,
)
from server.core.stats import wilson_lower_bound
from server.performance.cells import (
    Cell,
    Scope,
    Subject,
    agents_of,
    cells_of,
    comparable,
    executions_of,
)
from server.performance.discovery import Pending, TestEvidence, discover
from server.performance.executions import Execution
from server.performance.peers import (
    actions_pairs,
    actions_test,
    costlier,
    iteration_pairs,
    iteration_test,
    pending,
    success_pairs,
    success_test,
    time_pairs,
    time_test,
)
from server.performance.priority import cost_gain, priority_of, score, success_gain
from server.performance.signals import (
    MIN_REPEATS,
    REPEAT_TOLERANCE,
    TAIL_MIN_SAMPLES,
    TAIL_RATIO,
    failures_by_error,
    long_tail,
    repeat_groups,
    repeated_time,
    serial_chains,
)
from server.performance.stats import ALPHA, mean, median, proportion_test, quantile, welch_t_test

MIN_RELATIVE_GAIN = 0.20
MIN_SUCCESS_GAIN = 0.05
MIN_OUTCOME_GROUP = 5
MIN_ERROR_FAILURES = 5
MIN_FAILURE_SHARE = 0.25
MIN_CHAINED = 10
MIN_CHAINED_SHARE = 0.5
MIN_PARALLEL_P50_S = 1.0

TestedRule = Callable[[Sequence[Cell]], list[Pending[Recommendation]]]
Rule = Callable[[Sequence[Cell]], list[Recommendation]]
Key = tuple[RecommendationType, str, str | None]
UNITS: dict[ImprovementMetric, ImprovementUnit] = {
    "p50_time": "seconds",
    "mean_time": "seconds",
    "chain_makespan": "seconds",
    "mean_iterations": "iterations",
    "success_rate": "fraction",
    "actions_per_success": "actions",
}


def improvement(metric: ImprovementMetric, current: float, expected: float) -> ExpectedImprovement:
    gain = success_gain if metric == "success_rate" else cost_gain
    return ExpectedImprovement(
        metric=metric,
        unit=UNITS[metric],
        current=current,
        expected=expected,
        change=expected - current,
        relative_gain=gain(current, expected),
    )


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def tested_basis(evidence: TestEvidence, note: str) -> StatisticalBasis:
    return StatisticalBasis(
        test=evidence.test,
        statistic=finite_or_none(evidence.significance.statistic),
        p_value=evidence.significance.p_value,
        adjusted_p_value=evidence.q_value,
        family_size=evidence.family_size,
        alpha=ALPHA,
        note=note,
    )


def threshold_basis(note: str) -> StatisticalBasis:
    return StatisticalBasis(test="threshold", alpha=ALPHA, note=note)


def make(
    kind: RecommendationType,
    subject: Subject,
    title: str,
    rationale: str,
    gain: ExpectedImprovement,
    basis: StatisticalBasis,
    peer: Cell | None = None,
) -> Recommendation:
    """A recommendation about `subject`; its evidence weight is the smaller sample."""
    value = score(gain.relative_gain, min(subject.n, peer.n) if peer else subject.n)
    return Recommendation(
        type=kind,
        priority=priority_of(value),
        score=value,
        agent_type=subject.agent_type,
        task_category=subject.task_category,
        title=title,
        rationale=rationale,
        expected_improvement=gain,
        evidence=subject.n,
        peer_agent_type=peer.agent_type if peer else None,
        peer_evidence=peer.n if peer else None,
        basis=basis,
    )


def times(value: float, baseline: float) -> str:
    return f"{value / baseline:.1f}×" if baseline > 0 else "far"


def present(items: Iterable[Recommendation | None]) -> list[Recommendation]:
    return [item for item in items if item is not None]


# EXECUTION_SPEED


def speed_by_peer(cells: Sequence[Cell]) -> list[Pending[Recommendation]]:
    return pending(time_pairs(cells), time_test, _speed_from_peer)


def _speed_from_peer(cell: Cell, peer: Cell, evidence: TestEvidence) -> Recommendation | None:
    gain = improvement("p50_time", cell.p50_time, peer.p50_time)
    if not costlier(evidence) or gain.relative_gain < MIN_RELATIVE_GAIN:
        return None
    return make(
        RecommendationType.EXECUTION_SPEED,
        cell,
        f"Speed up {cell.task_category}: {cell.agent_type} takes "
        f"{times(cell.p50_time, peer.p50_time)} as long as {peer.agent_type}",
        f"Median time {cell.p50_time:.3g}s over {cell.n} runs against {peer.p50_time:.3g}s "
        f"for {peer.agent_type} ({peer.n} runs, success {peer.success_rate:.0%} vs "
        f"{cell.success_rate:.0%}). Matching its approach would save "
        f"{gain.relative_gain:.0%} of the median time.",
        gain,
        tested_basis(
            evidence, "Welch's t-test on ln(1 + time) against a peer that succeeds about as often"
        ),
        peer,
    )


def speed_by_tail(cells: Sequence[Cell]) -> list[Recommendation]:
    return present(_speed_from_tail(cell) for cell in cells)


def _speed_from_tail(cell: Cell) -> Recommendation | None:
    tail = long_tail(cell)
    if tail is None:
        return None
    gain = improvement("mean_time", tail.mean_time, tail.mean_time_without_tail)
    if gain.relative_gain < MIN_RELATIVE_GAIN:
        return None
    return make(
        RecommendationType.EXECUTION_SPEED,
        cell,
        f"Cut the slow tail of {cell.agent_type} on {cell.task_category}",
        f"{tail.tail_runs} of {cell.n} runs took over {TAIL_RATIO:g}× the median "
        f"{cell.p50_time:.3g}s (p95/p50 = {tail.ratio:.1f}). A timeout with retry, or "
        f"fixing what the slow runs share, would bring the mean from "
        f"{tail.mean_time:.3g}s to {tail.mean_time_without_tail:.3g}s.",
        gain,
        threshold_basis(f"p95/p50 ≥ {TAIL_RATIO:g} on ≥ {TAIL_MIN_SAMPLES} runs"),
    )


# ITERATION_REDUCTION


def iterations_by_peer(cells: Sequence[Cell]) -> list[Pending[Recommendation]]:
    return pending(iteration_pairs(cells), iteration_test, _iterations_from_peer)


def _iterations_from_peer(cell: Cell, peer: Cell, evidence: TestEvidence) -> Recommendation | None:
    gain = improvement("mean_iterations", cell.mean_iterations, peer.mean_iterations)
    if not costlier(evidence) or gain.relative_gain < MIN_RELATIVE_GAIN:
        return None
    return make(
        RecommendationType.ITERATION_REDUCTION,
        cell,
        f"Fewer iterations on {cell.task_category}: {peer.agent_type} needs "
        f"{peer.mean_iterations:.1f} where {cell.agent_type} needs {cell.mean_iterations:.1f}",
        f"{cell.agent_type} averages {cell.mean_iterations:.2f} iterations over {cell.n} runs, "
        f"{peer.agent_type} {peer.mean_iterations:.2f} over {peer.n} at success "
        f"{peer.success_rate:.0%} vs {cell.success_rate:.0%}.",
        gain,
        tested_basis(
            evidence,
            "Welch's t-test on ln(1 + iterations) against a peer that succeeds about as often",
        ),
        peer,
    )


def _outcome_groups(cell: Cell) -> bool:
    return min(cell.successes, cell.n - cell.successes) >= MIN_OUTCOME_GROUP


def _iterations_by_outcome(cell: Cell, success: bool) -> list[int]:
    return [e.iterations for e in cell.executions if e.success is success]


def iterations_by_failures(cells: Sequence[Cell]) -> list[Pending[Recommendation]]:
    return [_failure_iterations(cell) for cell in comparable(cells) if _outcome_groups(cell)]


def _failure_iterations(cell: Cell) -> Pending[Recommendation]:
    failed, succeeded = (
        [math.log1p(i) for i in _iterations_by_outcome(cell, outcome)] for outcome in (False, True)
    )
    significance = welch_t_test(failed, succeeded)
    return Pending("welch_t_log", significance, lambda evidence: _cap(cell, evidence))


def _cap(cell: Cell, evidence: TestEvidence) -> Recommendation | None:
    succeeded = _iterations_by_outcome(cell, True)
    cap = math.ceil(quantile(succeeded, 0.95))
    capped = mean([min(e.iterations, cap) for e in cell.executions])
    gain = improvement("mean_iterations", cell.mean_iterations, capped)
    if evidence.statistic <= 0 or gain.relative_gain < MIN_RELATIVE_GAIN:
        return None
    failed = _iterations_by_outcome(cell, False)
    lost = sum(i > cap for i in succeeded)
    return make(
        RecommendationType.ITERATION_REDUCTION,
        cell,
        f"Cap iterations of {cell.agent_type} on {cell.task_category} at {cap}",
        f"Failed runs average {mean(failed):.1f} iterations, successful ones "
        f"{mean(succeeded):.1f}: more iterations rarely rescue a run. A cap at {cap} "
        f"(p95 of successful runs) would bring the mean from {cell.mean_iterations:.2f} to "
        f"{capped:.2f}, risking at most {lost} of {len(succeeded)} successes that needed more.",
        gain,
        tested_basis(evidence, "Welch's t-test on ln(1 + iterations), failed vs successful runs"),
    )


# ERROR_REDUCTION


def errors(cells: Sequence[Cell]) -> list[Pending[Recommendation]]:
    return [
        _error_pending(cell, error)
        for cell in comparable(cells)
        for error, failed in failures_by_error(cell.executions).items()
        if _recurring(cell, error, failed)
    ]


def _recurring(cell: Cell, error: str, failed: int) -> bool:
    failures = cell.n - cell.successes
    share_low = wilson_lower_bound(failed, failures)
    return (
        failed >= MIN_ERROR_FAILURES
        and share_low >= MIN_FAILURE_SHARE
        and _runs_with(cell, error)[1] < cell.n
    )


def _runs_with(cell: Cell, error: str) -> tuple[int, int]:
    """(successes, runs) among the cell's runs that met `error`."""
    hit = [e for e in cell.executions if error in e.errors]
    return sum(e.success for e in hit), len(hit)


def _error_pending(cell: Cell, error: str) -> Pending[Recommendation]:
    k_with, n_with = _runs_with(cell, error)
    name, significance = proportion_test(k_with, n_with, cell.successes - k_with, cell.n - n_with)
    return Pending(name, significance, lambda evidence: _fix_error(cell, error, evidence))


def _fix_error(cell: Cell, error: str, evidence: TestEvidence) -> Recommendation | None:
    k_with, n_with = _runs_with(cell, error)
    rate_without = (cell.successes - k_with) / (cell.n - n_with)
    failures = cell.n - cell.successes
    gain = improvement("success_rate", cell.success_rate, rate_without)
    if gain.change < MIN_SUCCESS_GAIN:
        return None
    return make(
        RecommendationType.ERROR_REDUCTION,
        cell,
        f"Fix '{error}' in {cell.agent_type} on {cell.task_category}",
        f"'{error}' appears in {n_with - k_with} of the {failures} failures; runs that meet "
        f"it succeed {k_with / n_with:.0%} of the time against {rate_without:.0%} for the "
        f"rest. If they succeeded as often as the rest, the success rate would rise from "
        f"{cell.success_rate:.0%} to {rate_without:.0%}.",
        gain,
        tested_basis(evidence, "success of runs that met the error vs runs that did not"),
    )


# RESOURCE_EFFICIENCY


def actions_by_peer(cells: Sequence[Cell]) -> list[Pending[Recommendation]]:
    return pending(actions_pairs(cells), actions_test, _fewer_actions)


def _fewer_actions(cell: Cell, peer: Cell, evidence: TestEvidence) -> Recommendation | None:
    gain = improvement("actions_per_success", cell.actions_per_success, peer.actions_per_success)
    if not costlier(evidence) or gain.relative_gain < MIN_RELATIVE_GAIN:
        return None
    return make(
        RecommendationType.RESOURCE_EFFICIENCY,
        cell,
        f"Spend fewer actions on {cell.task_category}: {cell.agent_type} uses "
        f"{cell.actions_per_success:.1f} per success, {peer.agent_type} "
        f"{peer.actions_per_success:.1f}",
        f"{cell.total_actions} actions for {cell.successes} successes over {cell.n} runs, "
        f"against {peer.total_actions} for {peer.successes} over {peer.n} runs of "
        f"{peer.agent_type}; failed runs' actions count as cost.",
        gain,
        tested_basis(evidence, "z-test on ln(actions per success), delta-method variance"),
        peer,
    )


# AGENT_SELECTION


def selection(cells: Sequence[Cell]) -> list[Pending[Recommendation]]:
    return pending(success_pairs(cells), success_test, _route)


def _route(cell: Cell, peer: Cell, evidence: TestEvidence) -> Recommendation | None:
    gain = improvement("success_rate", cell.success_rate, peer.success_rate)
    if gain.change < MIN_SUCCESS_GAIN:
        return None
    return make(
        RecommendationType.AGENT_SELECTION,
        cell,
        f"Route {cell.task_category} tasks to {peer.agent_type} instead of {cell.agent_type}",
        f"{peer.agent_type} succeeds on {peer.successes} of {peer.n} "
        f"({peer.success_rate:.0%}), {cell.agent_type} on {cell.successes} of {cell.n} "
        f"({cell.success_rate:.0%}).",
        gain,
        tested_basis(evidence, "success rate against a more successful peer"),
        peer,
    )


# PARALLEL_EXECUTION


def parallel_execution(cells: Sequence[Cell]) -> list[Recommendation]:
    return present(_parallel(executions_of(group)) for group in agents_of(cells).values())


def _parallel(executions: Sequence[Execution]) -> Recommendation | None:
    chains = serial_chains(executions)
    if chains.chained < max(MIN_CHAINED, MIN_CHAINED_SHARE * len(executions)):
        return None
    if median([e.completion_time for e in executions]) < MIN_PARALLEL_P50_S:
        return None
    gain = improvement("chain_makespan", chains.mean_makespan, chains.mean_parallel_makespan)
    if gain.relative_gain < MIN_RELATIVE_GAIN:
        return None
    categories = {e.task_category for chain in chains.chains for e in chain}
    category = next(iter(categories)) if len(categories) == 1 else None
    agent = Scope(executions[0].agent_type, category, chains.chained)
    return make(
        RecommendationType.PARALLEL_EXECUTION,
        agent,
        f"Run {agent.agent_type}'s independent executions in parallel",
        f"{chains.chained} of {len(executions)} executions ran back to back in "
        f"{len(chains.chains)} chains, each starting as the previous one ended. Run side "
        f"by side, a chain would take its longest execution, "
        f"{chains.mean_parallel_makespan:.3g}s on average, instead of "
        f"{chains.mean_makespan:.3g}s: an upper bound, if they are independent.",
        gain,
        threshold_basis(
            f"≥ {MIN_CHAINED} and ≥ {MIN_CHAINED_SHARE:.0%} of executions "
            "in back-to-back chains, median time ≥ 1 s"
        ),
    )


# CACHING


def caching(cells: Sequence[Cell]) -> list[Recommendation]:
    return present(_caching(cell) for cell in comparable(cells))


def _caching(cell: Cell) -> Recommendation | None:
    groups = repeat_groups(cell.executions)
    if not groups:
        return None
    total = math.fsum(cell.sorted_times)
    expected = (total - repeated_time(groups)) / cell.n
    gain = improvement("mean_time", cell.mean_time, expected)
    if gain.relative_gain < MIN_RELATIVE_GAIN:
        return None
    repeats = sum(len(group) - 1 for group in groups)
    return make(
        RecommendationType.CACHING,
        cell,
        f"Cache repeated work of {cell.agent_type} on {cell.task_category}",
        f"{repeats} of {cell.n} runs repeat an earlier run's footprint ({len(groups)} "
        f"groups with identical actions, iterations, outcome and errors, times within "
        f"±{REPEAT_TOLERANCE:.0%}). Served from a cache they would cost next to nothing: "
        f"mean time {cell.mean_time:.3g}s → {expected:.3g}s.",
        gain,
        threshold_basis(
            f"≥ {MIN_REPEATS} runs with one footprint within "
            f"±{REPEAT_TOLERANCE:.0%} of their median time"
        ),
    )


TESTED_RULES: tuple[TestedRule, ...] = (
    speed_by_peer,
    iterations_by_peer,
    iterations_by_failures,
    errors,
    actions_by_peer,
    selection,
)
THRESHOLD_RULES: tuple[Rule, ...] = (speed_by_tail, parallel_execution, caching)


def recommend(
    executions: Sequence[Execution],
    agent_type: str | None = None,
    min_priority: Priority = Priority.LOW,
) -> list[Recommendation]:
    """Recommendations for `agent_type` (all agents if None) at `min_priority` or
    above, strongest first. `executions` must hold every agent type's executions:
    peers are the baseline, and the tests are adjusted over all cells, so a
    recommendation does not depend on the filter."""
    cells = cells_of(executions)
    tested = discover([item for rule in TESTED_RULES for item in rule(cells)])
    found = strongest(tested + [rec for rule in THRESHOLD_RULES for rec in rule(cells)])
    wanted = [
        rec
        for rec in found
        if (agent_type is None or rec.agent_type == agent_type)
        and rec.priority.rank >= min_priority.rank
    ]
    return sorted(wanted, key=_order)


def strongest(found: Iterable[Recommendation]) -> list[Recommendation]:
    """One recommendation per (type, agent type, category): the highest score, then
    the largest gain (several peers, a peer or a tail, two errors)."""
    best: dict[Key, Recommendation] = {}
    for rec in found:
        key = (rec.type, rec.agent_type, rec.task_category)
        if key not in best or _strength(rec) > _strength(best[key]):
            best[key] = rec
    return list(best.values())


def _strength(rec: Recommendation) -> tuple[float, float]:
    return rec.score, rec.expected_improvement.relative_gain


def _order(rec: Recommendation) -> tuple[int, float, str, str, str]:
    return -rec.priority.rank, -rec.score, rec.type, rec.agent_type, rec.task_category or ""
