"""Ranking of learnings for a task.

    relevance = α·similarity + (1 − α)·lexical
    score     = relevance^γ × confidence × recency × agent_weight × effect_weight

- similarity: cosine of the query task's embedding (all-MiniLM-L6-v2) to the
  nearest of the learning's own evidence tasks (`similarity.py`); where none of its
  tasks has an embedding, to the nearest of its task clusters. Per task, not per
  cluster: every learning of a cluster would otherwise share one similarity, and
  support would decide between the learning about this very task and its
  cluster-mates. Without the `ml` extra, the cosine of binary term vectors
  (`text.cosine`) stands in for the embedding's.
- lexical: BM25 (Robertson & Zaragoza, 2009) of the query against the learning's
  tasks, actions and error, divided by the best BM25 among the candidates: the
  "relative score fusion" of hybrid search (Weaviate, 2023), which keeps exact
  terms (an error name, a tool) counting where embeddings blur them.
- confidence: the Wilson lower bound of the claim on decayed counts (`claims.py`).
- recency: 2^(−(now − last_seen)/h), h the recency half-life (`window.recency`).
- agent_weight: 1 for the asked agent type, for best practices held by several
  agent types, or when none is asked; else `cross_agent_weight`.
- effect_weight: 1, less once applying the learning was measured to hurt
  (`effects.effect_weight`).

A learning with no task cluster (WORKFLOW: its text is shell commands, not a
task) has nothing to compare the query's embedding with, so its relevance is its
lexical score alone.

γ (`relevance_power`, 3) makes how well a learning fits this task count for
more than how much evidence it has: confidence is bounded by 1, so a learning
whose nearest task is the query itself (relevance 1) with a single success
(L(1, 1) = 0.21) outranks one whose nearest task has relevance under
0.21^(1/γ) = 0.59, whatever its support. Tasks of one template differing in one
object ("Put the shirt where it belongs…", "…the toothbrush…") have MiniLM
cosines near 0.5; with γ = 1 the shirt's learning at 4 successes (0.51 × 0.52)
outranked the toothbrush's own at one (0.21 × 1), tests/test_learnings_per_task.py.

Candidates whose relevance is under `min_relevance` are left out. Ties break on higher
confidence, then lower id.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from server.core.window import recency
from server.learning.index import Entry

Similarity = Callable[[int], float]
"""A cluster's similarity to the query."""


@dataclass(frozen=True, slots=True)
class TaskMatch:
    similarity: float
    task: str


TaskSimilarity = Callable[[Entry], TaskMatch | None]
"""A learning's nearest evidence task to the query, if it has one to compare."""


@dataclass(frozen=True, slots=True)
class RankParams:
    alpha: float
    cross_agent_weight: float
    recency_half_life_s: float
    min_relevance: float
    relevance_power: float = 1.0


@dataclass(frozen=True, slots=True)
class Parts:
    similarity: float
    lexical: float
    relevance: float
    recency: float
    agent_weight: float
    score: float
    matched_cluster: int | None
    matched_task: str | None = None


@dataclass(frozen=True, slots=True)
class Ranked:
    entry: Entry
    parts: Parts


def rank(
    entries: list[Entry],
    similarity: Similarity,
    lexical: Mapping[int, float],
    agent_type: str | None,
    params: RankParams,
    now: float,
    per_task: TaskSimilarity | None = None,
) -> list[Ranked]:
    """Score `entries` for one query. `similarity` gives a cluster's cosine to the
    query, `per_task` a learning's nearest evidence task; `lexical` maps learning
    ids to raw BM25 scores."""
    top_bm25 = max(lexical.values(), default=0.0)
    ranked = []
    for entry in entries:
        cluster, sim = _nearest(entry, similarity)
        match = per_task(entry) if per_task is not None else None
        if match is not None:
            sim = match.similarity
        lex = lexical.get(entry.id, 0.0) / top_bm25 if top_bm25 > 0 else 0.0
        related = entry.clusters or match is not None
        relevance = params.alpha * sim + (1.0 - params.alpha) * lex if related else lex
        if relevance >= params.min_relevance:
            task = match.task if match is not None else None
            parts = _parts(entry, sim, lex, relevance, cluster, agent_type, params, now, task)
            ranked.append(Ranked(entry, parts))
    ranked.sort(key=lambda r: (-r.parts.score, -r.entry.confidence, r.entry.id))
    return ranked


def _nearest(entry: Entry, similarity: Similarity) -> tuple[int | None, float]:
    best: tuple[int | None, float] = (None, 0.0)
    for c in entry.clusters:
        sim = similarity(c)
        if sim > best[1]:
            best = (c, sim)
    return best


def _parts(
    entry: Entry,
    sim: float,
    lex: float,
    relevance: float,
    cluster: int | None,
    agent_type: str | None,
    params: RankParams,
    now: float,
    task: str | None = None,
) -> Parts:
    fresh = recency(entry.last_seen, now, params.recency_half_life_s)
    weight = agent_weight(entry, agent_type, params.cross_agent_weight)
    score = relevance**params.relevance_power * entry.confidence * fresh * weight * entry.effect
    return Parts(sim, lex, relevance, fresh, weight, score, cluster, task)


def agent_weight(entry: Entry, agent_type: str | None, cross_agent_weight: float) -> float:
    if agent_type is None or entry.agent_type in (agent_type, "*"):
        return 1.0
    return cross_agent_weight


def unranked(entry: Entry, agent_type: str | None, params: RankParams, now: float) -> Ranked:
    """A learning listed without a task: relevance 1, so confidence × recency × weight."""
    return Ranked(entry, _parts(entry, 0.0, 0.0, 1.0, None, agent_type, params, now))
