"""Which learnings a query needs to score: the threshold algorithm (Fagin, Lotem &
Naor, 2003) over each near cluster's learnings, highest confidence × recency first
(`index.TenantIndex.by_cluster`).

A learning reached through cluster c, with no lexical match, scores by cluster

    score = (α·sim(e))^γ·confidence·recency·weight,  with sim(e) ≥ sim(c), weight ≤ 1

so while scanning c, every learning not yet read scores at most
(α·sim(c))^γ·(confidence·recency)(next), and every one read at least
(α·sim(c))^γ·confidence·recency·weight (`base` gives the factor). A scan stops when that bound falls under
the `need`-th best lower bound found so far (not at it: a tie may still rank
ahead on confidence or id); clusters come in falling similarity, so once
the factor is under it no later cluster can add anything. What is left out
cannot reach the top `need` by its clusters: its best cluster among those scanned either read it
or stopped at a bound no higher than `need` learnings already reach. Learnings
that match lexically are scored anyway, and so are those of the evidence tasks
nearest the query (`LearningService`): ranking compares the query with each
learning's own tasks, which can put a learning above or below its cluster.

Before this, a query scored every learning of its 64 nearest clusters: 40,000 of
them at 128,000 learnings over 210 clusters.
"""

import heapq
import math
from collections.abc import Callable, Sequence

from server.core.window import recency
from server.learning.index import Entry, TenantIndex

Keep = Callable[[Entry], bool]
"""The query's filters (type, confidence floor, since)."""
Weight = Callable[[Entry], float]
"""A learning's agent weight for the query, in [0, 1]."""


def threshold_candidates(
    index: TenantIndex,
    nearest: Sequence[tuple[int, float]],
    need: int,
    base: Callable[[float], float],
    now: float,
    keep: Keep,
    weight: Weight,
) -> set[int]:
    """Ids of learnings, from `nearest` ((cluster, similarity), most similar first),
    that include the `need` best by score. `base` maps a similarity to α·similarity,
    or to 0 where that is under the relevance floor."""
    best: list[float] = []
    chosen: set[int] = set()
    shift = now / index.half_life_s
    for cluster, similarity in nearest:
        factor = base(similarity)
        if factor <= 0 or _full(best, need, factor):
            break
        for negated, learning_id in index.by_cluster.get(cluster, ()):
            bound = factor * math.pow(2.0, -negated - shift)
            if _full(best, need, bound):
                break
            entry = index.entries[learning_id]
            if learning_id not in chosen and keep(entry):
                chosen.add(learning_id)
                fresh = recency(entry.last_seen, now, index.half_life_s)
                _offer(best, need, factor * entry.confidence * fresh * weight(entry))
    return chosen


def _offer(best: list[float], need: int, lower: float) -> None:
    if len(best) < need:
        heapq.heappush(best, lower)
    elif lower > best[0]:
        heapq.heapreplace(best, lower)


def _full(best: list[float], need: int, bound: float) -> bool:
    """Whether `need` lower bounds are in and `bound` cannot reach them: strictly
    under, since a tie may still win on confidence or id (`ranking.rank`)."""
    return len(best) >= need and bound < best[0]
