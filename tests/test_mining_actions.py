"""Learnings that say what to do: actions with their arguments, slots that follow
the task, credit per step, single successes at LOW confidence and the back-off
prior (the miner, in process, lexical clustering)."""

from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import ConfidenceLevel, Interaction, LearningType
from server.core.stats import backed_off, confidence_level, wilson_lower_bound
from server.core.window import DAY, Window
from server.learning.claims import ClaimRules, LearningDraft
from server.learning.committed import CommittedBatch
from server.learning.miner import FoldResult, Miner, MinerParams
from server.learning.recoveries import recoveries, step_errors
from server.learning.signature import action_signature, render, structured
from server.learning.slots import apply, fill, slot, slot_names

ids = count(1)
NOW = 20_833 * DAY - 1.0
OK: dict[str, Any] = {"success": True}
FAILED: dict[str, Any] = {"success": False}


def put(obj: str, place: str) -> dict[str, Any]:
    return {"type": "PUT", "object": obj, "target": place}


def row(
    task: str,
    actions: list[dict[str, Any]],
    success: bool = True,
    *,
    agent: str = "home",
    results: list[dict[str, Any]] | None = None,
    tenant: str = "t",
) -> CommittedBatch:
    item = Interaction(
        agent_type=agent,
        task_description=task,
        actions_taken=actions,
        results=results or [],
        success=success,
        completion_time=1.0,
        timestamp=datetime.fromtimestamp(NOW, UTC),
    )
    return CommittedBatch(tenant, next(ids), NOW, [item])


def miner(**rules: Any) -> Miner:
    claims = ClaimRules(window=Window(), **rules)
    return Miner(MinerParams(claims=claims, min_history=1e9))


def fold(m: Miner, rows: list[CommittedBatch]) -> FoldResult:
    return m.fold(rows, {}, NOW)


def of(result: FoldResult, kind: LearningType) -> list[LearningDraft]:
    return [d for d in result.learnings if d.type is kind]


def steps(d: LearningDraft) -> list[dict[str, Any]]:
    return [structured(s) for s in d.actions]


# -- actions with their arguments ------------------------------------------------


def test_a_learning_names_the_concrete_actions_with_their_arguments() -> None:
    m = miner()
    actions = [{"type": "CREATE_FILE", "path": "func.py"}, {"type": "EXECUTE", "cmd": "pytest"}]
    (learning,) = of(
        fold(m, [row("Create a Python function", actions)]), LearningType.SUCCESS_PATTERN
    )
    assert steps(learning) == actions
    assert 'CREATE_FILE path="func.py" → EXECUTE cmd=pytest' in learning.statement


def test_sequences_that_differ_in_an_argument_are_different_patterns() -> None:
    m = miner(min_support=2)
    task = "Tidy the kitchen"
    rows = [row(task, [put("cup", "cupboard")]) for _ in range(2)]
    rows += [row(task, [put("cup", "oven")], success=False) for _ in range(2)]
    result = fold(m, rows)
    (good,) = of(result, LearningType.SUCCESS_PATTERN)
    (bad,) = of(result, LearningType.FAILURE_PATTERN)
    assert steps(good) == [put("cup", "cupboard")]
    assert steps(bad) == [put("cup", "oven")] and bad.avoid


# -- a single success, and the back-off prior ----------------------------------------


def test_a_single_success_is_a_low_confidence_learning() -> None:
    (learning,) = of(
        fold(miner(), [row("Water the plants", [{"type": "WATER"}])]), LearningType.SUCCESS_PATTERN
    )
    assert learning.confidence == pytest.approx(wilson_lower_bound(1, 1))
    assert confidence_level(learning.confidence) is ConfidenceLevel.LOW


def test_a_single_success_borrows_from_the_same_actions_for_other_agent_types() -> None:
    m = miner(best_practice_breadth=99)
    actions = [{"type": "WATER", "amount": "1 l"}]
    fold(m, [row("Water the plants", actions, agent="gardener") for _ in range(6)])
    (learning,) = of(
        fold(m, [row("Water the plants", actions, agent="butler")]), LearningType.SUCCESS_PATTERN
    )
    k, n = backed_off(1.0, 1.0, [(6.0, 6.0), (0.0, 0.0)], 3.0)
    assert (k, n) == (3.0, 3.0)
    assert learning.confidence == pytest.approx(wilson_lower_bound(3, 3))
    assert learning.confidence > wilson_lower_bound(1, 1)


@given(
    st.floats(0, 50),
    st.floats(0, 1),
    st.lists(st.tuples(st.floats(0, 50), st.floats(0, 1)), max_size=3),
    st.floats(0, 10),
)
def test_back_off_borrows_at_most_m_minus_own_pseudo_outcomes(
    n: float, rate: float, parents: list[tuple[float, float]], m: float
) -> None:
    levels = [(r * pn, pn) for pn, r in parents]
    k_tilde, n_tilde = backed_off(rate * n, n, levels, m)
    assert n <= n_tilde + 1e-9
    assert n_tilde <= max(n, m) + 1e-9
    assert 0 <= k_tilde <= n_tilde + 1e-9
    if n >= m or not any(pn > 0 for pn, _ in parents):
        assert n_tilde == pytest.approx(n)


