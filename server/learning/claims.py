"""Learnings stated from patterns: the six learning types.

Every claim's confidence is built on the Wilson lower bound L(k, n)
(`confidence.py`) of decayed counts (`window.py`), so evidence outside the window
counts for nothing and older evidence for less. A claim is made once it has
`min_support` supporting interactions inside the window and the majority agrees;
it stays ACTIVE while its decayed support is at least `retire_support` and it
still qualifies (SUCCESS_PATTERN and FAILURE_PATTERN: while the majority of its
windowed outcomes still agrees, so a lucky single success retires at its first
failure), and is RETIRED otherwise; RETIRED too once applying it was measured to
hurt (`effects.py`).

- SUCCESS_PATTERN: L(k̃, ñ) of the sequence's successes, backed off to how the
  same actions did for other agent types in the cluster, then in the tenant's
  other clusters, while its own evidence is under `prior_outcomes`
  (`confidence.backed_off`). With `min_support` 1, a single success is stated at
  once, LOW, so an agent can try it. A slotted sequence (`slots.py`) claims it only
  once it succeeded with two different fillings.
- FAILURE_PATTERN: L(n − k, n), of a whole sequence, or of one step that failed in
  the cluster (a "don't" naming the action and its arguments).
- ERROR_RECOVERY: L(k, n) of the interactions that recovered with these actions.
- TASK_STRATEGY: L(k, n) of the cluster's best sequence, ranked by L.
- OPTIMIZATION: L(k, n) × Φ(z), with z Welch's statistic (Welch, 1947) of the
  sequence's mean completion time (or iterations) against its peers' pooled mean:

      z = (μ_peers − μ) / sqrt(s²/k + s²_peers/k_peers),  gain = 1 − μ / μ_peers

  and s floored at 5% of the mean, so identical timings do not make z infinite.
- BEST_PRACTICE: L(Σk, Σn) pooled over the sequence's SUCCESS_PATTERNs at HIGH or
  above, once they span `best_practice_breadth` task clusters or agent types.
"""

import dataclasses
import math
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field

import orjson

from schemas import ConfidenceLevel, LearningType
from schemas.learnings import LearningStatus
from server.core.stats import backed_off, level_floor, wilson_lower_bound
from server.core.window import DAY, Window
from server.learning.effects import Lift, effect_weight
from server.learning.patterns import Evidence, Pattern
from server.learning.signature import render, render_step

EXAMPLES_MAX = 8
SPREAD_FLOOR = 0.05
GAIN_MIN_SUCCESSES = 3
"""Successes a sequence needs before its timings are compared: Welch's statistic
needs a spread, and one or two timings have none worth the name."""
PLAN_FAILURES_MIN = 2
"""Failures a whole sequence needs before it is a don't: a plan that failed once
may have failed anywhere in it (a step's own failure names it, `step`)."""
FILLINGS_MIN = 2
"""Different fillings a slotted sequence must succeed with before it is stated."""

Parents = Callable[[], list[tuple[float, float]]]
"""The coarser (k, n) a claim backs off to, read only when needed."""


@dataclass(frozen=True, slots=True)
class ClaimRules:
    window: Window
    min_support: int = 1
    retire_support: float = 1.0
    prior_outcomes: float = 3.0
    min_gain: float = 0.2
    best_practice_breadth: int = 3


@dataclass(frozen=True, slots=True)
class GainDraft:
    metric: str
    value: float
    achieved: float
    baseline: float


