"""The incremental miner: clusters, pattern counts and the learnings they yield."""

from copy import deepcopy
from itertools import count

from hypothesis import given
from hypothesis import strategies as st

from schemas import Interaction, LearningType
from server.learning.confidence import wilson_lower_bound
from server.learning.miner import Miner
from server.store.records import CommittedBatch

ids = count(1)
STEPS = ("CREATE_FILE", "EXECUTE")


def row(
    task: str,
    success: bool,
    *,
    tenant: str = "t",
    agent: str = "code",
    steps: tuple[str, ...] = STEPS,
) -> CommittedBatch:
    """One committed interaction, as the store hands it to the extractor."""
    item = Interaction(
        agent_type=agent,
        task_description=task,
        actions_taken=[{"type": s} for s in steps],
        success=success,
        completion_time=2.0,
    )
    return CommittedBatch(tenant, next(ids), 0.0, [item])


def miner(min_support: int = 3) -> Miner:
    return Miner(similarity=0.5, min_support=min_support, evidence_max=5)


def test_no_learning_below_min_support() -> None:
    fold = miner().fold([row("Create Python function", True) for _ in range(2)])
    assert fold.learnings == []
    assert fold.patterns[0].attempts == 2


def test_success_pattern_counts_and_confidence() -> None:
    rows = [row("Create Python function", True) for _ in range(4)] + [
        row("Create Python function", False)
    ]
    fold = miner().fold(rows)
    (learning,) = fold.learnings
    assert learning.type is LearningType.SUCCESS_PATTERN
    assert (learning.support, learning.successes) == (5, 4)
    assert learning.success_rate == 0.8
    assert learning.confidence == wilson_lower_bound(4, 5)
    assert learning.actions == STEPS
    assert learning.evidence == tuple(r.first_id for r in rows if r.items[0].success)


def test_failure_pattern_claims_the_failure_rate() -> None:
    rows = [row("Deploy the service", False) for _ in range(3)]
    (learning,) = miner().fold(rows).learnings
    assert learning.type is LearningType.FAILURE_PATTERN
    assert learning.confidence == wilson_lower_bound(3, 3)
    assert "failed in 3 of 3" in learning.statement


def test_a_learning_keeps_updating_after_its_claim_weakens() -> None:
    m = miner()
    m.fold([row("Create Python function", True) for _ in range(3)])
    fold = m.fold([row("Create Python function", False) for _ in range(4)])
    kinds = {d.type: d for d in fold.learnings}
    assert kinds[LearningType.SUCCESS_PATTERN].confidence == wilson_lower_bound(3, 7)
    assert kinds[LearningType.FAILURE_PATTERN].confidence == wilson_lower_bound(4, 7)


def test_similar_tasks_share_a_cluster_and_unlike_tasks_do_not() -> None:
    m = miner()
    fold = m.fold(
        [
            row("Create Python function", True),
            row("create a python function quickly", True),
            row("Deploy kubernetes cluster", True),
        ]
    )
    assert len(fold.clusters) == 2
    assert sorted(p.attempts for p in fold.patterns) == [1, 2]


def test_tenants_and_agent_types_never_mix() -> None:
    task = "Create Python function"
    fold = miner().fold(
        [
            row(task, True, tenant="a"),
            row(task, True, tenant="b"),
            row(task, True, tenant="a", agent="test"),
        ]
    )
    assert len(fold.clusters) == 2
    assert sorted((p.tenant, p.agent_type, p.attempts) for p in fold.patterns) == [
        ("a", "code", 1),
        ("a", "test", 1),
        ("b", "code", 1),
    ]


def test_interactions_without_actions_move_the_cursor_only() -> None:
    fold = miner().fold([row("Think about it", True, steps=())])
    assert fold.patterns == [] and fold.cursor > 0


def test_evidence_keeps_the_latest_ids() -> None:
    rows = [row("Create Python function", True) for _ in range(8)]
    (learning,) = miner().fold(rows).learnings
    assert learning.evidence == tuple(r.first_id for r in rows[-5:])


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["fix bug in parser", "write docs", "parser bug fix"]), st.booleans()
        ),
        max_size=40,
    )
)
def test_restored_miner_continues_like_the_original(history: list[tuple[str, bool]]) -> None:
    rows = [row(task, ok) for task, ok in history]
    half = len(rows) // 2
    original = miner(min_support=1)
    first = original.fold(rows[:half])
    restored = miner(min_support=1)
    # deep copies: a restore reads fresh objects back from the store
    restored.restore(deepcopy(first.clusters), deepcopy(first.patterns), first.cursor)
    tail_a = original.fold(rows[half:])
    tail_b = restored.fold(rows[half:])
    assert [(d.type, d.support, d.successes) for d in tail_a.learnings] == [
        (d.type, d.support, d.successes) for d in tail_b.learnings
    ]


@given(st.lists(st.booleans(), min_size=1, max_size=60))
def test_counts_always_add_up(outcomes: list[bool]) -> None:
    fold = miner(min_support=1).fold([row("Create Python function", ok) for ok in outcomes])
    (pattern,) = fold.patterns
    assert pattern.attempts == len(outcomes)
    assert pattern.successes == sum(outcomes)
    for learning in fold.learnings:
        hits = (
            learning.successes
            if learning.type is LearningType.SUCCESS_PATTERN
            else learning.support - learning.successes
        )
        assert learning.confidence == wilson_lower_bound(hits, learning.support)


def test_action_types_containing_separators_stay_distinct() -> None:
    fold = miner(min_support=1).fold(
        [
            row("Create Python function", True, steps=("A>B",)),
            row("Create Python function", True, steps=("A", "B")),
        ]
    )
    assert sorted(p.signature for p in fold.patterns) == [("A", "B"), ("A>B",)]
    assert len({p.key for p in fold.patterns}) == 2


def test_interactions_delivered_twice_are_counted_once() -> None:
    m = miner(min_support=1)
    batch = row("Create Python function", True)
    m.fold([batch])
    fold = m.fold([batch])
    assert fold.patterns == []


def test_new_clusters_never_reuse_a_restored_id() -> None:
    first = miner()
    clusters = first.fold([row("alpha beta gamma", True), row("delta epsilon", True)]).clusters
    restored = miner()
    restored.restore([clusters[1]], [], 0)
    (fresh,) = restored.fold([row("zeta eta theta", True)]).clusters
    assert fresh.id == clusters[1].id + 1
