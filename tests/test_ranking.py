"""The ranking of learnings for a task (`server.learning.ranking`): each factor of

relevance = α·similarity + (1 − α)·lexical   (lexical alone without a cluster)
score     = relevance × confidence × recency × agent_weight
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import LearningType
from server.learning.clusters import Cluster
from server.learning.index import Entry, TenantIndex
from server.learning.ranking import RankParams, rank, unranked
from server.services.learning import cluster_similarity

PARAMS = RankParams(alpha=0.8, cross_agent_weight=0.5, recency_half_life_s=100.0, min_relevance=0.3)
NOW = 1_000.0
OPEN = RankParams(alpha=0.8, cross_agent_weight=0.5, recency_half_life_s=100.0, min_relevance=0.0)
unit = st.floats(0.0, 1.0)


def entry(
    i: int, *, clusters: tuple[int, ...] = (1,), agent: str = "code", seen: float = NOW
) -> Entry:
    return Entry(i, LearningType.SUCCESS_PATTERN, agent, 0.8, seen, clusters)


@given(unit, unit)
def test_relevance_mixes_similarity_and_normalised_bm25(sim: float, lex: float) -> None:
    (found,) = rank([entry(1)], lambda _: sim, {1: lex, 2: 1.0}, None, OPEN, NOW)
    assert found.parts.relevance == pytest.approx(0.8 * sim + 0.2 * lex)
    assert found.parts.score == pytest.approx(found.parts.relevance * 0.8)


@given(unit)
def test_a_learning_without_a_cluster_is_relevant_by_its_lexical_score(lex: float) -> None:
    workflow = entry(1, clusters=())
    (found,) = rank([workflow], lambda _: 1.0, {1: lex, 2: 1.0}, None, OPEN, NOW)
    assert found.parts.relevance == pytest.approx(lex)
    assert found.parts.similarity == 0.0


def test_candidates_under_min_relevance_are_left_out() -> None:
    entries = [entry(1), entry(2, clusters=())]
    lexical = {2: 0.29, 3: 1.0}
    assert [r.entry.id for r in rank(entries, lambda _: 0.5, lexical, None, PARAMS, NOW)] == [1]


def test_recency_halves_per_half_life_and_other_agents_weigh_less() -> None:
    old = unranked(entry(1, seen=NOW - 100), None, PARAMS, NOW)
    assert old.parts.recency == pytest.approx(0.5)
    other = unranked(entry(1), "writer", PARAMS, NOW)
    assert other.parts.agent_weight == 0.5
    assert other.parts.score == pytest.approx(0.8 * 0.5)
    shared = unranked(entry(1, agent="*"), "writer", PARAMS, NOW)
    assert shared.parts.agent_weight == 1.0


def test_similarities_cover_clusters_added_after_the_query_was_embedded() -> None:
    """A fold may add clusters while a query awaits its embedding and its BM25
    search; the similarities are read after both, so they cover every cluster."""
    np = pytest.importorskip("numpy")
    index = TenantIndex()
    axes = np.eye(4, dtype=np.float32)
    index.add_cluster(Cluster(1, "t", frozenset({"a"}), "a", axes[0]))
    query = axes[2]
    for n in (2, 3):  # the fold lands between the embedding and the ranking
        index.add_cluster(Cluster(n, "t", frozenset({"b"}), "b", axes[n - 1]))
    similarity, nearest = cluster_similarity(index, query, "b")
    assert [similarity(c) for c in (1, 2, 3)] == [0.0, 0.0, 1.0]
    assert nearest[0] == 3