@dataclass(frozen=True, slots=True)
class LearningDraft:
    """A learning as the miner states it, ready for the store and the index."""

    id: int
    new: bool
    tenant: str
    type: LearningType
    key: str
    status: LearningStatus
    agent_type: str
    statement: str
    task_example: str
    actions: tuple[str, ...]
    clusters: tuple[int, ...]
    agent_types: int
    evidence: tuple[int, ...]
    support: float
    successes: float
    confidence: float
    avg_completion_time: float | None
    first_seen: float
    last_seen: float
    document: str
    """The text lexical search reads; only a new learning's is written (an
    indexed document never changes), so a restatement carries none."""
    trigger: tuple[str, str] | None = None
    gain: GainDraft | None = None
    tasks: tuple[str, ...] = ()
    """Its latest evidence tasks, for ranking."""
    templates: tuple[str, ...] = ()
    """A slotted learning's evidence tasks with the slots marked, for filling."""
    template_shares: tuple[float, ...] = ()
    """Its share of each template's successes (`Miner.template_shares`)."""
    effect: Lift | None = None
    effect_weight: float = 1.0
    """Rank factor of a measured harm (`effects.effect_weight`)."""

    @property
    def avoid(self) -> bool:
        return self.type is LearningType.FAILURE_PATTERN

    @property
    def success_rate(self) -> float:
        return self.successes / self.support if self.support > 0 else 0.0


@dataclass(slots=True)
class Ledger:
    """Learning ids by (type, tenant, key); the miner assigns them so the index and
    the store agree without a round trip. The tenant is part of the name: two
    tenants that learn the same actions hold two learnings."""

    ids: dict[tuple[LearningType, str, str], int] = field(default_factory=dict)
    last_id: int = 0
    names: dict[int, tuple[LearningType, str, str]] = field(default_factory=dict)
    """Learning id → its (type, tenant, key)."""

    def load(self, ids: dict[tuple[LearningType, str, str], int], last_id: int) -> None:
        self.ids = dict(ids)
        self.names = {i: name for name, i in ids.items()}
        self.last_id = last_id

    def get(self, kind: LearningType, tenant: str, key: str) -> int | None:
        return self.ids.get((kind, tenant, key))

    def id_for(self, kind: LearningType, tenant: str, key: str) -> tuple[int, bool]:
        found = self.ids.get((kind, tenant, key))
        if found is not None:
            return found, False
        self.last_id += 1
        self.ids[(kind, tenant, key)] = self.last_id
        self.names[self.last_id] = (kind, tenant, key)
        return self.last_id, True


Examples = Callable[[int], str]
"""A cluster's example task, by cluster id."""
Effects = Callable[[str, int, tuple[int, ...]], Lift | None]
"""A learning's measured effect, by (tenant, id, clusters)."""


def _unmeasured(tenant: str, learning_id: int, clusters: tuple[int, ...]) -> Lift | None:
    return None


