"""Similarity of a query to each learning's own evidence tasks (`ranking.py`).

With embeddings, the cosine of the query's to each evidence task's (rows of the
tenant's task matrix, `index.TenantIndex.task_vectors`), computed once per query
for every task; without, the cosine of binary term vectors (`text.cosine`).

A slotted learning is compared by its evidence tasks as they were and, where
the query fills one of its task templates whole, by its share of that template's
successes (`Miner.template_shares`). A filled template is the query itself, so
it says nothing by itself; what says the slot holds is that the template's tasks
succeeded with these actions whatever the value: "cook {object} in the oven"
holds all of "roast the {object}, cooking a meal" (share 1) and so reaches a
new ingredient, where "put {object} in the laundry basket", learned from a shirt
and jeans under "Put the {object} where it belongs", shares that template with
the bookshelf of a novel (share 1/2) and is not carried to the novel at 1.
"""

from typing import Any

from server.learning.index import Entry, TenantIndex
from server.learning.ranking import TaskMatch
from server.learning.slots import fills_whole
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
        for template, share in zip(entry.templates, entry.template_shares, strict=False):
            if (best is None or share > best.similarity) and fills_whole(template, self._query):
                best = TaskMatch(share, template)
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
