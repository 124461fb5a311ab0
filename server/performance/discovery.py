"""Findings that rest on a test, decided together.

A rule that tests proposes `Pending` findings: a test result and how to finish the
finding once the family has spoken. `discover` adjusts every proposed test of one
call together with Benjamini-Hochberg (`stats.benjamini_hochberg`) and finishes
those whose q-value is below α = 0.05. Pooling every rule's tests means a call's
recommendations (or bottlenecks) as a whole hold at most 5% false discoveries in
expectation, and on data where nothing is going on come out empty 95% of the time,
however many cells and rules there are. Tests between overlapping samples (one cell
against several peers) are positively dependent, where the procedure still holds
(Benjamini & Yekutieli, Ann. Statist. 29, 2001).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from schemas.performance import StatisticalTest
from server.performance.stats import ALPHA, Significance, benjamini_hochberg

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TestEvidence:
    """One test and what its family made of it."""

    test: StatisticalTest
    significance: Significance
    q_value: float
    family_size: int

    @property
    def statistic(self) -> float:
        """The signed statistic; 0 for Fisher's test, which has none."""
        return self.significance.statistic or 0.0


@dataclass(frozen=True, slots=True)
class Pending(Generic[R]):
    test: StatisticalTest
    significance: Significance
    finish: Callable[[TestEvidence], R | None]
    """Builds the finding from its evidence, or declines (wrong direction, too small)."""


def discover(pending: Sequence[Pending[R]], alpha: float = ALPHA) -> list[R]:
    q_values = benjamini_hochberg([item.significance.p_value for item in pending])
    found = [
        item.finish(TestEvidence(item.test, item.significance, q, len(pending)))
        for item, q in zip(pending, q_values, strict=True)
        if q < alpha
    ]
    return [finding for finding in found if finding is not None]
