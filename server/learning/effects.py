"""Feedback: what following a learning did, measured against not following it.

An interaction may name the learnings its agent was offered and those it
applied. For a learning L:

- applied: the interactions that applied L, with their successes (k₁ of n₁);
- compared: similar attempts that did not apply it: those offered L that did not
  apply it, and those of L's task cluster offered nothing (k₂ of n₂).

Its effect is the difference of the two success rates with a 95% interval,
Newcombe's hybrid score interval (Newcombe, 1998, method 10), built from the
Wilson interval (l, u) of each rate:

    lift = p₁ − p₂
    low  = lift − sqrt((p₁ − l₁)² + (u₂ − p₂)²)
    high = lift + sqrt((u₁ − p₁)² + (p₂ − l₂)²)

A learning hurts when its whole interval is under zero (high < 0): it retires.
Before that, a measured harm costs it rank: its score is multiplied by

    effect_weight = 1 + min(0, lift) · n₁ / (n₁ + m)

with m = `prior_outcomes`, so a harm seen once moves it little, and one seen
often halves its rank at a lift of −0.5. A measured help does not raise the
score above what its confidence earns (the candidate scan's bounds rely on a
weight of at most 1, `candidates.py`); it shows in `effect`.

The tenant's lift compares the interactions offered learnings with those whose
learnings were held out (`learning_holdout_fraction`): a randomised control, so
the difference is what Kaizen's learnings did, with the same interval.
"""

import math
from dataclasses import dataclass, field
from typing import Any

from server.core.stats import Z_95
from server.learning.reliability import reliability

HURT_MIN_APPLIED = 3
"""Applications before a learning can be found to hurt: fewer never exclude zero
in practice, and one unlucky try must not retire what worked for others."""


@dataclass(slots=True)
class Tally:
    n: int = 0
    k: int = 0

    def add(self, success: bool) -> None:
        self.n += 1
        self.k += int(success)

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else 0.0


@dataclass(slots=True)
class Comparison:
    """Outcomes with a treatment (applied) and without it (compared)."""

    applied: Tally = field(default_factory=Tally)
    compared: Tally = field(default_factory=Tally)

    def to_state(self) -> list[int]:
        return [self.applied.n, self.applied.k, self.compared.n, self.compared.k]

    @classmethod
    def from_state(cls, state: list[Any]) -> "Comparison":
        return cls(Tally(int(state[0]), int(state[1])), Tally(int(state[2]), int(state[3])))


@dataclass(frozen=True, slots=True)
class Lift:
    applied: Tally
    compared: Tally
    lift: float
    low: float
    high: float

    @property
    def hurts(self) -> bool:
        return self.applied.n >= HURT_MIN_APPLIED and self.high < 0


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials (Wilson, 1927); (0, 1)
    with no trials."""
    if n <= 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - margin), min(1.0, centre + margin)


def lift(applied: Tally, compared: Tally) -> Lift:
    """p₁ − p₂ with Newcombe's hybrid score interval."""
    p1, p2 = applied.rate, compared.rate
    l1, u1 = wilson_interval(applied.k, applied.n)
    l2, u2 = wilson_interval(compared.k, compared.n)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Lift(applied, compared, diff, low, high)


def effect_weight(measured: Lift | None, m: float) -> float:
    """1 + min(0, lift) · n₁/(n₁ + m): in (0, 1], 1 until a harm is measured."""
    if measured is None or measured.applied.n == 0:
        return 1.0
    n = measured.applied.n
    return max(0.0, 1.0 + min(0.0, measured.lift) * n / (n + m))


Subject = str
"""What a tally is of, within a tenant: "l:<learning id>", "c:<cluster id>" (the
cluster's attempts offered nothing), "s:<source>" (`reliability.py`) or "t" (the
tenant's hold-out)."""


