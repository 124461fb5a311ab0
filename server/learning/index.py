"""The in-memory index `GET /learnings` reads: per tenant, the task clusters (their
terms and, with the `ml` extra, their embeddings) and the compact record of each
active learning. The extractor applies each committed fold to it, so queries never
see an uncommitted learning and never wait for SQL to find candidates."""

import bisect
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas import LearningType
from schemas.learnings import LearningStatus
from server.core.text import terms
from server.learning.claims import LearningDraft
from server.learning.clusters import Cluster


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    type: LearningType
    agent_type: str
    confidence: float
    last_seen: float
    clusters: tuple[int, ...]
    tasks: tuple[str, ...] = ()
    """Its latest evidence tasks: ranking compares the query with the nearest."""
    templates: tuple[str, ...] = ()
    """A slotted learning's tasks with the slots marked."""
    effect: float = 1.0
    """Rank factor of a measured harm, in [0, 1] (`effects.effect_weight`)."""
    template_shares: tuple[float, ...] = ()
    """Its share of each template's successes, aligned with `templates`."""


def standing(confidence: float, last_seen: float, half_life_s: float) -> float:
    """log2(confidence × 2^(last_seen/h)): ordering learnings by it orders them by
    confidence × recency (`window.recency`) at any one time, since recency's ratio
    between two learnings does not change as time passes."""
    return math.log2(max(confidence, 1e-300)) + last_seen / half_life_s


@dataclass(slots=True)
class TenantIndex:
    half_life_s: float
    """The recency half-life `by_cluster` is ordered with."""
    clusters: dict[int, Cluster] = field(default_factory=dict)
    rows: dict[int, int] = field(default_factory=dict)
    """Cluster id → its row in `vectors`."""
    vectors: Any = None
    """A `vectors.VectorSet` once a cluster with an embedding arrives."""
    by_term: dict[str, set[int]] = field(default_factory=dict)
    entries: dict[int, Entry] = field(default_factory=dict)
    by_cluster: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    """Cluster id → its learnings as (−standing, id), ascending: highest confidence ×
    recency first, the order `candidates.threshold_candidates` reads them in."""
    task_rows: dict[str, int] = field(default_factory=dict)
    """Evidence task → its row in `task_vectors`."""
    task_texts: list[str] = field(default_factory=list)
    """Row → evidence task."""
    task_vectors: Any = None
    """A `vectors.VectorSet` of evidence tasks' embeddings, once one arrives."""
    by_task: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    """Evidence task → the active learnings it is evidence for, as (−standing, id)
    ascending like `by_cluster`: a query reads only the first few of each task."""
    task_terms: dict[str, frozenset[str]] = field(default_factory=dict)
    """Evidence task → its terms."""
    task_frequencies: Counter[str] = field(default_factory=Counter)
    """Term → how many distinct evidence tasks hold it (`similarity.py`'s IDF)."""

    def add_cluster(self, cluster: Cluster) -> None:
        self.clusters[cluster.id] = cluster
        for term in cluster.terms:
            self.by_term.setdefault(term, set()).add(cluster.id)
        if cluster.vector is not None:
            self._vector_set(len(cluster.vector)).add(cluster.id, cluster.vector)
            self.rows[cluster.id] = len(self.vectors) - 1

    def _vector_set(self, dimension: int) -> Any:
        if self.vectors is None:
            self.vectors = _new_vector_set(dimension)
        return self.vectors

    def add_task(self, task: str, vector: Any) -> None:
        """Index an evidence task's embedding (once; rows never move)."""
        if task in self.task_rows:
            return
        if self.task_vectors is None:
            self.task_vectors = _new_vector_set(len(vector))
        self.task_rows[task] = len(self.task_texts)
        self.task_vectors.add(len(self.task_texts), vector)
        self.task_texts.append(task)

    def put(self, entry: Entry) -> None:
        self.drop(entry.id)
        self.entries[entry.id] = entry
        place = (-self._standing(entry), entry.id)
        for c in entry.clusters:
            bisect.insort(self.by_cluster.setdefault(c, []), place)
        for task in entry.tasks:
            holders = self.by_task.get(task)
            if holders is None:
                holders = self.by_task[task] = []
                self.task_terms[task] = terms(task)
                self.task_frequencies.update(self.task_terms[task])
            bisect.insort(holders, place)

    def drop(self, learning_id: int) -> None:
        old = self.entries.pop(learning_id, None)
        if old is None:
            return
        place = (-self._standing(old), learning_id)
        for task in old.tasks:
            _remove(self.by_task.get(task, []), place)
        for c in old.clusters:
            _remove(self.by_cluster.get(c, []), place)

    def _standing(self, entry: Entry) -> float:
        return standing(entry.confidence, entry.last_seen, self.half_life_s)


class LearningIndex:
    def __init__(self, half_life_s: float) -> None:
        self._half_life_s = half_life_s
        self._tenants: dict[str, TenantIndex] = {}

    def clear(self) -> None:
        self._tenants.clear()

    def tenant(self, tenant: str) -> TenantIndex | None:
        return self._tenants.get(tenant)

    def _tenant(self, tenant: str) -> TenantIndex:
        found = self._tenants.get(tenant)
        if found is None:
            found = self._tenants[tenant] = TenantIndex(self._half_life_s)
        return found

    def add_clusters(self, clusters: Iterable[Cluster]) -> None:
        for cluster in clusters:
            self._tenant(cluster.tenant).add_cluster(cluster)

    def apply(self, drafts: Iterable[LearningDraft]) -> None:
        """Index active learnings; forget retired ones."""
        for d in drafts:
            index = self._tenant(d.tenant)
            if d.status is LearningStatus.RETIRED:
                index.drop(d.id)
            else:
                index.put(entry_of(d))

    def add_tasks(self, tasks: Iterable[tuple[str, str, Any]]) -> None:
        """Index (tenant, task, embedding) of evidence tasks."""
        for tenant, task, vector in tasks:
            self._tenant(tenant).add_task(task, vector)

    def unembedded(self) -> list[tuple[str, str]]:
        """(tenant, task) of the evidence tasks of active learnings that have no
        embedding indexed (after a restart)."""
        return [
            (tenant, task)
            for tenant, index in self._tenants.items()
            for task in index.by_task
            if task not in index.task_rows
        ]

    def retire(self, retired: Iterable[tuple[str, int]]) -> None:
        for tenant, learning_id in retired:
            self._tenant(tenant).drop(learning_id)

    def ids_of(self, tenant: str, kind: LearningType) -> list[int]:
        """The active learnings of one type of a tenant."""
        found = self._tenants.get(tenant)
        return [e.id for e in found.entries.values() if e.type is kind] if found else []

    def load(self, tenant: str, entry: Entry) -> None:
        self._tenant(tenant).put(entry)

    def size(self) -> tuple[int, int]:
        """(clusters, active learnings) across tenants."""
        clusters = sum(len(t.clusters) for t in self._tenants.values())
        return clusters, sum(len(t.entries) for t in self._tenants.values())


def _remove(ordered: list[tuple[float, int]], place: tuple[float, int]) -> None:
    at = bisect.bisect_left(ordered, place)
    if at < len(ordered) and ordered[at] == place:
        del ordered[at]


def entry_of(d: LearningDraft) -> Entry:
    return Entry(
        d.id,
        d.type,
        d.agent_type,
        d.confidence,
        d.last_seen,
        d.clusters,
        d.tasks,
        d.templates,
        d.effect_weight,
        d.template_shares,
    )


def _new_vector_set(dimension: int) -> Any:
    from server.core.vectors import VectorSet

    return VectorSet(dimension)
