"""Similarity of a query to each learning's own evidence tasks (`ranking.py`).

With embeddings, the cosine of the query's to each evidence task's (rows of the
tenant's task matrix, `index.TenantIndex.task_vectors`), computed once per query
for every task; without, the cosine of binary term vectors (`text.cosine`).

A slotted learning is compared by its evidence tasks as they were, not by its
templates filled from the query: a filled template is the query itself whenever
it fits, so it would match at 1 and carry "put {object} in the laundry basket",
learned from a shirt and jeans, to a novel. Its raw tasks carry the values it
held for, so it reaches the tasks whose values are near them in meaning.
"""

from typing import Any

from server.learning.index import Entry, TenantIndex
from server.learning.ranking import TaskMatch
from server.learning.text import cosine, terms


class PerTask:
    """The nearest evidence task of each learning to one query. Reads the index
    as it is when made: use it before the next await."""

    def __init__(self, index: TenantIndex, query: str, vector: Any) -> None:
        self._index = index
        self._query = query
        self._terms = terms(query)
        embedded = vector is not None and index.task_vectors is not None
        self._sims = index.task_vectors.similarities(vector).tolist() if embedded else None

    def __call__(self, entry: Entry) -> TaskMatch | None:
        best: TaskMatch | None = None
        for task in entry.tasks:
            sim = self._similarity(task)
            if sim is not None and (best is None or sim > best.similarity):
                best = TaskMatch(sim, task)
        return best

    def _similarity(self, task: str) -> float | None:
        if self._sims is None:
            return cosine(self._terms, terms(task))
        row = self._index.task_rows.get(task)
        return None if row is None else max(0.0, self._sims[row])