@dataclass(slots=True)
class Feedback:
    """Every tenant's comparisons, fed by the interactions' feedback fields."""

    learnings: dict[tuple[str, int], Comparison] = field(default_factory=dict)
    baselines: dict[tuple[str, int], Tally] = field(default_factory=dict)
    tenants: dict[str, Comparison] = field(default_factory=dict)
    sources: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    """(tenant, source) → [n, k]: how its learnings did when others applied them."""
    changed: set[tuple[str, Subject]] = field(default_factory=set)
    _heard: set[str] = field(default_factory=set)
    """Tenants that have sent feedback (or had tallies saved before a restart)."""

    def record(self, tenant: str, cluster_id: int | None, outcome: "Outcome") -> None:
        """Count one interaction's outcome for what it applied, was offered and
        not applied, or (offered nothing) its cluster; and for the tenant's
        hold-out. `outcome` names only the tenant's own learnings."""
        for learning_id in outcome.applied:
            self._learning(tenant, learning_id).applied.add(outcome.success)
        for learning_id in outcome.offered - outcome.applied:
            self._learning(tenant, learning_id).compared.add(outcome.success)
        if outcome.offered or outcome.held_out:
            self._hear(tenant)
        if not outcome.offered and cluster_id is not None:
            self.baselines.setdefault((tenant, cluster_id), Tally()).add(outcome.success)
            if tenant in self._heard:
                self.changed.add((tenant, f"c:{cluster_id}"))
        if outcome.held_out or outcome.offered:
            arm = self.tenants.setdefault(tenant, Comparison())
            (arm.compared if outcome.held_out else arm.applied).add(outcome.success)
            self.changed.add((tenant, "t"))
        for source, share in outcome.credits.items():
            tally = self.sources.setdefault((tenant, source), [0.0, 0.0])
            tally[0] += share
            tally[1] += share * outcome.success
            self.changed.add((tenant, f"s:{source}"))

    def reliability(self, tenant: str, source: str, m: float) -> float:
        """The source's reliability (`reliability.reliability`)."""
        n, k = self.sources.get((tenant, source), (0.0, 0.0))
        return reliability(k, n, m)

    def _hear(self, tenant: str) -> None:
        """The tenant's first feedback: from now on its cluster baselines are saved
        with each fold (all of them now). Before, they are counted but not saved,
        which spares a tenant that sends no feedback a write per cluster per fold;
        a restart before its first feedback starts its baselines afresh."""
        if tenant not in self._heard:
            self._heard.add(tenant)
            self.changed.update((t, f"c:{c}") for t, c in self.baselines if t == tenant)

    def _learning(self, tenant: str, learning_id: int) -> Comparison:
        self.changed.add((tenant, f"l:{learning_id}"))
        return self.learnings.setdefault((tenant, learning_id), Comparison())

    def of(self, tenant: str, learning_id: int, clusters: tuple[int, ...]) -> Lift | None:
        """The learning's measured effect, once it was applied."""
        found = self.learnings.get((tenant, learning_id))
        if found is None or found.applied.n == 0:
            return None
        compared = Tally(found.compared.n, found.compared.k)
        for cluster_id in clusters[:1]:
            base = self.baselines.get((tenant, cluster_id), Tally())
            compared = Tally(compared.n + base.n, compared.k + base.k)
        return lift(found.applied, compared)

    def take_changed(self) -> list[tuple[str, Subject, list[Any]]]:
        """(tenant, subject, state) of each tally changed since the last call."""
        rows = [(t, s, self._state(t, s)) for t, s in sorted(self.changed)]
        self.changed.clear()
        return rows

    def _state(self, tenant: str, subject: Subject) -> list[Any]:
        kind, _, name = subject.partition(":")
        if kind == "s":
            return list(self.sources[(tenant, name)])
        if kind == "l":
            return self.learnings[(tenant, int(name))].to_state()
        if kind == "c":
            base = self.baselines[(tenant, int(name))]
            return [base.n, base.k]
        return self.tenants[tenant].to_state()

    def load(self, tenant: str, subject: Subject, state: list[Any]) -> None:
        self._heard.add(tenant)
        kind, _, name = subject.partition(":")
        if kind == "s":
            self.sources[(tenant, name)] = [float(state[0]), float(state[1])]
        elif kind == "l":
            self.learnings[(tenant, int(name))] = Comparison.from_state(state)
        elif kind == "c":
            self.baselines[(tenant, int(name))] = Tally(int(state[0]), int(state[1]))
        else:
            self.tenants[tenant] = Comparison.from_state(state)

    def clear(self) -> None:
        self.learnings.clear()
        self.baselines.clear()
        self.tenants.clear()
        self.sources.clear()
        self.changed.clear()
        self._heard.clear()


@dataclass(frozen=True, slots=True)
class Outcome:
    success: bool
    offered: frozenset[int]
    """Offered learnings, applied ones included."""
    applied: frozenset[int]
    held_out: bool
    credits: dict[str, float] = field(default_factory=dict)
    """Source → its share of the applied learnings' successes, for reliability."""
