"""Similarity of a query to each learning's own evidence tasks (`ranking.py`).

Where tasks share a template, the words that tell them apart must weigh more
than the shared ones: "grill the red potato" and "take the red potato" have a
MiniLM cosine near 0.9, yet want different actions. So each task's similarity
has a lexical factor, the TF-IDF cosine of its terms to the query's (Salton &
Buckley, 1988), with the smoothed IDF of the tenant's distinct evidence tasks:

    idf(w) = ln(1 + N / df(w))      (df(w) = ½ for a term no task holds)
    lex(q, t) = Σ_{w ∈ q ∩ t} idf(w)² / (‖q‖·‖t‖)

so a template's shared words, held by every task, count ln 2 each, and a rare
differing word counts many times that. With embeddings (the cosine of the query's
to each evidence task's, rows of `index.TenantIndex.task_vectors`, computed once
per query for every task):

    o = |q ∩ t| / min(|q|, |t|)                 (how much of a template they share)
    similarity = cos(q, t) · (1 − λ·o + λ·o·lex(q, t)),   λ = DISTINCT_WEIGHT

so the more two tasks share a template, the more their differing words decide:
meaning still carries a new word to its nearest neighbour (newspaper to magazine,
not to shampoo), at a discount, while a task that differs in its rare word falls
well below one that shares it; a paraphrase, which shares few words, keeps most
of its cosine. Without embeddings, lex(q, t) alone.

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

import math
from typing import Any

from server.core.text import terms
from server.learning.index import Entry, TenantIndex
from server.learning.ranking import TaskMatch
from server.learning.slots import fills_whole

DISTINCT_WEIGHT = 0.5
"""λ: how much of a task's similarity rides on its distinctive words."""


class PerTask:
    """The nearest evidence task of each learning to one query. Reads the index
    as it is when made: use it before the next await."""

    def __init__(self, index: TenantIndex, query: str, vector: Any) -> None:
        self._index = index
        self._query = query
        self._terms = terms(query)
        self._total = len(index.by_task)
        self._weights = {w: self._idf(w) for w in self._terms}
        self._norm = math.sqrt(sum(v * v for v in self._weights.values()))
        embedded = vector is not None and index.task_vectors is not None
        self._sims = index.task_vectors.similarities(vector).tolist() if embedded else None
        self._memo: dict[str, float | None] = {}

    def _idf(self, word: str) -> float:
        df = self._index.task_frequencies.get(word, 0) or 0.5
        return math.log(1.0 + max(self._total, 1) / df)

    def _terms_of(self, task: str) -> frozenset[str]:
        found = self._index.task_terms.get(task)
        return found if found is not None else terms(task)

    def lexical(self, task: str) -> float:
        """lex(q, t): the TF-IDF cosine of the task's terms to the query's."""
        words = self._terms_of(task)
        if not words or self._norm == 0:
            return 0.0
        shared = sum(self._weights[w] ** 2 for w in words & self._terms)
        norm = math.sqrt(sum(self._idf(w) ** 2 for w in words))
        return shared / (self._norm * norm)

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
        """Memoised: a query's candidates share a few hundred tasks between them."""
        if task not in self._memo:
            self._memo[task] = self._task_similarity(task)
        return self._memo[task]

    def _task_similarity(self, task: str) -> float | None:
        if self._sims is None:
            return self.lexical(task)
        row = self._index.task_rows.get(task)
        if row is None:
            return None
        return max(0.0, float(self._sims[row])) * self._distinct(task)

    def _distinct(self, task: str) -> float:
        """1 − λ·o + λ·o·lex(q, t)."""
        words = self._terms_of(task)
        if not words or not self._terms:
            return 1.0
        shared = len(words & self._terms) / min(len(words), len(self._terms))
        weight = DISTINCT_WEIGHT * shared
        return 1.0 - weight + weight * self.lexical(task)
