"""Patterns in one group of executions that need no peers: long tails, serial chains,
repeated work and recurring errors. `bottlenecks.py` and `recommend.py` both read them.

Long tail. With p50 and p95 the cell's time quantiles, a cell of at least
TAIL_MIN_SAMPLES executions has a long tail when p95/p50 ≥ TAIL_RATIO: more than 5%
of its runs take over three times the typical run (for log-normal times that needs a
log-spread sigma ≥ ln 3/1.645 = 0.67, far wider than steady work). The runs past
TAIL_RATIO·p50 are the tail; the gain is the mean time if they took p50 instead.

Serial chains (the PARALLEL_EXECUTION signal). The data holds no dependencies between
executions, so the signal is what can be seen: an agent type running separate
executions one after another, each starting as the previous one ends. With start =
timestamp − completion_time (the timestamp is the end), the next execution continues
a chain when

    −CHAIN_OVERLAP·t_prev ≤ start_next − end_prev ≤ CHAIN_GAP·t_prev

(5% overlap allowed for clock jitter, up to a 25% pause). Executions that overlap
more are already concurrent and break chains. A chain of k executions has makespan
end_last − start_first; run side by side it would take max(t_i). The gain is
1 − mean(max t_i)/mean(makespan), an upper bound that holds only if the executions
are independent, which separate tasks usually are but the data cannot show.

Repeated work (the CACHING signal). The data holds no task inputs, so repeated work
is read from its footprint: executions of one cell with the same fingerprint
(actions_count, iterations, success, set of errors) whose times lie within
±REPEAT_TOLERANCE (2%) of their group's median time; at least MIN_REPEATS such
executions form a repeat group. Independent work rarely looks like this: for
log-normal times with log-spread sigma, about 0.016/sigma of a group falls in ±2% by
chance (5% at sigma = 0.3), while repeated identical work (a lookup, a build of the
same thing, the same failing call) puts most of its runs there. Runs this steady
that are not repeats cannot be told apart with these fields. Cache hits are taken
as free and the first run of each group still pays, so the gain is the repeats'
share of the cell's time.
"""

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from server.performance.cells import Cell
from server.performance.executions import Execution, group_by
from server.performance.stats import mean, median

TAIL_MIN_SAMPLES = 20
TAIL_RATIO = 3.0
CHAIN_GAP = 0.25
CHAIN_OVERLAP = 0.05
REPEAT_TOLERANCE = 0.02
MIN_REPEATS = 5


@dataclass(frozen=True, slots=True)
class LongTail:
    ratio: float
    """p95 / p50."""
    tail_runs: int
    mean_time: float
    mean_time_without_tail: float
    """The mean if the tail runs had taken p50."""


def long_tail(cell: Cell) -> LongTail | None:
    p50 = cell.p50_time
    if cell.n < TAIL_MIN_SAMPLES or p50 <= 0 or cell.p95_time < TAIL_RATIO * p50:
        return None
    cutoff = TAIL_RATIO * p50
    trimmed = [p50 if t > cutoff else t for t in cell.sorted_times]
    tail_runs = sum(t > cutoff for t in cell.sorted_times)
    return LongTail(cell.p95_time / p50, tail_runs, cell.mean_time, mean(trimmed))


@dataclass(frozen=True, slots=True)
class SerialChains:
    chains: tuple[tuple[Execution, ...], ...]
    """Chains of two or more back-to-back executions."""

    @property
    def chained(self) -> int:
        return sum(len(chain) for chain in self.chains)

    @property
    def mean_makespan(self) -> float:
        return mean([chain[-1].timestamp - chain[0].started for chain in self.chains])

    @property
    def mean_parallel_makespan(self) -> float:
        return mean([max(e.completion_time for e in chain) for chain in self.chains])


def back_to_back(previous: Execution, following: Execution) -> bool:
    gap = following.started - previous.timestamp
    return -CHAIN_OVERLAP * previous.completion_time <= gap <= CHAIN_GAP * previous.completion_time


def serial_chains(executions: Sequence[Execution]) -> SerialChains:
    """Maximal runs of back-to-back executions, ordered by start."""
    ordered = sorted(executions, key=lambda e: (e.started, e.timestamp))
    chains: list[list[Execution]] = [[e] for e in ordered[:1]]
    for previous, following in pairwise(ordered):
        if back_to_back(previous, following):
            chains[-1].append(following)
        else:
            chains.append([following])
    return SerialChains(tuple(tuple(chain) for chain in chains if len(chain) >= 2))


Fingerprint = tuple[int, int, bool, tuple[str, ...]]


def fingerprint(execution: Execution) -> Fingerprint:
    errors = tuple(sorted(set(execution.errors)))
    return execution.actions_count, execution.iterations, execution.success, errors


def repeat_groups(executions: Iterable[Execution]) -> list[list[Execution]]:
    """Groups of same-fingerprint executions within ±2% of their median time."""
    groups = group_by(executions, fingerprint)
    cores = [_core(group) for group in groups.values() if len(group) >= MIN_REPEATS]
    return [core for core in cores if len(core) >= MIN_REPEATS]


def _core(group: Sequence[Execution]) -> list[Execution]:
    centre = median([e.completion_time for e in group])
    return [e for e in group if abs(e.completion_time - centre) <= REPEAT_TOLERANCE * centre]


def repeated_time(groups: Iterable[Sequence[Execution]]) -> float:
    """Seconds a cache would save: every run of a group but the first."""
    return math.fsum(sum(e.completion_time for e in group[1:]) for group in groups)


def failures_by_error(executions: Iterable[Execution]) -> Counter[str]:
    """Failed executions that met each error (an error repeated in one run counts once)."""
    return Counter(error for e in executions if not e.success for error in set(e.errors))
