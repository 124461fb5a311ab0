"""The incremental miner: every learning type from constructed interactions, and
confidence rising and falling with evidence and age (lexical clustering; the
semantic path runs in tests/test_learning_engine.py against a real server)."""

import math
from datetime import UTC, datetime
from itertools import count
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from schemas import Interaction, LearningStatus, LearningType
from server.core.stats import wilson_lower_bound
from server.core.window import DAY, Window
from server.learning.claims import ClaimRules, LearningDraft, pool, without
from server.learning.committed import CommittedBatch
from server.learning.miner import GROUPS_PER_FOLD, FoldResult, Miner, MinerParams, MiningState
from server.learning.patterns import Evidence
from server.learning.signature import step_type

ids = count(1)
NOW = 20_833 * DAY - 1.0
"""The last second of a day bucket: ages run from a bucket's end (`window.py`)."""
STEPS = ("CREATE_FILE", "EXECUTE")
TASK = "Create Python function"


def types(steps: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(step_type(s) for s in steps)


def row(
    task: str = TASK,
    success: bool = True,
    *,
    tenant: str = "t",
    agent: str = "code",
    steps: tuple[str, ...] = STEPS,
    at: float = NOW,
    time_s: float = 2.0,
    results: list[dict[str, Any]] | None = None,
) -> CommittedBatch:
    """One committed interaction, as the store hands it to the extractor."""
    item = Interaction(
        agent_type=agent,
        task_description=task,
        actions_taken=[{"type": s} for s in steps],
        results=results or [],
        success=success,
        completion_time=time_s,
        timestamp=datetime.fromtimestamp(at, UTC),
    )
    return CommittedBatch(tenant, next(ids), at, [item])


def miner(**rules: Any) -> Miner:
    claims = ClaimRules(window=Window(), min_support=3, **rules)
    return Miner(MinerParams(claims=claims, evidence_max=5, min_history=1e9))


def of(fold: FoldResult, kind: LearningType) -> list[LearningDraft]:
    return [d for d in fold.learnings if d.type is kind]


def fold(m: Miner, rows: list[CommittedBatch], now: float = NOW) -> FoldResult:
    return m.fold(rows, {}, now)


def test_no_learning_below_min_support() -> None:
    assert fold(miner(), [row() for _ in range(2)]).learnings == []


def test_success_pattern_counts_and_confidence() -> None:
    rows = [row() for _ in range(4)] + [row(success=False)]
    (learning,) = of(fold(miner(), rows), LearningType.SUCCESS_PATTERN)
    assert (learning.support, learning.successes) == (5, 4)
    assert learning.success_rate == 0.8
    assert learning.confidence == wilson_lower_bound(4, 5)
    assert types(learning.actions) == STEPS
    assert learning.evidence == tuple(r.first_id for r in rows if r.items[0].success)
    assert "succeeded 4 of 5 times" in learning.statement
    assert learning.first_seen == learning.last_seen == NOW


def test_failure_pattern_claims_the_failure_rate() -> None:
    rows = [row(success=False) for _ in range(3)]
    (learning,) = of(fold(miner(), rows), LearningType.FAILURE_PATTERN)
    assert learning.confidence == wilson_lower_bound(3, 3)
    assert "avoid it" in learning.statement


def test_error_recovery_is_mined_from_the_failed_step_and_what_fixed_it() -> None:
    steps = ("RUN_TESTS", "INSTALL_PACKAGE", "RUN_TESTS")
    results: list[dict[str, Any]] = [
        {"success": False, "error": "ModuleNotFoundError: No module named 'pandas'"},
        {"success": True},
        {"success": True},
    ]
    rows = [row(steps=steps, results=results) for _ in range(3)]
    (learning,) = of(fold(miner(), rows), LearningType.ERROR_RECOVERY)
    assert learning.trigger is not None
    assert (step_type(learning.trigger[0]), learning.trigger[1]) == (
        "RUN_TESTS",
        "ModuleNotFoundError",
    )
    assert types(learning.actions) == ("INSTALL_PACKAGE",)
    assert learning.statement.startswith("When RUN_TESTS fails with ModuleNotFoundError")
    assert "ModuleNotFoundError" in learning.document


def test_optimization_states_the_measured_gain_over_its_peers() -> None:
    fast = [row(steps=("EDIT", "TEST"), time_s=2.0) for _ in range(4)]
    slow = [row(steps=("EDIT", "LINT", "TEST"), time_s=10.0 + i) for i in range(4)]
    (learning,) = of(fold(miner(), fast + slow), LearningType.OPTIMIZATION)
    assert types(learning.actions) == ("EDIT", "TEST")
    assert learning.gain is not None and learning.gain.metric == "completion_time"
    assert learning.gain.baseline == 11.5 and learning.gain.achieved == 2.0
    assert abs(learning.gain.value - (1 - 2.0 / 11.5)) < 1e-9
    assert 0 < learning.confidence <= wilson_lower_bound(4, 4)


def test_task_strategy_names_the_best_sequence_of_the_cluster() -> None:
    good = [row(steps=("A", "B")) for _ in range(5)]
    meh = [row(steps=("C", "D"), success=i < 2) for i in range(4)]
    (strategy,) = of(fold(miner(), good + meh), LearningType.TASK_STRATEGY)
    assert types(strategy.actions) == ("A", "B")
    assert "2 sequences tried" in strategy.statement
    assert strategy.confidence == wilson_lower_bound(5, 5)


def test_best_practice_needs_high_confidence_across_clusters() -> None:
    tasks = ["Parse CSV files", "Deploy web service", "Renew TLS certificate"]
    m = miner()
    two = fold(m, [row(task) for task in tasks[:2] for _ in range(10)])
    assert of(two, LearningType.BEST_PRACTICE) == []
    three = fold(m, [row(tasks[2]) for _ in range(10)])
    (practice,) = of(three, LearningType.BEST_PRACTICE)
    assert types(practice.actions) == STEPS and len(practice.clusters) == 3
    assert practice.confidence == wilson_lower_bound(30, 30)


def test_confidence_rises_with_evidence_and_reaches_high_within_the_window() -> None:
    m = miner()
    levels = []
    for day in range(10):
        at = NOW + day * DAY
        drafts = of(fold(m, [row(at=at)], now=at), LearningType.SUCCESS_PATTERN)
        assert len(drafts) <= 1
        levels.append(drafts[0].confidence if drafts else 0.0)
    assert levels == sorted(levels) and levels[-1] >= 0.6


def test_confidence_decays_with_age_and_the_pattern_retires() -> None:
    m = miner()
    (fresh,) = of(fold(m, [row() for _ in range(5)]), LearningType.SUCCESS_PATTERN)
    (week,) = of(m.sweep(NOW + 7 * DAY), LearningType.SUCCESS_PATTERN)
    assert week.confidence < fresh.confidence and week.status is LearningStatus.ACTIVE
    assert abs(week.support - 5 / 2) < 1e-3  # one half-life
    (gone,) = of(m.sweep(NOW + 31 * DAY), LearningType.SUCCESS_PATTERN)
    assert gone.status is LearningStatus.RETIRED and gone.support == 0


def test_evidence_outside_the_window_counts_for_nothing() -> None:
    old = [row(at=NOW - 40 * DAY) for _ in range(5)]
    assert fold(miner(), old).learnings == []


def test_a_retired_learning_returns_with_new_evidence() -> None:
    m = miner()
    (first,) = of(fold(m, [row() for _ in range(3)]), LearningType.SUCCESS_PATTERN)
    later = NOW + 40 * DAY
    of(m.sweep(later), LearningType.SUCCESS_PATTERN)
    back = of(fold(m, [row(at=later) for _ in range(3)], now=later), LearningType.SUCCESS_PATTERN)
    assert [(d.id, d.status) for d in back] == [(first.id, LearningStatus.ACTIVE)]


def test_similar_tasks_share_a_cluster_and_unlike_tasks_do_not() -> None:
    rows = [row("Create Python function"), row("Create a Python function"), row("Deploy cluster")]
    assert len(fold(miner(), rows).clusters) == 2


def test_tenants_and_agent_types_never_mix() -> None:
    rows = [row(tenant=t, agent=a) for t in ("t1", "t2") for a in ("x", "y") for _ in range(3)]
    learnings = of(fold(miner(), rows), LearningType.SUCCESS_PATTERN)
    assert sorted((d.tenant, d.agent_type) for d in learnings) == [
        ("t1", "x"),
        ("t1", "y"),
        ("t2", "x"),
        ("t2", "y"),
    ]
    assert all(d.support == 3 for d in learnings)


def test_interactions_delivered_twice_are_counted_once() -> None:
    m = miner()
    rows = [row() for _ in range(3)]
    fold(m, rows)
    again = fold(m, rows)
    assert again.folded == 0 and again.learnings == []


def test_restored_miner_continues_like_the_original() -> None:
    original, copy = miner(), miner()
    first = fold(original, [row() for _ in range(3)])
    copy.restore(state_of(original, first))
    rows = [row() for _ in range(2)]
    a, b = fold(original, rows), fold(copy, rows)
    assert [(d.id, d.support, d.confidence) for d in a.learnings] == [
        (d.id, d.support, d.confidence) for d in b.learnings
    ]


def state_of(m: Miner, first: FoldResult) -> MiningState:
    from server.learning.patterns import Pattern

    patterns = [Pattern.from_state(p.tenant, p.key, p.to_state()) for p in m.patterns.values()]
    return MiningState(
        clusters=list(m.clusterer.clusters.values()),
        patterns=patterns,
        behaviours=[],
        learning_ids=dict(m.ledger.ids),
        last_learning_id=m.ledger.last_id,
        last_anomaly_id=0,
        cursor=first.cursor,
    )


@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_counts_always_add_up(outcomes: list[bool]) -> None:
    result = fold(miner(), [row(success=ok) for ok in outcomes])
    for d in of(result, LearningType.SUCCESS_PATTERN) + of(result, LearningType.FAILURE_PATTERN):
        assert (d.support, d.successes) == (len(outcomes), sum(outcomes))
        assert 0.0 <= d.confidence <= 1.0


def test_interactions_without_actions_move_the_cursor_only() -> None:
    result = fold(miner(), [row(steps=())])
    assert result.learnings == [] and result.patterns == [] and result.folded == 1


_evidence = st.builds(
    Evidence,
    *(st.floats(0.01, 1e4) for _ in range(6)),
    st.integers(0, 1000),
    st.integers(0, 1000),
)


@given(st.lists(_evidence, min_size=2, max_size=12), st.data())
def test_peers_as_total_minus_one_equal_the_pooled_peers(
    group: list[Evidence], data: st.DataObject
) -> None:
    mine = data.draw(st.integers(0, len(group) - 1))
    peers = pool(group[:mine] + group[mine + 1 :])
    taken = without(pool(group), group[mine])
    assert (taken.count, taken.wins) == (peers.count, peers.wins)
    for name in ("n", "k", "sum_t", "sum_t2", "sum_i", "sum_i2"):
        assert math.isclose(getattr(taken, name), getattr(peers, name), rel_tol=1e-6, abs_tol=1e-6)


def test_a_sweep_in_slices_restates_what_a_whole_sweep_does() -> None:
    tasks = ["Create Python function", "Deploy cluster", "Write release notes", "Fix login bug"]
    rows = [
        row(task, agent=agent, steps=steps)
        for task in tasks
        for agent in ("code", "ops")
        for steps in (STEPS, ("EDIT", "TEST"))
        for _ in range(3)
    ]
    whole, sliced = miner(), miner()
    fold(whole, rows)
    fold(sliced, [CommittedBatch(r.tenant, r.first_id, r.recorded_at, r.items) for r in rows])
    later = NOW + 7 * DAY
    expected = {(d.id, d.confidence) for d in whole.sweep(later).learnings}
    parts = [sliced.sweep(later, {part}, 5).learnings for part in range(5)]
    found = [(d.id, d.confidence) for drafts in parts for d in drafts]
    assert len(expected) > 16 and sorted(found) == sorted(expected)


def test_group_claims_wait_in_a_queue_of_which_each_fold_takes_the_oldest() -> None:
    m = miner()
    agents = [f"agent{i:03d}" for i in range(GROUPS_PER_FOLD + 20)]
    first = fold(m, [row(agent=a) for a in agents for _ in range(3)])
    stated = {d.agent_type for d in of(first, LearningType.TASK_STRATEGY)}
    assert stated == set(agents[:GROUPS_PER_FOLD])
    assert len(of(first, LearningType.SUCCESS_PATTERN)) == len(agents)  # not queued
    assert m.queued  # the extractor folds again, with nothing new, until it is not
    rest = {d.agent_type for d in of(fold(m, []), LearningType.TASK_STRATEGY)}
    assert rest == set(agents[GROUPS_PER_FOLD:])
    assert not m.queued


def test_a_restored_miner_restates_every_group_and_saves_the_patterns_it_claims() -> None:
    original = miner()
    slow = [row(steps=("EDIT", "LINT", "TEST"), time_s=10.0 + i) for i in range(4)]
    first = fold(original, slow)  # nothing to beat yet
    copy = miner()
    copy.restore(state_of(original, first))
    fast = [row(steps=("EDIT", "TEST"), time_s=2.0) for _ in range(4)]
    fold(copy, fast)
    copy.restore(state_of(copy, first))  # a restart: whatever was queued is gone
    assert copy.queued
    again = fold(copy, [])  # a restored miner restates every group
    (optimization,) = of(again, LearningType.OPTIMIZATION)
    saved = {key for _, key, _ in again.patterns}
    assert types(optimization.actions) == ("EDIT", "TEST") and optimization.key in saved
    assert not copy.queued


def test_group_claims_retire_once_their_evidence_leaves_the_window_and_return_with_new() -> None:
    m = miner()
    fast = [row(steps=("EDIT", "TEST"), time_s=2.0) for _ in range(4)]
    slow = [row(steps=("EDIT", "LINT", "TEST"), time_s=10.0) for _ in range(4)]
    tasks = ["Parse CSV files", "Deploy web service", "Renew TLS certificate"]
    practice = [row(task) for task in tasks for _ in range(10)]
    first = fold(m, fast + slow + practice)
    kinds = (LearningType.TASK_STRATEGY, LearningType.OPTIMIZATION, LearningType.BEST_PRACTICE)
    stated = {d.id: d.type for d in first.learnings if d.type in kinds}
    assert set(stated.values()) == set(kinds)
    gone = m.sweep(NOW + 31 * DAY)
    assert {i for _, i in gone.retired} == set(stated)
    assert not [d for d in gone.learnings if d.id in stated and d.status is LearningStatus.ACTIVE]
    assert m.sweep(NOW + 32 * DAY).retired == []  # retired once, not at every sweep
    later = NOW + 40 * DAY
    again = [again_at(r, later) for r in fast + slow + practice]
    back = fold(m, again, now=later)
    returned = {d.id: d.status for d in back.learnings if d.id in stated}
    assert returned == dict.fromkeys(stated, LearningStatus.ACTIVE)


def again_at(committed: CommittedBatch, at: float) -> CommittedBatch:
    """The same interaction, recorded again at `at`."""
    item = committed.items[0]
    steps = tuple(str(a["type"]) for a in item.actions_taken)
    return row(item.task_description, at=at, steps=steps, time_s=item.completion_time)
