"""Bottlenecks: where an agent type's time, iterations and failures go.

Each kind compares a figure (`value`) with a `baseline`, over cells of at least
MIN_SAMPLES = 10 executions (`cells.py`), so a few noisy runs raise nothing.

SLOW_CATEGORY    A category whose p50 time stands out among the agent's categories:
                 the Iglewicz-Hoaglin modified z of ln(1 + p50) across the agent's
                 comparable categories is ≥ 3.5 (`stats.modified_z`). Needs
                 ≥ MIN_CATEGORIES = 3 categories; the MAD is floored at 0.1 on the
                 log scale, so a category must be at least exp(3.5·0.1/0.6745) = 1.7×
                 the median to stand out. Baseline: the median of the categories' p50.
HIGH_ITERATIONS  The same on ln(1 + mean iterations).
ERROR_HOTSPOT    A category whose failure rate is significantly above that of the
                 agent's runs in other categories (proportion test) by ≥ 5 points.
RECURRING_ERROR  One error met by ≥ 5 of the agent's failed runs, whose share of
                 them has a Wilson 95% lower bound ≥ 25%. Baseline: the share if
                 failures spread evenly over the distinct errors they met.
PEER_GAP         A peer that succeeds about as often has a significantly lower time
                 (`peers.time_pairs`, Welch on ln(1 + t)) and 1 − p50_peer/p50 ≥ 20%.
                 Baseline: the fastest such peer's p50.
LONG_TAIL        p95/p50 ≥ 3 on ≥ 20 runs (`signals.long_tail`). Baseline: p50.

The tests of one call (ERROR_HOTSPOT, PEER_GAP) are adjusted together with
Benjamini-Hochberg (`discovery.discover`); `p_value` is the q-value.

Severity is `priority.priority_of(score(effect, evidence))`: the effect is the share
of the value in excess of the baseline, 1 − baseline/value, and for RECURRING_ERROR
the share of failures the error accounts for.
"""

import math
from collections.abc import Callable, Iterable, Sequence

from schemas.performance import Bottleneck, BottleneckKind, BottleneckMetric
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
from server.performance.peers import costlier, pending, time_pairs, time_test
from server.performance.priority import cost_gain, priority_of, score
from server.performance.signals import failures_by_error, long_tail
from server.performance.stats import OUTLIER_Z, median, modified_z, proportion_test

MIN_CATEGORIES = 3
LOG_MAD_FLOOR = 0.1
MIN_FAILURE_GAP = 0.05
MIN_ERROR_FAILURES = 5
MIN_FAILURE_SHARE = 0.25
MIN_PEER_GAIN = 0.20


def bottleneck(
    kind: BottleneckKind,
    subject: Subject,
    metric: BottleneckMetric,
    value: float,
    baseline: float,
    detail: str,
    p_value: float | None = None,
    effect: float | None = None,
) -> Bottleneck:
    """`effect` defaults to the share of `value` in excess of `baseline`."""
    value_score = score(cost_gain(value, baseline) if effect is None else effect, subject.n)
    return Bottleneck(
        kind=kind,
        agent_type=subject.agent_type,
        task_category=subject.task_category,
        metric=metric,
        value=value,
        baseline=baseline,
        severity=priority_of(value_score),
        score=value_score,
        evidence=subject.n,
        p_value=p_value,
        detail=detail,
    )


def outliers(cells: Sequence[Cell], figure: Callable[[Cell], float]) -> list[tuple[Cell, float]]:
    """(cell, baseline) for each comparable cell whose figure stands out among its
    agent's categories; the baseline is the median figure of those categories."""
    found: list[tuple[Cell, float]] = []
    for group in agents_of(comparable(cells)).values():
        if len(group) >= MIN_CATEGORIES:
            found += _outliers_of_agent(group, figure)
    return found


def _outliers_of_agent(
    group: Sequence[Cell], figure: Callable[[Cell], float]
) -> list[tuple[Cell, float]]:
    logs = [math.log1p(figure(cell)) for cell in group]
    baseline = median([figure(cell) for cell in group])
    return [
        (cell, baseline)
        for cell, x in zip(group, logs, strict=True)
        if modified_z(x, logs, LOG_MAD_FLOOR) >= OUTLIER_Z
    ]


def slow_categories(cells: Sequence[Cell]) -> list[Bottleneck]:
    return [
        bottleneck(
            BottleneckKind.SLOW_CATEGORY,
            cell,
            "p50_time",
            cell.p50_time,
            baseline,
            f"p50 {cell.p50_time:.3g}s against a median of {baseline:.3g}s over "
            f"{cell.agent_type}'s categories",
        )
        for cell, baseline in outliers(cells, lambda cell: cell.p50_time)
    ]


def high_iterations(cells: Sequence[Cell]) -> list[Bottleneck]:
    return [
        bottleneck(
            BottleneckKind.HIGH_ITERATIONS,
            cell,
            "mean_iterations",
            cell.mean_iterations,
            baseline,
            f"{cell.mean_iterations:.2f} iterations on average against a median of "
            f"{baseline:.2f} over {cell.agent_type}'s categories",
        )
        for cell, baseline in outliers(cells, lambda cell: cell.mean_iterations)
    ]


def _rest_of_agent(cell: Cell, cells: Sequence[Cell]) -> tuple[int, int]:
    """(failures, runs) of the agent's runs in its other categories."""
    others = [c for c in cells if c.agent_type == cell.agent_type and c is not cell]
    return sum(c.n - c.successes for c in others), sum(c.n for c in others)