@dataclass(frozen=True, slots=True)
class Claimer:
    rules: ClaimRules
    ledger: Ledger
    example: Examples
    effects: Effects = _unmeasured

    def _days(self) -> int:
        return max(1, round(self.rules.window.span_s / DAY))

    def _status(
        self, ev: Evidence, qualifies: bool = True, measured: Lift | None = None
    ) -> LearningStatus:
        """Active while it qualifies, has support and has not been found to hurt."""
        hurts = measured is not None and measured.hurts
        alive = qualifies and ev.n >= self.rules.retire_support and not hurts
        return LearningStatus.ACTIVE if alive else LearningStatus.RETIRED

    def _holds(self, hits: int, count: int) -> bool:
        return hits >= self.rules.min_support and 2 * hits > count

    # -- SUCCESS_PATTERN, FAILURE_PATTERN ------------------------------------

    def sequence(
        self, p: Pattern, ev: Evidence, parents: Parents | None = None
    ) -> list[LearningDraft]:
        if self._holds(ev.wins, ev.count):
            p.claims.add(LearningType.SUCCESS_PATTERN)
        if ev.losses >= PLAN_FAILURES_MIN and self._holds(ev.losses, ev.count):
            p.claims.add(LearningType.FAILURE_PATTERN)
        return [self._sequence_draft(p, ev, kind, parents) for kind in sorted(p.claims)]

    def slotted(
        self, p: Pattern, ev: Evidence, shares: tuple[float, ...] = ()
    ) -> list[LearningDraft]:
        """A slotted sequence claims success once it held for FILLINGS_MIN fillings
        of one template; `shares` are its share of each of its templates' successes.
        Only the templates it generalised in are kept to fill and match by."""
        kept = p.generalised(FILLINGS_MIN)
        if kept and self._holds(ev.wins, ev.count):
            p.claims.add(LearningType.SUCCESS_PATTERN)
        if LearningType.SUCCESS_PATTERN not in p.claims or not kept:
            return []
        draft = self._sequence_draft(p, ev, LearningType.SUCCESS_PATTERN)
        return [_generalised(draft, p, kept, shares)]

    def step(self, p: Pattern, ev: Evidence) -> list[LearningDraft]:
        """A step that mostly fails in its cluster: a "don't"."""
        if self._holds(ev.losses, ev.count):
            p.claims.add(LearningType.FAILURE_PATTERN)
        if LearningType.FAILURE_PATTERN not in p.claims:
            return []
        latest = p.templates or p.tasks
        example = latest[-1] if latest else self.example(p.cluster_id)
        statement = (
            f'{p.agent_type} agents, tasks like "{example[:120]}": don\'t {render(p.actions)}; '
            f"it failed {ev.losses} of {ev.count} times in the last {self._days()} days."
        )
        confidence = wilson_lower_bound(ev.n - ev.k, ev.n)
        kind, agrees = LearningType.FAILURE_PATTERN, 2 * ev.losses > ev.count
        return [self._draft(p, ev, kind, statement, confidence, example, (p.cluster_id,), agrees)]

    def slotted_step(self, p: Pattern, ev: Evidence) -> list[LearningDraft]:
        """A slotted step that failed with FILLINGS_MIN values of one template: a
        don't for the templates it failed in so, matched at the share of its uses
        that failed."""
        kept = p.generalised(FILLINGS_MIN)
        if not kept:
            return []
        consistency = ev.losses / ev.count if ev.count else 0.0
        shares = tuple(consistency for _ in p.templates)
        return [_generalised(d, p, kept, shares) for d in self.step(p, ev)]

    def _sequence_draft(
        self, p: Pattern, ev: Evidence, kind: LearningType, parents: Parents | None = None
    ) -> LearningDraft:
        wins = kind is LearningType.SUCCESS_PATTERN
        latest = p.templates or p.tasks
        example = latest[-1] if latest else self.example(p.cluster_id)
        verb = f"succeeded {ev.wins}" if wins else f"failed {ev.losses}"
        advice = "" if wins else "; avoid it or change it"
        statement = (
            f'{p.agent_type} agents, tasks like "{example[:120]}": {render(p.actions)} '
            f"{verb} of {ev.count} times in the last {self._days()} days{advice}."
        )
        if wins:
            thin = parents is not None and ev.n < self.rules.prior_outcomes
            coarser = parents() if parents is not None and thin else []
            k, n = backed_off(ev.k, ev.n, coarser, self.rules.prior_outcomes)
            confidence = wilson_lower_bound(min(k, n), n)
        else:
            confidence = wilson_lower_bound(ev.n - ev.k, ev.n)
        agrees = 2 * (ev.wins if wins else ev.losses) > ev.count
        return self._draft(p, ev, kind, statement, confidence, example, (p.cluster_id,), agrees)

    def _draft(
        self,
        p: Pattern,
        ev: Evidence,
        kind: LearningType,
        statement: str,
        confidence: float,
        example: str,
        clusters: tuple[int, ...],
        qualifies: bool = True,
        gain: GainDraft | None = None,
        key: str | None = None,
    ) -> LearningDraft:
        key = key or p.key
        learning_id, new = self.ledger.id_for(kind, p.tenant, key)
        wins = kind is not LearningType.FAILURE_PATTERN
        measured = self.effects(p.tenant, learning_id, clusters)
        return LearningDraft(
            id=learning_id,
            new=new,
            tenant=p.tenant,
            type=kind,
            key=key,
            status=self._status(ev, qualifies, measured),
            agent_type=p.agent_type,
            statement=statement,
            task_example=example,
            actions=p.actions,
            clusters=clusters,
            agent_types=1,
            evidence=tuple(p.wins if wins else p.losses),
            support=ev.n,
            successes=ev.k,
            confidence=confidence,
            avg_completion_time=ev.mean_time,
            first_seen=p.first_seen,
            last_seen=p.last_seen,
            document=(
                document(self.example, clusters, p.actions, p.trigger, p.tasks) if new else ""
            ),
            trigger=p.trigger,
            gain=gain,
            tasks=tuple(p.tasks),
            templates=tuple(p.templates),
            effect=measured,
            effect_weight=effect_weight(measured, self.rules.prior_outcomes),
        )

    # -- ERROR_RECOVERY --------------------------------------------------------

    def recovery(self, p: Pattern, ev: Evidence) -> list[LearningDraft]:
        if self._holds(ev.wins, ev.count):
            p.claims.add(LearningType.ERROR_RECOVERY)
        if LearningType.ERROR_RECOVERY not in p.claims or p.trigger is None:
            return []
        action, error = p.trigger
        statement = (
            f"When {render_step(action)} fails with {error}, doing {render(p.actions)} instead "
            "led to success "
            f"{ev.wins} of {ev.count} times ({p.agent_type} agents, last {self._days()} days)."
        )
        clusters = tuple(sorted(p.clusters))
        confidence = wilson_lower_bound(ev.k, ev.n)
        example = self.example(p.cluster_id)
        kind = LearningType.ERROR_RECOVERY
        return [self._draft(p, ev, kind, statement, confidence, example, clusters)]

    # -- TASK_STRATEGY -----------------------------------------------------------

    def strategy(self, group: Sequence[tuple[Pattern, Evidence]]) -> list[LearningDraft]:
        """The best-supported sequence of one agent type in one cluster, if it holds.
        The key is the group's, so the learning follows the best sequence as it changes."""
        tried = [(p, ev) for p, ev in group if ev.count >= self.rules.min_support]
        ranked = sorted(tried, key=lambda pe: (-wilson_lower_bound(pe[1].k, pe[1].n), pe[0].key))
        if not ranked:
            return []
        best, ev = ranked[0]
        qualifies = self._holds(ev.wins, ev.count)
        key = group_key(best)
        if not qualifies and self.ledger.get(LearningType.TASK_STRATEGY, best.tenant, key) is None:
            return []
        return [self._strategy_draft(best, ev, ranked[1:], key, qualifies)]

    def _strategy_draft(
        self,
        best: Pattern,
        ev: Evidence,
        others: Sequence[tuple[Pattern, Evidence]],
        key: str,
        qualifies: bool,
    ) -> LearningDraft:
        example = self.example(best.cluster_id)
        runner_up = (
            f"; next best {render(others[0][0].actions)} at {others[0][1].success_rate:.0%}"
            if others
            else ""
        )
        statement = (
            f'For tasks like "{example[:120]}", {best.agent_type} agents do best with '
            f"{render(best.actions)}: {ev.wins} of {ev.count} succeeded in the last "
            f"{self._days()} days ({len(others) + 1} sequences tried{runner_up})."
        )
        confidence = wilson_lower_bound(ev.k, ev.n)
        kind, clusters = LearningType.TASK_STRATEGY, (best.cluster_id,)
        return self._draft(
            best, ev, kind, statement, confidence, example, clusters, qualifies, key=key
        )

    # -- OPTIMIZATION ------------------------------------------------------------

    def optimizations(
        self,
        group: Sequence[tuple[Pattern, Evidence]],
        only: Container[tuple[str, str]] | None = None,
    ) -> list[LearningDraft]:
        """Each sequence that beats its peers in the same cluster and agent type;
        with `only`, just those of its (tenant, key)s, the rest measured as peers."""
        least = max(self.rules.min_support, GAIN_MIN_SUCCESSES)
        done = [(p, ev) for p, ev in group if ev.wins >= least and ev.k > 0]
        if len(done) < 2:
            return []
        # One pooled total, each sequence's peers as total minus itself: linear in
        # the group, where pooling the peers of each would be quadratic.
        everyone = pool([ev for _, ev in done])
        drafts = []
        for p, ev in done:
            if only is not None and (p.tenant, p.key) not in only:
                continue
            draft = self._optimization(p, ev, without(everyone, ev))
            if draft is not None:
                drafts.append(draft)
        return drafts

    def _optimization(self, p: Pattern, ev: Evidence, others: Evidence) -> LearningDraft | None:
        gain, z = best_gain(ev, others)
        qualifies = gain.value >= self.rules.min_gain
        if qualifies:
            p.claims.add(LearningType.OPTIMIZATION)
        if LearningType.OPTIMIZATION not in p.claims:
            return None
        unit = "s" if gain.metric == "completion_time" else " iterations"
        example = self.example(p.cluster_id)
        statement = (
            f'{p.agent_type} agents, tasks like "{example[:120]}": {render(p.actions)} '
            f"takes {gain.achieved:.3g}{unit} against {gain.baseline:.3g}{unit} for the "
            f"other sequences, {gain.value:.0%} less ({ev.wins} successes, last {self._days()} days)."
        )
        confidence = wilson_lower_bound(ev.k, ev.n) * phi(z)
        kind = LearningType.OPTIMIZATION
        return self._draft(
            p, ev, kind, statement, confidence, example, (p.cluster_id,), qualifies, gain
        )

    # -- BEST_PRACTICE -------------------------------------------------------------

    def best_practice(self, group: Sequence[tuple[Pattern, Evidence]]) -> list[LearningDraft]:
        """One sequence, SUCCESS_PATTERN at HIGH or above in enough clusters or agent types."""
        high = level_floor(ConfidenceLevel.HIGH)
        members = [
            (p, ev)
            for p, ev in group
            if LearningType.SUCCESS_PATTERN in p.claims and wilson_lower_bound(ev.k, ev.n) >= high
        ]
        clusters = {p.cluster_id for p, _ in members}
        agents = {p.agent_type for p, _ in members}
        qualifies = max(len(clusters), len(agents)) >= self.rules.best_practice_breadth
        key = orjson.dumps(group[0][0].actions).decode() if group else ""
        tenant = group[0][0].tenant if group else ""
        if not members or (
            not qualifies and self.ledger.get(LearningType.BEST_PRACTICE, tenant, key) is None
        ):
            return []
        return [self._best_practice_draft(members, key, qualifies, clusters, agents)]

    def _best_practice_draft(
        self,
        members: Sequence[tuple[Pattern, Evidence]],
        key: str,
        qualifies: bool,
        clusters: set[int],
        agents: set[str],
    ) -> LearningDraft:
        pooled = pool([ev for _, ev in members])
        lead = max(members, key=lambda pe: pe[1].n)[0]
        example = self.example(lead.cluster_id)
        statement = (
            f"{render(lead.actions)} works across {len(clusters)} task clusters and "
            f"{len(agents)} agent types: {pooled.wins} of {pooled.count} succeeded in the "
            f'last {self._days()} days (e.g. "{example[:120]}").'
        )
        learning_id, new = self.ledger.id_for(LearningType.BEST_PRACTICE, lead.tenant, key)
        ordered = tuple(sorted(clusters))
        return LearningDraft(
            id=learning_id,
            new=new,
            tenant=lead.tenant,
            type=LearningType.BEST_PRACTICE,
            key=key,
            status=self._status(pooled, qualifies),
            agent_type=lead.agent_type if len(agents) == 1 else "*",
            statement=statement,
            task_example=example,
            actions=lead.actions,
            clusters=ordered,
            agent_types=len(agents),
            evidence=tuple(i for p, _ in members for i in p.wins)[-EXAMPLES_MAX * 4 :],
            support=pooled.n,
            successes=pooled.k,
            confidence=wilson_lower_bound(pooled.k, pooled.n),
            avg_completion_time=pooled.mean_time,
            first_seen=min(p.first_seen for p, _ in members),
            last_seen=max(p.last_seen for p, _ in members),
            document=document(self.example, ordered, lead.actions, None),
        )


