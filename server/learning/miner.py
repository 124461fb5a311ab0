"""Incremental mining of success and failure patterns.

Tasks are grouped into clusters with the leader algorithm (Hartigan, *Clustering
Algorithms*, 1975, ch. 3): a task joins the existing cluster of its tenant whose
leader terms are most similar to its own, if that Jaccard similarity reaches the
threshold; otherwise it leads a new cluster. A *pattern* is one action signature
used by one agent type within one cluster; it counts attempts and successes.

A pattern yields a SUCCESS_PATTERN learning once it has `min_support` successes
and successes are the majority (k/n > 1/2), and a FAILURE_PATTERN learning once it
has `min_support` failures and failures are the majority. Once created, a learning
keeps being updated with the pattern's counts, so its confidence
(`confidence.wilson_lower_bound` of its claimed outcome) falls if the claim stops
holding. The miner does no I/O: the extractor feeds it committed batches and
persists its deltas.
"""

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from schemas import Interaction, LearningType
from server.learning.confidence import wilson_lower_bound
from server.learning.signature import action_signature, render
from server.learning.text import jaccard, terms

ASSIGNED_MAX = 200_000
"""Descriptions whose cluster is remembered; past this the memo starts afresh."""


class Committed(Protocol):
    """What the miner reads: interactions of one tenant with consecutive ids."""

    @property
    def tenant(self) -> str: ...
    @property
    def first_id(self) -> int: ...
    @property
    def items(self) -> Sequence[Interaction]: ...


@dataclass(slots=True)
class Cluster:
    id: int
    tenant: str
    terms: frozenset[str]
    example: str


PatternId = tuple[str, int, str, tuple[str, ...]]
"""(tenant, cluster id, agent type, signature)"""


@dataclass(slots=True)
class Pattern:
    tenant: str
    cluster_id: int
    agent_type: str
    signature: tuple[str, ...]
    attempts: int = 0
    successes: int = 0
    success_time: float = 0.0
    failure_time: float = 0.0
    success_evidence: deque[int] = field(default_factory=deque)
    failure_evidence: deque[int] = field(default_factory=deque)
    claims: set[LearningType] = field(default_factory=set)

    @property
    def key(self) -> str:
        """The pattern's name within its tenant, as stored. The signature is JSON:
        action types may contain any separator."""
        return f"{self.cluster_id}|{self.agent_type}|{orjson.dumps(self.signature).decode()}"

    @property
    def identity(self) -> PatternId:
        return (self.tenant, self.cluster_id, self.agent_type, self.signature)

    @property
    def failures(self) -> int:
        return self.attempts - self.successes


@dataclass(frozen=True, slots=True)
class LearningDraft:
    """A learning as the miner states it; the store gives it an id."""

    tenant: str
    type: LearningType
    pattern_key: str
    agent_type: str
    statement: str
    task_example: str
    actions: tuple[str, ...]
    evidence: tuple[int, ...]
    support: int
    successes: int
    success_rate: float
    confidence: float
    avg_completion_time: float | None
    terms: frozenset[str]


@dataclass(slots=True)
class FoldResult:
    clusters: list[Cluster]
    patterns: list[Pattern]
    learnings: list[LearningDraft]
    cursor: int


