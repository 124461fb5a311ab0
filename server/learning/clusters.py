"""Incremental task clustering with the leader algorithm (Hartigan, *Clustering
Algorithms*, 1975, ch. 3).

A task joins the existing cluster of its tenant whose leader is most similar to
it, if that similarity reaches the threshold; otherwise it leads a new cluster.
Leaders never move, so a placement never has to be revisited. Similarity is the
cosine of sentence embeddings (all-MiniLM-L6-v2, Reimers & Gurevych, 2019) when
the task has a vector, else the Jaccard index of the tasks' terms (`text.py`):
the fallback when the `ml` extra is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.core.text import jaccard, terms

if TYPE_CHECKING:
    from server.core.vectors import Vector, VectorSet

ASSIGNED_MAX = 200_000
"""Descriptions whose cluster is remembered; past this the memo starts afresh."""


@dataclass(slots=True)
class Cluster:
    id: int
    tenant: str
    terms: frozenset[str]
    example: str
    vector: Vector | None = None


class Clusterer:
    def __init__(self, *, jaccard_threshold: float, cosine_threshold: float) -> None:
        self.jaccard_threshold = jaccard_threshold
        self.cosine_threshold = cosine_threshold
        self.clusters: dict[int, Cluster] = {}
        self._terms: dict[tuple[str, str], set[int]] = {}
        self._empty: dict[str, int] = {}
        self._vectors: dict[str, VectorSet] = {}
        self._assigned: dict[tuple[str, str], int] = {}

    def knows(self, tenant: str, task: str) -> bool:
        """Whether `task` already has its cluster (so needs no embedding)."""
        return (tenant, task) in self._assigned

    def assign(self, tenant: str, task: str, vector: Vector | None) -> tuple[Cluster, bool]:
        """The task's cluster, and whether it is new. A description, once placed,
        keeps its cluster, which also spares re-reading descriptions agents repeat."""
        known = self._assigned.get((tenant, task))
        if known is not None:
            return self.clusters[known], False
        cluster, is_new = self._place(tenant, task, vector)
        if len(self._assigned) >= ASSIGNED_MAX:
            self._assigned.clear()
        self._assigned[(tenant, task)] = cluster.id
        return cluster, is_new

    def nearest(self, tenant: str, task: str, vector: Vector | None) -> Cluster | None:
        """The cluster `task` would join, without placing it (so no new cluster)."""
        known = self._assigned.get((tenant, task))
        if known is not None:
            return self.clusters[known]
        return self._nearest(tenant, terms(task), vector)

    def _place(self, tenant: str, task: str, vector: Vector | None) -> tuple[Cluster, bool]:
        task_terms = terms(task)
        best = self._nearest(tenant, task_terms, vector)
        if best is not None:
            return best, False
        cluster = Cluster(max(self.clusters, default=0) + 1, tenant, task_terms, task, vector)
        self.add(cluster)
        return cluster, True

    def _nearest(
        self, tenant: str, task_terms: frozenset[str], vector: Vector | None
    ) -> Cluster | None:
        if vector is not None:
            vectors = self._vectors.get(tenant)
            found = vectors.nearest(vector) if vectors is not None else None
            if found is not None and found[1] >= self.cosine_threshold:
                return self.clusters[found[0]]
            return None
        return self._nearest_by_terms(tenant, task_terms)

    def _nearest_by_terms(self, tenant: str, task_terms: frozenset[str]) -> Cluster | None:
        if not task_terms:
            empty = self._empty.get(tenant)
            return self.clusters[empty] if empty is not None else None
        candidates = set().union(*(self._terms.get((tenant, t), ()) for t in task_terms))
        scored = ((jaccard(task_terms, self.clusters[c].terms), -c) for c in candidates)
        best = max(scored, default=(0.0, 0))
        return self.clusters[-best[1]] if best[0] >= self.jaccard_threshold else None

    def add(self, cluster: Cluster) -> None:
        self.clusters[cluster.id] = cluster
        if not cluster.terms:
            self._empty.setdefault(cluster.tenant, cluster.id)
        for term in cluster.terms:
            self._terms.setdefault((cluster.tenant, term), set()).add(cluster.id)
        if cluster.vector is not None:
            self._vector_set(cluster.tenant, len(cluster.vector)).add(cluster.id, cluster.vector)

    def _vector_set(self, tenant: str, dimension: int) -> VectorSet:
        from server.core.vectors import VectorSet

        found = self._vectors.get(tenant)
        if found is None:
            found = self._vectors[tenant] = VectorSet(dimension)
        return found

    def clear(self) -> None:
        self.clusters.clear()
        self._terms.clear()
        self._empty.clear()
        self._vectors.clear()
        self._assigned.clear()