def _generalised(
    draft: LearningDraft, p: Pattern, kept: Sequence[str], shares: Sequence[float]
) -> LearningDraft:
    """A slotted draft across its clusters, with only the templates in `kept`."""
    share = dict(zip(p.templates, shares, strict=False))
    return dataclasses.replace(
        draft,
        clusters=tuple(sorted(p.clusters)) or draft.clusters,
        templates=tuple(kept),
        template_shares=tuple(share.get(t, 0.0) for t in kept),
    )


def group_key(p: Pattern) -> str:
    """The (cluster, agent type) a sequence pattern belongs to, as a key."""
    return f"{p.cluster_id}|{p.agent_type}"


def pool(evidence: Sequence[Evidence]) -> Evidence:
    n = k = t = t2 = i = i2 = 0.0
    count = wins = 0
    for ev in evidence:
        n += ev.n
        k += ev.k
        t += ev.sum_t
        t2 += ev.sum_t2
        i += ev.sum_i
        i2 += ev.sum_i2
        count += ev.count
        wins += ev.wins
    return Evidence(n, k, t, t2, i, i2, count, wins)


def without(total: Evidence, part: Evidence) -> Evidence:
    """`total` with `part` taken out. A difference within rounding of nothing is
    nothing: a residue of 1e-17 would otherwise pass for a peer's weight."""

    def minus(a: float, b: float) -> float:
        left = a - b
        return left if left > 1e-9 * a else 0.0

    return Evidence(
        minus(total.n, part.n),
        minus(total.k, part.k),
        minus(total.sum_t, part.sum_t),
        minus(total.sum_t2, part.sum_t2),
        minus(total.sum_i, part.sum_i),
        minus(total.sum_i2, part.sum_i2),
        total.count - part.count,
        total.wins - part.wins,
    )


