"""Incremental mining: committed interactions in, learnings and anomalies out.

Each fold reads only the interactions it is given. It places each task in its
cluster (`clusters.py`), counts the interaction into its sequence pattern and any
error recoveries it shows (`patterns.py`, `recoveries.py`), scores it against its
agent type's recent behaviour (`anomaly.py`), then restates the claims of what it
touched (`claims.py`): the touched patterns at once; their (cluster, agent type)
groups and their sequences across clusters, whose claims read every member, join
a queue of which each fold restates the oldest GROUPS_PER_FOLD. Under load spread
over every group (1,275 groups of ~100 sequences at 128k learnings) restating them
all in each fold made a fold cost the same however few interactions it held; now
a pattern's own claim is out one fold after its interaction, and a group's after
the queue ahead of it. `sweep` restates every claim at a later time,
which is how learnings age, lose confidence and retire without new evidence.
The miner does no I/O: the extractor feeds it and persists what it returns.
"""

import functools
import itertools
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from schemas import Interaction, LearningType
from server.learning.anomaly import BehaviourModel, Observation, Reason
from server.learning.claims import Claimer, ClaimRules, LearningDraft, Ledger, group_key, pool
from server.learning.clusters import Cluster, Clusterer
from server.learning.effects import Feedback, Outcome
from server.learning.patterns import CLUSTERS_MAX, Evidence, Pattern, PatternKind
from server.learning.recoveries import Errors, failed_steps, last_failed, recoveries, step_errors
from server.learning.reliability import shares, source_of, weighed, weight
from server.learning.signature import action_signature
from server.learning.slots import Slotted, slot
from server.learning.workflow_drafts import workflow_draft
from server.workflows.mining import WorkflowPattern

if TYPE_CHECKING:
    from server.core.vectors import Vector

Vectors = Mapping[str, Any]
"""Task description → its embedding (a numpy vector), for the descriptions the
miner did not know yet; empty without the `ml` extra."""


class Committed(Protocol):
    """What the miner reads: interactions of one tenant with consecutive ids."""

    @property
    def tenant(self) -> str: ...
    @property
    def first_id(self) -> int: ...
    @property
    def recorded_at(self) -> float: ...
    @property
    def items(self) -> Sequence[Interaction]: ...


@dataclass(frozen=True, slots=True)
class MinerParams:
    claims: ClaimRules
    jaccard_similarity: float = 0.5
    cosine_similarity: float = 0.6
    evidence_max: int = 20
    anomaly_threshold: float = 0.8
    familiarity: float = 3.0
    min_history: float = 20.0


@dataclass(frozen=True, slots=True)
class AnomalyDraft:
    id: int
    tenant: str
    agent_type: str
    interaction_id: int
    task_description: str
    score: float
    reasons: tuple[Reason, ...]
    at: float


@dataclass(slots=True)
class FoldResult:
    clusters: list[Cluster] = field(default_factory=list)
    patterns: list[tuple[str, str, str]] = field(default_factory=list)
    """(tenant, key, state as JSON) of each pattern counted, serialised on the
    miner's thread: the next fold changes the patterns while this one commits."""
    behaviours: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    learnings: list[LearningDraft] = field(default_factory=list)
    anomalies: list[AnomalyDraft] = field(default_factory=list)
    retired: list[tuple[str, int]] = field(default_factory=list)
    """(tenant, learning id) of learnings to retire that no draft restates: WORKFLOW
    learnings no longer among the tenant's, and group claims (TASK_STRATEGY,
    OPTIMIZATION, BEST_PRACTICE) whose sequences no longer qualify to be measured."""
    effects: list[tuple[str, str, list[Any]]] = field(default_factory=list)
    """(tenant, subject, tally) of the feedback tallies the fold changed."""
    cursor: int = 0
    folded: int = 0