def error_hotspots(cells: Sequence[Cell]) -> list[Pending[Bottleneck]]:
    return [
        _hotspot_pending(cell, cells)
        for cell in comparable(cells)
        if _rest_of_agent(cell, cells)[1] > 0
    ]


def _hotspot_pending(cell: Cell, cells: Sequence[Cell]) -> Pending[Bottleneck]:
    failures, runs = _rest_of_agent(cell, cells)
    name, significance = proportion_test(cell.n - cell.successes, cell.n, failures, runs)
    return Pending(name, significance, lambda evidence: _hotspot(cell, failures / runs, evidence))


def _hotspot(cell: Cell, baseline: float, evidence: TestEvidence) -> Bottleneck | None:
    rate = 1.0 - cell.success_rate
    if rate - baseline < MIN_FAILURE_GAP:
        return None
    detail = (
        f"{cell.n - cell.successes} of {cell.n} runs failed ({rate:.0%}) against "
        f"{baseline:.0%} in {cell.agent_type}'s other categories"
    )
    kind = BottleneckKind.ERROR_HOTSPOT
    return bottleneck(kind, cell, "failure_rate", rate, baseline, detail, evidence.q_value)


def recurring_errors(cells: Sequence[Cell]) -> list[Bottleneck]:
    return [
        found
        for group in agents_of(cells).values()
        for found in _recurring_errors_of_agent(executions_of(group))
    ]


def _recurring_errors_of_agent(executions: Sequence[Execution]) -> list[Bottleneck]:
    failures = sum(not e.success for e in executions)
    by_error = failures_by_error(executions)
    found: list[Bottleneck] = []
    for error, count in by_error.most_common():
        share = count / failures
        if count < MIN_ERROR_FAILURES or wilson_lower_bound(count, failures) < MIN_FAILURE_SHARE:
            continue
        scope = Scope(executions[0].agent_type, None, len(executions))
        detail = f"'{error}' in {count} of {failures} failed runs"
        even = 1.0 / len(by_error)
        found.append(
            bottleneck(
                BottleneckKind.RECURRING_ERROR,
                scope,
                "share_of_failures",
                share,
                even,
                detail,
                effect=share,
            )
        )
    return found


def peer_gaps(cells: Sequence[Cell]) -> list[Pending[Bottleneck]]:
    return pending(time_pairs(cells), time_test, _peer_gap)


def _peer_gap(cell: Cell, peer: Cell, evidence: TestEvidence) -> Bottleneck | None:
    if not costlier(evidence) or cost_gain(cell.p50_time, peer.p50_time) < MIN_PEER_GAIN:
        return None
    detail = f"p50 {cell.p50_time:.3g}s against {peer.p50_time:.3g}s for {peer.agent_type} ({peer.n} runs)"
    kind = BottleneckKind.PEER_GAP
    return bottleneck(
        kind, cell, "p50_time", cell.p50_time, peer.p50_time, detail, evidence.q_value
    )


def long_tails(cells: Sequence[Cell]) -> list[Bottleneck]:
    found: list[Bottleneck] = []
    for cell in cells:
        tail = long_tail(cell)
        if tail is not None:
            detail = (
                f"{tail.tail_runs} of {cell.n} runs took over 3× the median; p95/p50 = "
                f"{tail.ratio:.1f}"
            )
            effect = cost_gain(tail.mean_time, tail.mean_time_without_tail)
            found.append(
                bottleneck(
                    BottleneckKind.LONG_TAIL,
                    cell,
                    "p95_time",
                    cell.p95_time,
                    cell.p50_time,
                    detail,
                    effect=effect,
                )
            )
    return found


Detector = Callable[[Sequence[Cell]], list[Bottleneck]]
TestedDetector = Callable[[Sequence[Cell]], list[Pending[Bottleneck]]]
DETECTORS: tuple[Detector, ...] = (slow_categories, high_iterations, recurring_errors, long_tails)
TESTED_DETECTORS: tuple[TestedDetector, ...] = (error_hotspots, peer_gaps)


def bottlenecks(executions: Sequence[Execution], agent_type: str | None = None) -> list[Bottleneck]:
    """Bottlenecks of `agent_type` (all agents if None), most severe first.
    `executions` must hold every agent type's executions: peers are baselines, and
    the tests are adjusted over all cells, so a finding does not depend on the filter."""
    cells = cells_of(executions)
    tested = discover([item for detect in TESTED_DETECTORS for item in detect(cells)])
    found = strongest(tested + [item for detect in DETECTORS for item in detect(cells)])
    wanted = [item for item in found if agent_type is None or item.agent_type == agent_type]
    return sorted(wanted, key=_order)


def strongest(found: Iterable[Bottleneck]) -> list[Bottleneck]:
    """One bottleneck per (kind, agent type, category, metric): the highest score
    (a cell slower than several peers is one gap, to the fastest significant one)."""
    best: dict[tuple[str, str, str | None, str], Bottleneck] = {}
    for item in found:
        key = (item.kind, item.agent_type, item.task_category, item.metric)
        if key not in best or item.score > best[key].score:
            best[key] = item
    return list(best.values())


def _order(item: Bottleneck) -> tuple[int, float, str, str, str]:
    return -item.severity.rank, -item.score, item.kind, item.agent_type, item.task_category or ""