def phi(z: float) -> float:
    """Standard normal CDF, Φ(z) = ½(1 + erf(z/√2))."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def best_gain(ev: Evidence, others: Evidence) -> tuple[GainDraft, float]:
    """The larger of the time and iteration gains against the pooled peers, with z."""
    time = _gain(
        "completion_time", (ev.k, ev.sum_t, ev.sum_t2), (others.k, others.sum_t, others.sum_t2)
    )
    iters = _gain(
        "iterations", (ev.k, ev.sum_i, ev.sum_i2), (others.k, others.sum_i, others.sum_i2)
    )
    return max(time, iters, key=lambda gz: gz[0].value)


Moments = tuple[float, float, float]
"""(weight, Σx, Σx²) of one metric over successful attempts."""


def _gain(metric: str, mine: Moments, peers: Moments) -> tuple[GainDraft, float]:
    mean, var = _mean_var(mine)
    peer_mean, peer_var = _mean_var(peers)
    if peer_mean <= 0:
        return GainDraft(metric, 0.0, mean, peer_mean), 0.0
    spread = math.sqrt(var / mine[0] + peer_var / peers[0])
    z = (peer_mean - mean) / spread if spread > 0 else 0.0
    return GainDraft(metric, 1.0 - mean / peer_mean, mean, peer_mean), z


def _mean_var(m: Moments) -> tuple[float, float]:
    weight, total, squares = m
    if weight <= 0:
        return 0.0, 0.0
    mean = total / weight
    var = max(0.0, squares / weight - mean * mean)
    return mean, max(var, (SPREAD_FLOOR * mean) ** 2)


def document(
    example: Examples,
    clusters: Sequence[int],
    actions: Sequence[str],
    trigger: tuple[str, str] | None,
    evidence_tasks: Sequence[str] = (),
) -> str:
    """The stable text lexical search reads: its own evidence tasks (else its
    clusters' examples), actions and the error, if any. The learning's own tasks
    carry the words that tell tasks of one template apart."""
    tasks = " ".join(evidence_tasks) or " ".join(example(c) for c in clusters[:EXAMPLES_MAX])
    rendered = [render_step(a) for a in actions]
    words = " ".join(r.replace("_", " ") for r in rendered)
    error = " ".join(render_step(t) for t in trigger[:1]) + f" {trigger[1]}" if trigger else ""
    return f"{tasks} {words} {' '.join(rendered)} {error}".strip()
