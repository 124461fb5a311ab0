"""Executions grouped by agent type and task category, with the figures every rule reads.

A cell is one agent type's executions in one task category. Rules compare a cell
with its peers: the other agent types' cells of the same category. A cell or peer
with fewer than MIN_SAMPLES executions is not compared at all, so a handful of
lucky or unlucky runs cannot raise a finding.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from server.performance.executions import Execution, group_by
from server.performance.stats import LogRatio, Moments, log_ratio, mean, moments, quantile_sorted

MIN_SAMPLES = 10
"""Executions a cell (and its peer) needs before it is compared."""
SUCCESS_SLACK = 0.10
"""A peer held up as a model for speed, iterations or actions may succeed at most
this much less often than the cell: a peer that is fast because it gives up early
is no model."""


@dataclass(frozen=True, eq=False)
class Cell:
    """Figures are computed once, on first use: a cell meets many peers."""

    agent_type: str
    task_category: str
    executions: tuple[Execution, ...]

    @property
    def n(self) -> int:
        return len(self.executions)

    @cached_property
    def successes(self) -> int:
        return sum(e.success for e in self.executions)

    @property
    def success_rate(self) -> float:
        return self.successes / self.n

    @cached_property
    def sorted_times(self) -> tuple[float, ...]:
        return tuple(sorted(e.completion_time for e in self.executions))

    @cached_property
    def p50_time(self) -> float:
        return quantile_sorted(self.sorted_times, 0.5)

    @cached_property
    def p95_time(self) -> float:
        return quantile_sorted(self.sorted_times, 0.95)

    @cached_property
    def mean_time(self) -> float:
        return mean(self.sorted_times)

    @cached_property
    def mean_iterations(self) -> float:
        return mean([e.iterations for e in self.executions])

    @cached_property
    def log_times(self) -> Moments:
        """Moments of ln(1 + t); needs two executions."""
        return moments([math.log1p(e.completion_time) for e in self.executions])

    @cached_property
    def log_iterations(self) -> Moments:
        """Moments of ln(1 + iterations); needs two executions."""
        return moments([math.log1p(e.iterations) for e in self.executions])

    @cached_property
    def total_actions(self) -> int:
        return sum(e.actions_count for e in self.executions)

    @property
    def actions_per_success(self) -> float:
        return self.total_actions / self.successes if self.successes else math.inf

    @cached_property
    def log_actions_per_success(self) -> LogRatio:
        """ln(actions per success) with its delta-method variance; needs a success and
        an action."""
        costs = [float(e.actions_count) for e in self.executions]
        return log_ratio(costs, [float(e.success) for e in self.executions])


class Subject(Protocol):
    """What a finding is about: a cell, or an agent type's executions."""

    @property
    def agent_type(self) -> str: ...
    @property
    def task_category(self) -> str | None: ...
    @property
    def n(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Scope:
    """A `Subject` that is not one cell: an agent type, maybe narrowed to a category."""

    agent_type: str
    task_category: str | None
    n: int


def make_cell(agent_type: str, task_category: str, executions: Sequence[Execution]) -> Cell:
    if not executions:
        raise ValueError("a cell needs at least one execution")
    return Cell(agent_type, task_category, tuple(executions))


def cells_of(executions: Iterable[Execution]) -> list[Cell]:
    """One cell per (agent type, task category), in first-seen order."""
    groups = group_by(executions, lambda e: (e.agent_type, e.task_category))
    return [make_cell(agent, category, group) for (agent, category), group in groups.items()]


def agents_of(cells: Iterable[Cell]) -> dict[str, list[Cell]]:
    return group_by(cells, lambda cell: cell.agent_type)


def executions_of(cells: Iterable[Cell]) -> list[Execution]:
    return [e for cell in cells for e in cell.executions]


def comparable(cells: Iterable[Cell]) -> list[Cell]:
    return [cell for cell in cells if cell.n >= MIN_SAMPLES]


def peers_of(cell: Cell, cells: Iterable[Cell]) -> list[Cell]:
    """Other agent types' comparable cells of the same category."""
    return [
        other
        for other in cells
        if other.task_category == cell.task_category
        and other.agent_type != cell.agent_type
        and other.n >= MIN_SAMPLES
    ]


def model_peers(cell: Cell, cells: Iterable[Cell]) -> list[Cell]:
    """Peers that succeed about as often as the cell or more (SUCCESS_SLACK)."""
    floor = cell.success_rate - SUCCESS_SLACK
    return [peer for peer in peers_of(cell, cells) if peer.success_rate >= floor]