class Miner:
    def __init__(self, *, similarity: float, min_support: int, evidence_max: int) -> None:
        self.similarity = similarity
        self.min_support = min_support
        self.evidence_max = evidence_max
        self.cursor = 0
        self._clusters: dict[int, Cluster] = {}
        self._index: dict[tuple[str, str], set[int]] = {}
        self._empty: dict[str, int] = {}
        self._patterns: dict[PatternId, Pattern] = {}
        self._assigned: dict[tuple[str, str], int] = {}

    def restore(
        self, clusters: Iterable[Cluster], patterns: Iterable[Pattern], cursor: int
    ) -> None:
        """Start again from persisted state, forgetting anything not persisted."""
        self._clusters.clear()
        self._index.clear()
        self._empty.clear()
        self._patterns.clear()
        self._assigned.clear()
        for cluster in clusters:
            self._add_cluster(cluster)
        for pattern in patterns:
            self._patterns[pattern.identity] = pattern
        self.cursor = cursor

    def fold(self, batches: Iterable[Committed]) -> FoldResult:
        """Add committed interactions (in id order) and return what changed."""
        new_clusters: dict[int, Cluster] = {}
        touched: dict[PatternId, Pattern] = {}
        for batch in batches:
            for offset, item in enumerate(batch.items):
                if batch.first_id + offset <= self.cursor:
                    continue  # delivered twice (catch-up overlapping the live feed): count once
                self.cursor = batch.first_id + offset
                signature = action_signature(item.actions_taken)
                if not signature:
                    continue
                cluster, is_new = self._assign(batch.tenant, item.task_description)
                if is_new:
                    new_clusters[cluster.id] = cluster
                identity = (batch.tenant, cluster.id, item.agent_type, signature)
                pattern = self._count(identity, item, batch.first_id + offset)
                touched[identity] = pattern
        drafts = [d for p in touched.values() for d in self._drafts(p)]
        return FoldResult(list(new_clusters.values()), list(touched.values()), drafts, self.cursor)

    def _assign(self, tenant: str, task: str) -> tuple[Cluster, bool]:
        """The task's cluster. A description, once placed, keeps its cluster (which
        also spares re-tokenizing the descriptions agents repeat)."""
        known = self._assigned.get((tenant, task))
        if known is not None:
            return self._clusters[known], False
        cluster, is_new = self._place(tenant, task)
        if len(self._assigned) >= ASSIGNED_MAX:
            self._assigned.clear()
        self._assigned[(tenant, task)] = cluster.id
        return cluster, is_new

    def _place(self, tenant: str, task: str) -> tuple[Cluster, bool]:
        task_terms = terms(task)
        best = self._nearest(tenant, task_terms)
        if best is not None:
            return best, False
        cluster = Cluster(max(self._clusters, default=0) + 1, tenant, task_terms, task)
        self._add_cluster(cluster)
        return cluster, True

    def _nearest(self, tenant: str, task_terms: frozenset[str]) -> Cluster | None:
        if not task_terms:
            empty = self._empty.get(tenant)
            return self._clusters[empty] if empty is not None else None
        candidates = set().union(*(self._index.get((tenant, t), ()) for t in task_terms))
        scored = ((jaccard(task_terms, self._clusters[c].terms), -c) for c in candidates)
        best = max(scored, default=(0.0, 0))
        return self._clusters[-best[1]] if best[0] >= self.similarity else None

    def _add_cluster(self, cluster: Cluster) -> None:
        self._clusters[cluster.id] = cluster
        if not cluster.terms:
            self._empty[cluster.tenant] = cluster.id
        for term in cluster.terms:
            self._index.setdefault((cluster.tenant, term), set()).add(cluster.id)

    def _count(self, identity: PatternId, item: Interaction, interaction_id: int) -> Pattern:
        pattern = self._patterns.get(identity)
        if pattern is None:
            pattern = self._patterns[identity] = Pattern(*identity)
        pattern.attempts += 1
        if item.success:
            pattern.successes += 1
            pattern.success_time += item.completion_time
            _push(pattern.success_evidence, interaction_id, self.evidence_max)
        else:
            pattern.failure_time += item.completion_time
            _push(pattern.failure_evidence, interaction_id, self.evidence_max)
        return pattern

    def _drafts(self, pattern: Pattern) -> list[LearningDraft]:
        if pattern.successes >= self.min_support and 2 * pattern.successes > pattern.attempts:
            pattern.claims.add(LearningType.SUCCESS_PATTERN)
        if pattern.failures >= self.min_support and 2 * pattern.failures > pattern.attempts:
            pattern.claims.add(LearningType.FAILURE_PATTERN)
        cluster = self._clusters[pattern.cluster_id]
        return [draft(pattern, cluster, kind) for kind in sorted(pattern.claims)]


def _push(evidence: deque[int], interaction_id: int, cap: int) -> None:
    evidence.append(interaction_id)
    while len(evidence) > cap:
        evidence.popleft()


def draft(pattern: Pattern, cluster: Cluster, kind: LearningType) -> LearningDraft:
    """State `pattern` as a learning of type `kind` (SUCCESS_ or FAILURE_PATTERN)."""
    wins = kind is LearningType.SUCCESS_PATTERN
    hits = pattern.successes if wins else pattern.failures
    spent = pattern.success_time if wins else pattern.failure_time
    verb = "succeeded" if wins else "failed"
    advice = "" if wins else "; avoid it or change it"
    statement = (
        f'{pattern.agent_type} agents, tasks like "{cluster.example[:120]}": '
        f"{render(pattern.signature)} {verb} in {hits} of {pattern.attempts} attempts{advice}."
    )
    return LearningDraft(
        tenant=pattern.tenant,
        type=kind,
        pattern_key=pattern.key,
        agent_type=pattern.agent_type,
        statement=statement,
        task_example=cluster.example,
        actions=pattern.signature,
        evidence=tuple(pattern.success_evidence if wins else pattern.failure_evidence),
        support=pattern.attempts,
        successes=pattern.successes,
        success_rate=pattern.successes / pattern.attempts,
        confidence=wilson_lower_bound(hits, pattern.attempts),
        avg_completion_time=spent / hits if hits else None,
        terms=cluster.terms,
    )
