"""Cells tested against better-looking peers on one metric.

For a cell (agent type A, category c) every other agent type's comparable cell of
category c that looks better on the metric is a candidate, and each such pair is
tested. The tests go to `discovery.discover` with every other test of the call, and
the best significant peer wins (the recommendation with the largest gain).

    time        p50 time; Welch's t-test on x = ln(1 + t). Times are close to
                log-normal (Brown et al., JASA 100, 2005), where means of logs
                compare medians and a few slow runs do not swamp the test.
    iterations  mean iterations; Welch's t-test on ln(1 + iterations).
    actions     actions per success, sum(actions)/successes; z-test on the log ratio
                with the delta-method variance (`stats.ratio_z_from`). Cells need
                MIN_SUCCESSES successes and some actions.
    success     success rate; Fisher's exact test for small expected counts, the
                two-proportion z-test otherwise (`stats.proportion_test`).

Peers held up as models for time, iterations or actions must succeed about as often
(`cells.model_peers`): a peer that is fast because it gives up early is no model.
A cost test counts only when its statistic (cell minus peer) is positive: the
better-looking peer must be better in what the test compares (mean logs), not only
in the headline figure.
"""

from collections.abc import Callable, Sequence
from typing import TypeVar

from schemas.performance import StatisticalTest
from server.performance.cells import Cell, comparable, model_peers, peers_of
from server.performance.discovery import Pending, TestEvidence
from server.performance.stats import (
    Significance,
    proportion_test,
    ratio_z_from,
    welch_from_moments,
)

MIN_SUCCESSES = 5

R = TypeVar("R")
PeerPair = tuple[Cell, Cell]
PairTest = Callable[[Cell, Cell], tuple[StatisticalTest, Significance]]
Finish = Callable[[Cell, Cell, TestEvidence], R | None]


def better_pairs(
    cells: Sequence[Cell],
    candidates: Callable[[Cell], list[Cell]],
    cost: Callable[[Cell], float],
) -> list[PeerPair]:
    return [
        (cell, peer)
        for cell in comparable(cells)
        for peer in candidates(cell)
        if cost(peer) < cost(cell)
    ]


def pending(pairs: Sequence[PeerPair], test: PairTest, finish: Finish[R]) -> list[Pending[R]]:
    return [_pending(cell, peer, test, finish) for cell, peer in pairs]


def _pending(cell: Cell, peer: Cell, test: PairTest, finish: Finish[R]) -> Pending[R]:
    name, significance = test(cell, peer)
    return Pending(name, significance, lambda evidence: finish(cell, peer, evidence))


def time_pairs(cells: Sequence[Cell]) -> list[PeerPair]:
    return better_pairs(cells, lambda cell: model_peers(cell, cells), lambda c: c.p50_time)


def time_test(cell: Cell, peer: Cell) -> tuple[StatisticalTest, Significance]:
    return "welch_t_log", welch_from_moments(cell.log_times, peer.log_times)


def iteration_pairs(cells: Sequence[Cell]) -> list[PeerPair]:
    return better_pairs(cells, lambda cell: model_peers(cell, cells), lambda c: c.mean_iterations)


def iteration_test(cell: Cell, peer: Cell) -> tuple[StatisticalTest, Significance]:
    return "welch_t_log", welch_from_moments(cell.log_iterations, peer.log_iterations)


def has_actions_per_success(cell: Cell) -> bool:
    return cell.successes >= MIN_SUCCESSES and cell.total_actions > 0


def actions_pairs(cells: Sequence[Cell]) -> list[PeerPair]:
    eligible = [cell for cell in cells if has_actions_per_success(cell)]
    return better_pairs(
        eligible, lambda cell: peers_of(cell, eligible), lambda c: c.actions_per_success
    )


def actions_test(cell: Cell, peer: Cell) -> tuple[StatisticalTest, Significance]:
    return "ratio_z_log", ratio_z_from(cell.log_actions_per_success, peer.log_actions_per_success)


def success_pairs(cells: Sequence[Cell]) -> list[PeerPair]:
    return better_pairs(cells, lambda cell: peers_of(cell, cells), lambda c: -c.success_rate)


def success_test(cell: Cell, peer: Cell) -> tuple[StatisticalTest, Significance]:
    return proportion_test(cell.successes, cell.n, peer.successes, peer.n)


def costlier(evidence: TestEvidence) -> bool:
    """The cell's side of a cost test (cell minus peer) is the larger."""
    return evidence.statistic > 0