# -- credit per step --------------------------------------------------------------


def test_the_successful_tail_after_a_failed_step_is_evidence_for_itself() -> None:
    """A → wrong B → A → right C adds up with the first-try successes A → C."""
    a, wrong, right = {"type": "open", "object": "box"}, put("key", "drawer"), put("key", "box")
    m = miner(min_support=3)
    second_try = [row("Store the key", [a, wrong, a, right], results=[OK, FAILED, OK, OK])]
    first_try = [row("Store the key", [a, right]) for _ in range(2)]
    result = fold(m, second_try + first_try)
    stated = {render(d.actions): d for d in of(result, LearningType.SUCCESS_PATTERN)}
    tail = render(action_signature([a, right]))
    assert tail in stated and stated[tail].support == 3


def test_a_failed_step_is_a_dont_that_names_the_action() -> None:
    wrong = put("key", "drawer")
    m = miner(min_support=2)
    rows = [
        row("Store the key", [wrong, put("key", "box")], results=[FAILED, OK]) for _ in range(2)
    ]
    (dont,) = [d for d in of(fold(m, rows), LearningType.FAILURE_PATTERN) if len(d.actions) == 1]
    assert steps(dont) == [wrong] and dont.avoid
    assert "don't PUT" in dont.statement and "target=drawer" in dont.statement


def test_a_step_that_failed_once_counts_its_later_successes_too() -> None:
    step = {"type": "unlock", "door": "front"}
    m = miner(min_support=1)
    fold(m, [row("Enter the house", [step], success=False, results=[FAILED])])
    result = fold(m, [row("Enter the house", [step], results=[OK]) for _ in range(3)])
    step_claims = [d for d in result.learnings if d.key.startswith("step|")]
    assert step_claims and all(d.successes == pytest.approx(3) for d in step_claims)


def test_error_recovery_names_what_was_done_instead_looking_past_repeats() -> None:
    a, b, c = '{"type":"A"}', '{"type":"B"}', '{"type":"C"}'
    signature = (a, b, a, c)
    found = recoveries(signature, step_errors(signature, [OK, {"error": "KeyError: x"}, OK, OK]))
    assert found == [(b, "KeyError", (c,))]


# -- slots ----------------------------------------------------------------------------


def test_values_from_the_task_become_slots_and_the_rest_stays_concrete() -> None:
    signature = action_signature([put("shirt", "laundry basket")])
    found = slot(signature, "put the dirty shirt away")
    assert found is not None
    assert [structured(s) for s in found.steps] == [put("{object}", "laundry basket")]
    assert found.template == "put the dirty {object} away"
    assert found.filling == (("object", "shirt"),)
    assert slot(signature, "tidy up the bedroom") is None


def test_a_slot_is_filled_from_a_new_task() -> None:
    names = ["object"]
    values = fill(names, ["put the dirty {object} away"], "Put the dirty wool sock away")
    assert values == {"object": "wool sock"}
    anchored = fill(names, ["put the dirty {object} away"], "Please, put the dirty towel away now")
    assert anchored == {"object": "towel"}
    assert fill(names, ["chop the {object}, cooking"], "eat the meal, cooking") is None
    assert fill(names, ["put the dirty {object} away"], "water the plants") is None
    assert apply(['{"object":"{object}","type":"PUT"}'], values) == [
        {"object": "wool sock", "type": "PUT"}
    ]
    assert slot_names(['{"a":"{x}","b":"{y}","type":"T"}', '{"c":"{x}","type":"U"}']) == ["x", "y"]


def test_successes_that_differ_only_in_task_values_become_one_slotted_learning() -> None:
    m = miner()
    rows = [row(f"put the dirty {o} away", [put(o, "laundry basket")]) for o in ("shirt", "jeans")]
    slotted = [
        d for d in of(fold(m, rows), LearningType.SUCCESS_PATTERN) if d.key.startswith("slot|")
    ]
    (learning,) = slotted
    assert steps(learning) == [put("{object}", "laundry basket")]
    assert set(learning.templates) == {"put the dirty {object} away"}


def test_no_slot_from_a_single_filling_or_from_failed_instances() -> None:
    m = miner()
    once = [row("put the dirty shirt away", [put("shirt", "laundry basket")]) for _ in range(3)]
    failing = [
        row(f"put the dirty {o} away", [put(o, "oven")], success=False) for o in ("cup", "plate")
    ]
    result = fold(m, once + failing)
    assert not [d for d in result.learnings if d.key.startswith("slot|")]


@given(st.text(min_size=1, max_size=30), st.sampled_from(["sock", "red apple", "key"]))
def test_a_template_filled_with_its_value_gives_the_value_back(prefix: str, value: str) -> None:
    task = f"{prefix.strip() or 'x'} put the {value} away"
    found = slot(action_signature([put(value, "box")]), task)
    assert found is not None
    assert fill(["object"], [found.template], task) == {"object": value} or value in prefix


