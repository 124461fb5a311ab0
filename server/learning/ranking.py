"""Ranking of learnings for a task.

    score = relevance × confidence × agent_weight

- relevance: cosine of the binary term vectors of the query task and the learning's
  task cluster (`text.cosine`); 1 when no task is given. Lexical for now.
- confidence: the Wilson lower bound stored with the learning (`confidence.py`).
- agent_weight: 1 for the asked agent type (or when none is asked), else
  `cross_agent_weight`, so agents learn from each other but prefer their own kind.

A learning scoring 0 is left out. Ties break on higher confidence, then lower id.
"""

from dataclasses import dataclass

from schemas import Learning, ScoredLearning
from server.learning.text import cosine, terms


@dataclass(frozen=True, slots=True)
class RankQuery:
    task: str | None
    agent_type: str | None
    cross_agent_weight: float


def rank(
    query: RankQuery, candidates: list[tuple[Learning, frozenset[str]]]
) -> list[ScoredLearning]:
    task_terms = terms(query.task) if query.task else None
    scored = [_score(query, task_terms, learning, cluster) for learning, cluster in candidates]
    kept = [s for s in scored if s.score > 0]
    kept.sort(key=lambda s: (-s.score, -s.confidence, s.id))
    return kept


def _score(
    query: RankQuery, task_terms: frozenset[str] | None, learning: Learning, cluster: frozenset[str]
) -> ScoredLearning:
    relevance = 1.0 if task_terms is None else cosine(task_terms, cluster)
    same_agent = query.agent_type is None or query.agent_type == learning.agent_type
    weight = 1.0 if same_agent else query.cross_agent_weight
    score = relevance * learning.confidence * weight
    return ScoredLearning(**learning.__dict__, relevance=relevance, score=score)
