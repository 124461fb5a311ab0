"""The ranking of learnings for a task (`server.learning.ranking`): each factor of

relevance = α·similarity + (1 − α)·lexical   (lexical alone without a cluster)
score     = relevance × confidence × recency × agent_weight
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import LearningType
from server.learning.candidates import threshold_candidates
from server.learning.clusters import Cluster
from server.learning.index import Entry, TenantIndex
from server.learning.ranking import RankParams, TaskMatch, agent_weight, rank, unranked
from server.learning.service import cluster_similarity
from server.learning.similarity import PerTask

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
    index = TenantIndex(100.0)
    axes = np.eye(4, dtype=np.float32)
    index.add_cluster(Cluster(1, "t", frozenset({"a"}), "a", axes[0]))
    query = axes[2]
    for n in (2, 3):  # the fold lands between the embedding and the ranking
        index.add_cluster(Cluster(n, "t", frozenset({"b"}), "b", axes[n - 1]))
    similarity, nearest = cluster_similarity(index, query, "b")
    assert [similarity(c) for c in (1, 2, 3)] == [0.0, 0.0, 1.0]
    assert nearest[0] == (3, 1.0)


_learning = st.tuples(
    st.sampled_from([0.2, 0.5, 0.7, 0.9]),  # confidence: ties on purpose
    st.floats(NOW - 400, NOW + 5),  # last seen, a little in the future too
    st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True),  # clusters
    st.sampled_from(["code", "test"]),
    st.sampled_from([LearningType.SUCCESS_PATTERN, LearningType.FAILURE_PATTERN]),
)


@given(
    st.lists(_learning, max_size=40),
    st.lists(unit, min_size=6, max_size=6),
    st.integers(1, 12),
    st.sampled_from([None, "code"]),
    st.sampled_from([None, LearningType.SUCCESS_PATTERN]),
)
def test_threshold_candidates_hold_the_same_top_as_scoring_every_learning(
    learnings: list[tuple[float, float, list[int], str, LearningType]],
    sims: list[float],
    need: int,
    agent: str | None,
    kind: LearningType | None,
) -> None:
    index = TenantIndex(PARAMS.recency_half_life_s)
    for i, (confidence, seen, clusters, owner, type_) in enumerate(learnings):
        index.put(Entry(i, type_, owner, confidence, seen, tuple(clusters)))
    nearest = sorted(enumerate(sims), key=lambda cs: -cs[1])

    def keep(e: Entry) -> bool:
        return kind is None or e.type is kind

    def base(sim: float) -> float:
        return PARAMS.alpha * sim if PARAMS.alpha * sim >= PARAMS.min_relevance else 0.0

    def weight(e: Entry) -> float:
        return agent_weight(e, agent, PARAMS.cross_agent_weight)

    chosen = threshold_candidates(index, nearest, need, base, NOW, keep, weight)
    everyone = [e for e in index.entries.values() if keep(e)]
    similarity = sims.__getitem__
    full = rank(everyone, similarity, {}, agent, PARAMS, NOW)[:need]
    found = rank([index.entries[i] for i in chosen], similarity, {}, agent, PARAMS, NOW)[:need]
    assert [r.parts.score for r in found] == pytest.approx([r.parts.score for r in full])


def test_index_orders_each_cluster_by_confidence_times_recency() -> None:
    index = TenantIndex(100.0)
    index.put(Entry(1, LearningType.SUCCESS_PATTERN, "code", 0.9, NOW - 200, (7,)))
    index.put(Entry(2, LearningType.SUCCESS_PATTERN, "code", 0.5, NOW, (7,)))
    index.put(Entry(3, LearningType.SUCCESS_PATTERN, "code", 0.4, NOW, (7,)))
    assert [i for _, i in index.by_cluster[7]] == [2, 3, 1]  # 0.5, 0.4, 0.9 / 4
    index.put(Entry(3, LearningType.SUCCESS_PATTERN, "code", 0.6, NOW, (7,)))
    index.drop(2)
    assert [i for _, i in index.by_cluster[7]] == [3, 1]


SHARP = RankParams(
    alpha=1.0,
    cross_agent_weight=0.5,
    recency_half_life_s=100.0,
    min_relevance=0.0,
    relevance_power=3,
)


@given(st.floats(0.0, 0.58), st.floats(0.21, 1.0))
def test_a_learning_about_this_very_task_outranks_a_distant_one_whatever_its_support(
    distant: float, confidence: float
) -> None:
    """relevance³: relevance 1 at L(1, 1) = 0.207 beats relevance under 0.59 at any confidence."""
    this_task = Entry(1, LearningType.SUCCESS_PATTERN, "code", 0.207, NOW, (1,), ("t",))
    neighbour = Entry(2, LearningType.SUCCESS_PATTERN, "code", confidence, NOW, (1,), ("u",))

    def per_task(e: Entry) -> TaskMatch:
        return TaskMatch(1.0 if e.id == 1 else distant, e.tasks[0])

    ranked = rank([neighbour, this_task], lambda _: 0.9, {}, None, SHARP, NOW, per_task)
    assert ranked[0].entry.id == 1
    assert ranked[0].parts.matched_task == "t"
    assert ranked[0].parts.score == pytest.approx(0.207)


def test_a_template_the_query_fills_matches_at_the_slots_share_of_it() -> None:
    index = TenantIndex(half_life_s=100.0)
    slotted = Entry(
        1,
        LearningType.SUCCESS_PATTERN,
        "cook",
        0.5,
        NOW,
        (1,),
        ("roast the red apple, cooking a meal",),
        ("roast the {object}, cooking a meal",),
        1.0,
        (0.75,),
    )
    per_task = PerTask(index, "roast the purple potato, cooking a meal", None)
    match = per_task(slotted)
    assert match is not None and match.similarity == 0.75
    assert match.task == "roast the {object}, cooking a meal"
    unrelated = PerTask(index, "slice the purple potato, cooking a meal", None)(slotted)
    assert unrelated is not None and unrelated.similarity < 0.75


def test_where_tasks_share_a_template_the_differing_words_decide() -> None:
    """ "take the red potato" is near "grill the yellow potato" in meaning (both
    name a potato) but the rare differing word, grill, decides (lexical path)."""
    index = TenantIndex(half_life_s=100.0)
    tasks = [
        f"{verb} the {food}, cooking a meal"
        for verb in ("take", "grill", "slice")
        for food in ("red potato", "purple potato", "carrot", "red apple")
    ]
    for i, task in enumerate(tasks):
        index.put(Entry(i, LearningType.SUCCESS_PATTERN, "cook", 0.5, NOW, (1,), (task,)))
    per_task = PerTask(index, "grill the yellow potato, cooking a meal", None)
    same_verb = per_task.lexical("grill the purple potato, cooking a meal")
    same_food = per_task.lexical("take the red potato, cooking a meal")
    assert same_verb > same_food
    assert per_task.lexical("grill the yellow potato, cooking a meal") == pytest.approx(1.0)


def test_with_embeddings_a_paraphrase_keeps_most_of_its_cosine() -> None:
    import numpy as np

    index = TenantIndex(half_life_s=100.0)
    paraphrase, template_mate = "add tests covering the csv reader", "grill the red potato"
    vector = np.array([1.0, 0.0], dtype=np.float32)
    near = np.array([0.8, 0.6], dtype=np.float32)
    for i, task in enumerate((paraphrase, template_mate)):
        index.add_task(task, near)
        index.put(Entry(i, LearningType.SUCCESS_PATTERN, "code", 0.5, NOW, (1,), (task,)))
    lexical_alike = PerTask(index, "grill the yellow potato", vector)
    reworded = PerTask(index, "write unit tests for the csv parser", vector)
    paraphrased = reworded(index.entries[0])
    templated = lexical_alike(index.entries[1])
    assert paraphrased is not None and templated is not None
    assert paraphrased.similarity > 0.6  # shares 2 of 5 words: most of its 0.8 cosine
    assert templated.similarity < paraphrased.similarity  # differs in its rarest word


def test_a_near_task_brings_its_most_confident_learnings_and_reads_past_harmed_ones() -> None:
    import numpy as np

    from server.learning.service import nearest_task_learnings

    index = TenantIndex(half_life_s=100.0)
    index.add_task("t", np.array([1.0, 0.0], dtype=np.float32))
    for i in range(1, 11):
        effect = 0.5 if i == 10 else 1.0  # the most confident one was measured to hurt
        index.put(
            Entry(i, LearningType.SUCCESS_PATTERN, "c", i / 10, NOW, (1,), ("t",), (), effect)
        )
    found = nearest_task_learnings(index, np.array([1.0, 0.0], dtype=np.float32), 3, lambda e: True)
    assert found == {10, 9, 8, 7}
    index.drop(9)
    assert 9 not in nearest_task_learnings(
        index, np.array([1.0, 0.0], dtype=np.float32), 3, lambda e: True
    )