def test_two_tenants_that_learn_the_same_recovery_hold_two_learnings() -> None:
    m = miner(best_practice_breadth=2)
    fix = [{"type": "RUN"}, {"type": "INSTALL", "package": "pandas"}, {"type": "RUN"}]
    results = [{"error": "ModuleNotFoundError: pandas"}, OK, OK]
    rows = [
        row(task, fix, results=results, tenant=tenant)
        for tenant in ("acme", "globex")
        for task in ("Load the sales data", "Plot the revenue chart")
    ]
    stated = [d for d in fold(m, rows).learnings if d.type is not LearningType.TASK_STRATEGY]
    by_id: dict[int, set[str]] = {}
    for d in stated:
        by_id.setdefault(d.id, set()).add(d.tenant)
    assert all(len(tenants) == 1 for tenants in by_id.values())
    kinds = {(d.type, d.tenant) for d in stated}
    assert {(LearningType.ERROR_RECOVERY, "acme"), (LearningType.ERROR_RECOVERY, "globex")} <= kinds


def test_a_slot_adds_up_across_clusters_and_knows_its_share_of_the_template() -> None:
    m = miner()
    tasks = {
        "shirt": "laundry basket",
        "jeans": "laundry basket",
        "toothbrush": "cabinet",
        "comb": "cabinet",
    }
    rows = [row(f"Put the {o} where it belongs", [put(o, place)]) for o, place in tasks.items()]
    result = fold(m, rows)
    slotted = {d.actions: d for d in result.learnings if d.key.startswith("slot|")}
    assert len(slotted) == 2
    for learning in slotted.values():
        assert learning.templates == ("Put the {object} where it belongs",)
        assert learning.template_shares == (0.5,)
    clusters = {
        d.clusters for d in of(result, LearningType.SUCCESS_PATTERN) if d.key.startswith("seq|")
    }
    assert len(clusters) > 1 or all(len(d.clusters) == 1 for d in slotted.values())


def test_a_template_that_always_leads_to_one_slotted_sequence_has_all_of_it() -> None:
    m = miner()
    rows = [
        row(
            f"roast the {food}, cooking a meal",
            [{"type": "cook", "object": food, "target": "oven"}],
        )
        for food in ("red apple", "yellow potato", "carrot")
    ]
    (learning,) = [d for d in fold(m, rows).learnings if d.key.startswith("slot|")]
    assert learning.template_shares == (1.0,)


def test_a_failed_step_whose_value_comes_from_the_task_is_a_dont_for_the_template() -> None:
    m = miner()

    def roast(food: str, appliance: str, ok: bool) -> CommittedBatch:
        cook = {"type": "cook", "object": food, "target": appliance}
        return row(f"roast the {food}", [cook], success=ok, results=[OK if ok else FAILED])

    result = fold(m, [roast("red apple", "stove", False), roast("carrot", "stove", False)])
    (dont,) = [d for d in result.learnings if d.key.startswith("slotstep|")]
    assert dont.avoid and steps(dont) == [{"type": "cook", "object": "{object}", "target": "stove"}]
    assert dont.templates == ("roast the {object}",) and dont.template_shares == (1.0,)
    once = fold(miner(), [roast("red apple", "oven", False)])
    assert not [d for d in once.learnings if d.key.startswith("slotstep|")]


def test_a_slot_generalises_within_its_template_not_across_templates() -> None:
    """Eating an ingredient loses while taking it, and eating the meal fails
    before it is prepared: one filling in each template is no don't for either."""
    m = miner()

    def eat(task: str, food: str) -> CommittedBatch:
        return row(task, [{"type": "eat", "object": food}], success=False, results=[FAILED])

    result = fold(m, [eat("take the red apple", "red apple"), eat("eat the meal", "meal")])
    assert not [d for d in result.learnings if d.key.startswith("slotstep|")]


def test_a_step_that_worked_when_done_again_is_no_dont() -> None:
    run = {"type": "RUN_SCRIPT", "name": "etl.py"}
    transient = [run, {"type": "WAIT"}, run]
    m = miner()
    result = fold(m, [row("Load the sales data", transient, results=[FAILED, OK, OK])])
    assert not of(result, LearningType.FAILURE_PATTERN)


def test_a_tail_that_redoes_nothing_is_a_recovery_not_a_plan() -> None:
    plan, fix = {"type": "DEPLOY"}, {"type": "RETRY_WITH_BACKOFF"}
    m = miner()
    result = fold(m, [row("Ship the release", [plan, fix], results=[FAILED, OK])])
    stated = {render(d.actions) for d in of(result, LearningType.SUCCESS_PATTERN)}
    assert stated == {"DEPLOY → RETRY_WITH_BACKOFF"}


def test_a_plan_that_failed_once_is_no_dont_yet() -> None:
    plan = [{"type": "SEARCH_CODE"}, {"type": "EDIT_CODE"}, {"type": "RUN_TESTS"}]
    m = miner()
    assert not of(
        fold(m, [row("Fix the parser", plan, success=False)]), LearningType.FAILURE_PATTERN
    )
    again = fold(m, [row("Fix the parser", plan, success=False)])
    assert of(again, LearningType.FAILURE_PATTERN)