@dataclass(slots=True)
class MiningState:
    """What the store persisted, for `Miner.restore`."""

    clusters: list[Cluster]
    patterns: list[Pattern]
    behaviours: list[tuple[str, str, dict[str, Any]]]
    learning_ids: dict[tuple[LearningType, str, str], int]
    last_learning_id: int
    last_anomaly_id: int
    cursor: int
    effects: list[tuple[str, str, list[Any]]] = field(default_factory=list)
    """(tenant, subject, tally) of the feedback tallies (`effects.Feedback`)."""


PARENTS_MAX = 32
"""Other patterns of the same actions a thin claim reads to back off to."""
GROUPS_PER_FOLD = 256
"""Queued (cluster, agent type) groups, and as many sequences, a fold restates."""

Key = tuple[str, str]
"""(tenant, key) of a pattern, a group or a sequence."""
RETIRED_MARK = -1
"""What `_stated` holds for a claim retired without a draft: CPython's hash()
never returns -1, so no fingerprint equals it."""


@dataclass(frozen=True, slots=True)
class _Seen:
    """One interaction being counted, where it was placed."""

    tenant: str
    cluster_id: int
    item: Interaction
    interaction_id: int
    at: float
    touched: "_Touched"


def credited(signature: tuple[str, ...], success: bool, errors: Errors) -> list[tuple[str, ...]]:
    """The sequences an interaction is evidence for: its whole sequence and, for
    a success with failed steps, the successful tail after the last failed step
    (A → wrong B → A → C credits A → C too)."""
    whole = [signature]
    failed = last_failed(errors) if success else None
    if failed is None:
        return whole
    tail = signature[failed + 1 :]
    return [*whole, tail] if _starts_over(signature[:failed], tail) else whole


def _starts_over(before: tuple[str, ...], tail: tuple[str, ...]) -> bool:
    """Whether the tail after a failure does the task over (it redoes a step from
    before the failure), and so is a plan of its own; a tail that does none of
    them is the recovery from that failure, which ERROR_RECOVERY states."""
    return bool(tail) and not set(before).isdisjoint(tail)


@dataclass(slots=True)
class _Touched:
    patterns: dict[Key, Pattern] = field(default_factory=dict)
    groups: dict[Key, set[Key] | None] = field(default_factory=dict)
    """Group → the sequences counted in it (None: restate all of its claims)."""
    sequences: set[Key] = field(default_factory=set)
    behaviours: set[Key] = field(default_factory=set)


class Miner:
    def __init__(self, params: MinerParams) -> None:
        self.params = params
        self.window = params.claims.window
        self.cursor = 0
        self.clusterer = Clusterer(
            jaccard_threshold=params.jaccard_similarity, cosine_threshold=params.cosine_similarity
        )
        self.ledger = Ledger()
        self.feedback = Feedback()
        self.claimer = Claimer(params.claims, self.ledger, self._example, self.feedback.of)
        self.patterns: dict[tuple[str, str], Pattern] = {}
        self._groups: dict[tuple[str, str], set[str]] = {}
        self._sequences: dict[tuple[str, str], set[str]] = {}
        self._cluster_agents: dict[tuple[str, int], set[str]] = {}
        self._templates: dict[tuple[str, str, str], set[str]] = {}
        self._step_agents: set[tuple[str, str]] = set()
        """(tenant, agent type) that have had a step fail: only their steps are counted."""
        """(tenant, agent type, task template) → the SLOT patterns stated under it."""
        self.behaviours: dict[tuple[str, str], BehaviourModel] = {}
        self.last_anomaly_id = 0
        self._stated: dict[int, int] = {}
        """Learning id → hash of what was last stated of it (`_changed`)."""
        self._queued_groups: dict[Key, set[Key] | None] = {}
        """Groups waiting to be restated, oldest first, with the sequences counted."""
        self._queued_sequences: dict[Key, None] = {}

    def _example(self, cluster_id: int) -> str:
        found = self.clusterer.clusters.get(cluster_id)
        return found.example if found else ""

    @property
    def queued(self) -> bool:
        """Whether group or sequence claims wait to be restated (an empty fold
        restates the next of them)."""
        return bool(self._queued_groups or self._queued_sequences)

    def knows(self, tenant: str, task: str) -> bool:
        return self.clusterer.knows(tenant, task)

    # -- state -------------------------------------------------------------------

    def restore(self, state: MiningState) -> None:
        """Start again from persisted state, forgetting anything not persisted."""
        self.clusterer.clear()
        self.patterns.clear()
        self._groups.clear()
        self._sequences.clear()
        self._cluster_agents.clear()
        self._templates.clear()
        self._step_agents.clear()
        self.behaviours.clear()
        self._stated.clear()
        self._queued_groups.clear()
        self._queued_sequences.clear()
        for cluster in state.clusters:
            self.clusterer.add(cluster)
        for pattern in state.patterns:
            self._index(pattern)
        for tenant, agent, model in state.behaviours:
            self.behaviours[(tenant, agent)] = self._behaviour_from(model)
        # what was queued before is lost with the process: restate every group
        self._queued_groups = dict.fromkeys(self._groups)
        self._queued_sequences = dict.fromkeys(self._sequences)
        self.ledger.load(state.learning_ids, state.last_learning_id)
        self.feedback.clear()
        for tenant, subject, tally in state.effects:
            self.feedback.load(tenant, subject, tally)
        self.last_anomaly_id = state.last_anomaly_id
        self.cursor = state.cursor

    def _behaviour_from(self, state: dict[str, Any]) -> BehaviourModel:
        p = self.params
        return BehaviourModel.from_state(
            state, self.window, familiarity=p.familiarity, min_history=p.min_history
        )

    def _index(self, p: Pattern) -> None:
        self.patterns[(p.tenant, p.key)] = p
        for template in p.templates:
            self._templates.setdefault((p.tenant, p.agent_type, template), set()).add(p.key)
        if p.kind in (PatternKind.STEP, PatternKind.SLOT_STEP):
            self._step_agents.add((p.tenant, p.agent_type))
        if p.kind is PatternKind.SEQUENCE:
            self._groups.setdefault((p.tenant, group_key(p)), set()).add(p.key)
            self._sequences.setdefault((p.tenant, _json(p.actions)), set()).add(p.key)
            self._cluster_agents.setdefault((p.tenant, p.cluster_id), set()).add(p.agent_type)

    # -- reading -----------------------------------------------------------------

    def cluster_profile(self, tenant: str, cluster_id: int, now: float) -> dict[str, Evidence]:
        """Each agent type's pooled evidence on the cluster's tasks, at `now`. Call
        on the miner's thread (`Extractor.inspect`)."""
        agents = sorted(self._cluster_agents.get((tenant, cluster_id), set()))
        return {agent: self._pooled(tenant, f"{cluster_id}|{agent}", now) for agent in agents}

    def history(
        self, tenant: str, task: str, vector: "Vector | None", now: float
    ) -> tuple[int | None, dict[str, Evidence]]:
        """The cluster nearest `task` and its `cluster_profile` at `now` (None and
        {} when the tenant has no cluster yet)."""
        cluster = self.clusterer.nearest(tenant, task, vector)
        if cluster is None:
            return None, {}
        return cluster.id, self.cluster_profile(tenant, cluster.id, now)

    def _pooled(self, tenant: str, group: str, now: float) -> Evidence:
        members = self._members(tenant, self._groups.get((tenant, group), set()), now)
        return pool([ev for _, ev in members])

    # -- folding -----------------------------------------------------------------

    def fold(self, batches: Iterable[Committed], vectors: Vectors, now: float) -> FoldResult:
        """Add committed interactions (in id order) and return what changed."""
        result, touched = FoldResult(), _Touched()
        for batch in batches:
            for offset, item in enumerate(batch.items):
                interaction_id = batch.first_id + offset
                if interaction_id <= self.cursor:
                    continue  # delivered twice (catch-up overlapping the live feed): count once
                self.cursor = interaction_id
                at = event_time(item, batch.recorded_at, now)
                self._take(batch.tenant, item, interaction_id, at, vectors, now, result, touched)
                result.folded += 1
        return self._finish(result, touched, now)

    def _take(
        self,
        tenant: str,
        item: Interaction,
        interaction_id: int,
        at: float,
        vectors: Vectors,
        now: float,
        result: FoldResult,
        touched: _Touched,
    ) -> None:
        signature = action_signature(item.actions_taken, item.volatile_fields)
        self._observe(tenant, item, signature, interaction_id, at, now, result, touched)
        if not signature:
            return
        task = item.task_description
        cluster, is_new = self.clusterer.assign(tenant, task, vectors.get(task))
        if is_new:
            result.clusters.append(cluster)
        errors = step_errors(signature, item.results)
        seen = _Seen(tenant, cluster.id, item, interaction_id, at, touched)
        self._feedback(seen)
        for sequence in credited(signature, item.success, errors):
            self._count_sequence(seen, sequence)
        self._count_steps(seen, signature, errors)
        for action, error, fix in recoveries(signature, errors):
            recovery = self._recovery(tenant, cluster.id, item.agent_type, (action, error), fix)
            if len(recovery.clusters) < CLUSTERS_MAX:
                recovery.clusters.add(cluster.id)
            self._count(recovery, seen)

    def _feedback(self, seen: "_Seen") -> None:
        """Count what the interaction says it was offered and applied (only the
        tenant's own learnings), and restate those learnings with their effect.
        A success that applied a learning adds its task to the learning's
        evidence tasks, so the phrasing that found it is found next time."""
        item, tenant = seen.item, seen.tenant
        offered = self._owned(tenant, [*item.offered_learnings, *item.applied_learnings])
        applied = self._owned(tenant, item.applied_learnings)
        credits = self._credits(tenant, applied, source_of(item.metadata))
        outcome = Outcome(item.success, offered, applied, item.learnings_held_out, credits)
        self.feedback.record(tenant, seen.cluster_id, outcome)
        for learning_id in sorted(offered):
            kind, _, key = self.ledger.names[learning_id]
            found = self.patterns.get((tenant, key))
            if found is not None:
                if item.success and learning_id in applied:
                    found.saw(item.task_description)
                seen.touched.patterns[(tenant, key)] = found
            elif kind is LearningType.TASK_STRATEGY:
                seen.touched.groups[(tenant, key)] = None

    def _credits(
        self, tenant: str, applied: frozenset[int], applier: str | None
    ) -> dict[str, float]:
        """Each source's share of the applied learnings' successes, summed."""
        credits: dict[str, float] = {}
        for learning_id in applied:
            found = self.patterns.get((tenant, self.ledger.names[learning_id][2]))
            for source, share in shares(found.sources if found else {}, applier).items():
                credits[source] = credits.get(source, 0.0) + share
        return credits

    def _reliability(self, p: Pattern) -> float:
        """The weight of p's successes by their sources' reliability."""
        if not p.sources:
            return 1.0
        m = self.params.claims.prior_outcomes
        reliable = {s: self.feedback.reliability(p.tenant, s, m) for s in p.sources}
        return weight(p.sources, reliable, p.unsourced)

    def _owned(self, tenant: str, ids: Iterable[int]) -> frozenset[int]:
        names = self.ledger.names
        return frozenset(i for i in ids if i in names and names[i][1] == tenant)

    def _count_sequence(self, seen: "_Seen", signature: tuple[str, ...]) -> None:
        """Count a credited sequence, and its slotted form if it has one."""
        tenant, item, touched = seen.tenant, seen.item, seen.touched
        sequence = self._sequence(tenant, seen.cluster_id, item.agent_type, signature)
        self._count(sequence, seen)
        counted = touched.groups.setdefault((tenant, group_key(sequence)), set())
        if counted is not None:
            counted.add((tenant, sequence.key))
        touched.sequences.add((tenant, _json(signature)))
        slotted = slot(signature, item.task_description)
        if slotted is not None:
            self._count_slotted(seen, slotted)

    def _count_slotted(self, seen: "_Seen", slotted: Slotted) -> None:
        """Count a slotted sequence, across clusters: the values that differ are
        what tells the tasks of one template apart, and tasks that differ in them
        land in clusters of their own. Its siblings under the same template are
        restated too, since their share of the template's successes moved."""
        tenant, agent = seen.tenant, seen.item.agent_type
        key = f"{PatternKind.SLOT.value}|{agent}|{_json(slotted.steps)}"
        pattern = self._pattern(
            PatternKind.SLOT, tenant, key, agent, slotted.steps, seen.cluster_id
        )
        if len(pattern.clusters) < CLUSTERS_MAX:
            pattern.clusters.add(seen.cluster_id)
        self._count(pattern, seen, template=slotted.template)
        if seen.item.success:
            pattern.filled(_json([slotted.template, *(v for _, v in slotted.filling)]))
        siblings = self._templates.setdefault((tenant, agent, slotted.template), set())
        siblings.add(key)
        for sibling in siblings:
            seen.touched.patterns[(tenant, sibling)] = self.patterns[(tenant, sibling)]

    def template_shares(self, p: Pattern, now: float) -> tuple[float, ...]:
        """For each of p's task templates, p's share of the windowed successes of
        the slotted sequences stated under it: 1 when every task of the template
        that succeeded did so with p's actions, 1/2 when another sequence took as
        many ("put {object} in the laundry basket" for a shirt and jeans, another
        place for a toothbrush, under "Put the {object} where it belongs")."""
        own = p.evidence(self.window, now).wins
        shares = []
        for template in p.templates:
            keys = self._templates.get((p.tenant, p.agent_type, template), {p.key})
            total = sum(self.patterns[(p.tenant, k)].evidence(self.window, now).wins for k in keys)
            shares.append(own / total if total else 0.0)
        return tuple(shares)

    def _count_steps(self, seen: "_Seen", signature: tuple[str, ...], errors: Errors) -> None:
        """Credit per step: a failed step opens a STEP pattern in its cluster, and
        each later use of that step there counts into it, failed or not. Its
        slotted form, where its values come from the task ("cook {object} in
        stove" under "roast the {object}"), opens a SLOT_STEP across clusters,
        so the don't reaches the template's other values."""
        failed = set(failed_steps(signature, errors))
        if not failed and (seen.tenant, seen.item.agent_type) not in self._step_agents:
            return  # nothing failed, and no step of this agent type ever did
        self._step_agents.add((seen.tenant, seen.item.agent_type))
        agent = seen.item.agent_type
        for step in dict.fromkeys(signature[: len(errors)]):
            ok = step not in failed
            key = f"{PatternKind.STEP.value}|{seen.cluster_id}|{agent}|{step}"
            self._count_step(seen, PatternKind.STEP, key, (step,), ok)
            slotted = slot((step,), seen.item.task_description)
            if slotted is not None:
                key = f"{PatternKind.SLOT_STEP.value}|{agent}|{slotted.steps[0]}"
                self._count_step(seen, PatternKind.SLOT_STEP, key, slotted.steps, ok, slotted)

    def _count_step(
        self,
        seen: "_Seen",
        kind: PatternKind,
        key: str,
        steps: tuple[str, ...],
        ok: bool,
        slotted: Slotted | None = None,
    ) -> None:
        found = self.patterns.get((seen.tenant, key))
        if found is None and not ok:
            agent = seen.item.agent_type
            found = self._pattern(kind, seen.tenant, key, agent, steps, seen.cluster_id)
        if found is None:
            return
        self._count(found, seen, success=ok, template=slotted.template if slotted else None)
        if slotted is not None:
            if len(found.clusters) < CLUSTERS_MAX:
                found.clusters.add(seen.cluster_id)
            if not ok:
                found.filled(_json([slotted.template, *(v for _, v in slotted.filling)]))

    def _count(
        self, p: Pattern, seen: "_Seen", *, success: bool | None = None, template: str | None = None
    ) -> None:
        item = seen.item
        ok = item.success if success is None else success
        p.count(
            self.window,
            at=seen.at,
            success=ok,
            time_s=item.completion_time,
            iterations=item.iterations,
        )
        p.remember(seen.interaction_id, ok, self.params.evidence_max)
        if ok:
            p.credit(source_of(item.metadata))
        p.saw(item.task_description, template)
        seen.touched.patterns[(p.tenant, p.key)] = p

    def _sequence(
        self, tenant: str, cluster_id: int, agent_type: str, steps: tuple[str, ...]
    ) -> Pattern:
        key = f"{PatternKind.SEQUENCE.value}|{cluster_id}|{agent_type}|{_json(steps)}"
        return self._pattern(PatternKind.SEQUENCE, tenant, key, agent_type, steps, cluster_id)

    def _pattern(
        self,
        kind: PatternKind,
        tenant: str,
        key: str,
        agent_type: str,
        steps: tuple[str, ...],
        cluster_id: int,
    ) -> Pattern:
        """The pattern under `key`, made if new."""
        found = self.patterns.get((tenant, key))
        if found is None:
            found = Pattern(kind, tenant, key, agent_type, steps, cluster_id)
            self._index(found)
        return found

    def _recovery(
        self,
        tenant: str,
        cluster_id: int,
        agent_type: str,
        trigger: tuple[str, str],
        fix: tuple[str, ...],
    ) -> Pattern:
        key = f"rec|{agent_type}|{_json([*trigger, *fix])}"
        found = self.patterns.get((tenant, key))
        if found is None:
            kind = PatternKind.RECOVERY
            found = Pattern(kind, tenant, key, agent_type, fix, cluster_id, trigger)
            self._index(found)
        return found

    # -- anomalies ---------------------------------------------------------------

    def _observe(
        self,
        tenant: str,
        item: Interaction,
        signature: tuple[str, ...],
        interaction_id: int,
        at: float,
        now: float,
        result: FoldResult,
        touched: _Touched,
    ) -> None:
        """Score the interaction against its agent type's behaviour so far, then
        add it, so behaviour that recurs becomes normal."""
        model = self._behaviour(tenant, item.agent_type)
        observation = Observation(signature, item.completion_time, item.errors_encountered, at)
        rarity = model.score(observation, now)
        model.add(observation)
        touched.behaviours.add((tenant, item.agent_type))
        if rarity.score >= self.params.anomaly_threshold:
            self.last_anomaly_id += 1
            result.anomalies.append(
                AnomalyDraft(
                    self.last_anomaly_id,
                    tenant,
                    item.agent_type,
                    interaction_id,
                    item.task_description,
                    rarity.score,
                    rarity.reasons,
                    at,
                )
            )

    def _behaviour(self, tenant: str, agent_type: str) -> BehaviourModel:
        found = self.behaviours.get((tenant, agent_type))
        if found is None:
            p = self.params
            found = BehaviourModel(
                self.window, familiarity=p.familiarity, min_history=p.min_history
            )
            self.behaviours[(tenant, agent_type)] = found
        return found

    # -- claims ------------------------------------------------------------------

    def _finish(
        self, result: FoldResult, touched: _Touched, now: float, *, sweeping: bool = False
    ) -> FoldResult:
        result.learnings = self._changed(self._claims(touched, now, sweeping, result.retired))
        result.patterns = [
            (p.tenant, p.key, _json(p.to_state())) for p in touched.patterns.values()
        ]
        result.behaviours = [
            (tenant, agent, self.behaviours[(tenant, agent)].to_state())
            for tenant, agent in sorted(touched.behaviours)
        ]
        result.effects = self.feedback.take_changed()
        result.cursor = self.cursor
        return result

    def _changed(self, drafts: list[LearningDraft]) -> list[LearningDraft]:
        """The drafts that say something new: a restatement that moved nothing a
        reader sees (confidence to 3 decimals, support to 0.1) is not rewritten.
        Decay (half-life 7 days) moves confidence by about 1e-5 a minute, so most
        of a sweep's restatements, and a group's unchanged TASK_STRATEGY, are
        dropped here."""
        changed = []
        for d in drafts:
            seen = hash(_fingerprint(d))
            if self._stated.get(d.id) != seen:
                self._stated[d.id] = seen
                changed.append(d)
        return changed

    def _claims(
        self, touched: _Touched, now: float, sweeping: bool, retired: list[tuple[str, int]]
    ) -> list[LearningDraft]:
        drafts: list[LearningDraft] = []
        for p in touched.patterns.values():
            ev = weighed(p.evidence(self.window, now), self._reliability(p))
            if p.kind is PatternKind.SEQUENCE:
                drafts += self.claimer.sequence(p, ev, functools.partial(self._parents, p, now))
            elif p.kind is PatternKind.SLOT:
                drafts += self.claimer.slotted(p, ev, self.template_shares(p, now))
            elif p.kind is PatternKind.STEP:
                drafts += self.claimer.step(p, ev)
            elif p.kind is PatternKind.SLOT_STEP:
                drafts += self.claimer.slotted_step(p, ev)
            else:
                drafts += self.claimer.recovery(p, ev)
        groups, sequences = self._due(touched, sweeping)
        for (tenant, key), counted in groups:
            group = self._members(tenant, self._groups.get((tenant, key), set()), now)
            stated = self.claimer.optimizations(group, counted)
            for d in stated:  # its pattern now holds the claim: save it with the fold
                touched.patterns[(d.tenant, d.key)] = self.patterns[(d.tenant, d.key)]
            strategy = self.claimer.strategy(group)
            if not strategy:
                self._retire(tenant, LearningType.TASK_STRATEGY, key, retired)
            self._retire_optimizations(group, counted, stated, touched, retired)
            drafts += strategy + stated
        for tenant, key in sequences:
            group = self._members(tenant, self._sequences.get((tenant, key), set()), now)
            practice = self.claimer.best_practice(group)
            if not practice:
                self._retire(tenant, LearningType.BEST_PRACTICE, key, retired)
            drafts += practice
        return drafts

    def _parents(self, p: Pattern, now: float) -> list[tuple[float, float]]:
        """How the same actions did elsewhere in the tenant: (k, n) for other agent
        types in p's cluster, then for other clusters (`confidence.backed_off`);
        read from at most PARENTS_MAX of them."""
        keys = sorted(self._sequences.get((p.tenant, _json(p.actions)), set()) - {p.key})
        here = [0.0, 0.0]
        elsewhere = [0.0, 0.0]
        for key in keys[:PARENTS_MAX]:
            other = self.patterns[(p.tenant, key)]
            ev = other.evidence(self.window, now)
            level = here if other.cluster_id == p.cluster_id else elsewhere
            level[0] += ev.k
            level[1] += ev.n
        return [(here[0], here[1]), (elsewhere[0], elsewhere[1])]

    def _retire_optimizations(
        self,
        group: list[tuple[Pattern, Evidence]],
        counted: set[Key] | None,
        stated: list[LearningDraft],
        touched: _Touched,
        retired: list[tuple[str, int]],
    ) -> None:
        """An OPTIMIZATION is restated while its sequence and a peer have successes
        in the window (`Claimer.optimizations`); one whose sequence or peers fell
        out retires here, and its pattern gives up the claim, so it can claim anew."""
        drafted = {d.key for d in stated}
        for p, _ in group:
            due = counted is None or (p.tenant, p.key) in counted
            if due and LearningType.OPTIMIZATION in p.claims and p.key not in drafted:
                p.claims.discard(LearningType.OPTIMIZATION)
                touched.patterns[(p.tenant, p.key)] = p
                self._retire(p.tenant, LearningType.OPTIMIZATION, p.key, retired)

    def _retire(
        self, tenant: str, kind: LearningType, key: str, retired: list[tuple[str, int]]
    ) -> None:
        """Retire the claim (kind, key) if it was stated and not retired since."""
        learning_id = self.ledger.get(kind, tenant, key)
        if learning_id is not None and self._stated.get(learning_id) != RETIRED_MARK:
            self._stated[learning_id] = RETIRED_MARK
            retired.append((tenant, learning_id))

    def _due(
        self, touched: _Touched, sweeping: bool
    ) -> tuple[list[tuple[Key, set[Key] | None]], list[Key]]:
        """The groups and sequences to restate now. A sweep restates its own, all
        claims of each (and takes them off the queue); a fold queues what it touched
        and takes the oldest GROUPS_PER_FOLD, stating optimizations only for the
        sequences counted since (the others' peers moved a little; sweeps restate
        them)."""
        if sweeping:
            for key in touched.groups:
                self._queued_groups.pop(key, None)
            for key in touched.sequences:
                self._queued_sequences.pop(key, None)
            return sorted(touched.groups.items()), sorted(touched.sequences)
        for key, counted in touched.groups.items():
            queued = self._queued_groups.setdefault(key, set())
            if queued is not None:
                queued.update(counted or ())
        for key in touched.sequences:
            self._queued_sequences[key] = None
        groups: list[tuple[Key, set[Key] | None]] = [
            (k, self._queued_groups.pop(k)) for k in _oldest(self._queued_groups)
        ]
        sequences = _oldest(self._queued_sequences)
        for key in sequences:
            del self._queued_sequences[key]
        return groups, sequences

    def _members(self, tenant: str, keys: set[str], now: float) -> list[tuple[Pattern, Evidence]]:
        members = [self.patterns[(tenant, k)] for k in sorted(keys)]
        return [(p, weighed(p.evidence(self.window, now), self._reliability(p))) for p in members]

    def workflows(
        self, tenant: str, patterns: Sequence[WorkflowPattern], active: Iterable[int]
    ) -> FoldResult:
        """State a tenant's learned workflows as WORKFLOW learnings and retire those
        of `active` (the ids stated before) that are no longer among them."""
        drafts = [workflow_draft(self.ledger, tenant, p) for p in patterns]
        kept = {d.id for d in drafts}
        retired = [(tenant, i) for i in sorted(set(active) - kept)]
        return FoldResult(learnings=drafts, retired=retired, cursor=self.cursor)

    def sweep(self, now: float, slices: Container[int] = (0,), parts: int = 1) -> FoldResult:
        """Restate claims at `now`: confidence decays with the age of its evidence,
        and claims whose evidence left the window retire. Everything is cut into
        `parts` slices by the hash of its key; this restates those in `slices`
        (by default, with one part, everything)."""

        def mine(key: tuple[str, str]) -> bool:
            return hash(key) % parts in slices

        touched = _Touched()
        for key, p in self.patterns.items():
            if p.claims and mine(key):
                touched.patterns[key] = p
        touched.groups = {key: None for key in self._groups if mine(key)}
        touched.sequences = {key for key in self._sequences if mine(key)}
        if 0 in slices:
            for model in self.behaviours.values():
                model.prune(now)
        result = self._finish(FoldResult(), touched, now, sweeping=True)
        result.behaviours = []
        return result


def _oldest(queue: Mapping[Key, Any]) -> list[Key]:
    return list(itertools.islice(queue, GROUPS_PER_FOLD))


def _fingerprint(d: LearningDraft) -> tuple[Any, ...]:
    return (
        d.status,
        d.statement,
        round(d.confidence, 3),
        round(d.support, 1),
        d.last_seen,
        d.clusters,
        d.evidence,
        d.document,
    )


def event_time(item: Interaction, recorded_at: float, now: float) -> float:
    """When the interaction happened: its own timestamp if it has one (naive means
    UTC), else when it was recorded; never later than `now`."""
    stamp = item.timestamp
    if stamp is None:
        return min(recorded_at, now)
    aware = stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
    return min(aware.timestamp(), now)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()
