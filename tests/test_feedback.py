"""Feedback closes the loop: the measured effect of applying a learning, harm that
costs rank and retires, the phrasing that found a learning, and the tenant's
hold-out (pure maths, the miner in process, then a real server)."""

from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client import KaizenClient, LearningType
from schemas import Interaction, LearningStatus
from server.core.stats import wilson_lower_bound
from server.core.window import DAY, Window
from server.learning.claims import ClaimRules, LearningDraft
from server.learning.committed import CommittedBatch
from server.learning.effects import HURT_MIN_APPLIED, Tally, effect_weight, lift
from server.learning.miner import FoldResult, Miner, MinerParams
from server.learning.reliability import weight
from tests.conftest import eventually
from tests.test_learning_engine import kaizen

ids = count(1)
NOW = 20_833 * DAY - 1.0
GOOD = [{"type": "open", "object": "jar"}, {"type": "take", "object": "honey"}]
BAD = [{"type": "smash", "object": "jar"}]
TASK = "Get the honey out of the jar"


def test_newcombe_interval_matches_the_published_example() -> None:
    """Newcombe (1998), table II, example (a): 56/70 against 48/80."""
    found = lift(Tally(70, 56), Tally(80, 48))
    assert found.lift == pytest.approx(0.2)
    assert (round(found.low, 4), round(found.high, 4)) == (0.0524, 0.3339)


tallies = st.integers(0, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@given(tallies, tallies)
def test_the_interval_holds_the_difference_and_stays_in_bounds(
    a: tuple[int, int], b: tuple[int, int]
) -> None:
    found = lift(Tally(*a), Tally(*b))
    assert -1 - 1e-9 <= found.low <= found.lift <= found.high <= 1 + 1e-9


@given(tallies, tallies)
def test_the_effect_weight_only_ever_lowers_rank(a: tuple[int, int], b: tuple[int, int]) -> None:
    measured = lift(Tally(*a), Tally(*b))
    weight = effect_weight(measured, 3.0)
    assert 0 <= weight <= 1
    if measured.lift >= 0:
        assert weight == 1


def row(
    actions: list[dict[str, Any]],
    success: bool,
    *,
    task: str = TASK,
    tenant: str = "t",
    offered: tuple[int, ...] = (),
    applied: tuple[int, ...] = (),
) -> CommittedBatch:
    item = attempt(actions, success, task=task, offered=list(offered), applied=list(applied))
    item.timestamp = datetime.fromtimestamp(NOW, UTC)
    return CommittedBatch(tenant, next(ids), NOW, [item])


def attempt(
    actions: list[dict[str, Any]],
    success: bool,
    *,
    task: str = TASK,
    offered: list[int] | None = None,
    applied: list[int] | None = None,
    held_out: bool = False,
) -> Interaction:
    return Interaction(
        agent_type="cook",
        task_description=task,
        actions_taken=actions,
        success=success,
        completion_time=1.0,
        offered_learnings=offered or [],
        applied_learnings=applied or [],
        learnings_held_out=held_out,
    )


def miner() -> Miner:
    return Miner(MinerParams(claims=ClaimRules(window=Window()), min_history=1e9))


def fold(m: Miner, rows: list[CommittedBatch]) -> FoldResult:
    return m.fold(rows, {}, NOW)


def stated(result: FoldResult, learning_id: int) -> LearningDraft:
    return next(d for d in result.learnings if d.id == learning_id)


def success_pattern(result: FoldResult) -> LearningDraft:
    return next(d for d in result.learnings if d.type is LearningType.SUCCESS_PATTERN)


def test_a_learning_that_hurts_loses_rank_then_retires() -> None:
    m = miner()
    lucky = success_pattern(fold(m, [row(BAD, True)]))
    fold(m, [row(GOOD, True) for _ in range(6)])  # the cluster does fine without it
    harmed = stated(fold(m, [row(BAD, False, offered=(lucky.id,), applied=(lucky.id,))]), lucky.id)
    assert harmed.effect is not None and harmed.effect.lift < 0
    assert harmed.effect_weight < 1
    for _ in range(HURT_MIN_APPLIED + 2):
        last = stated(fold(m, [row(BAD, False, applied=(lucky.id,))]), lucky.id)
    assert last.effect is not None and last.effect.high < 0
    assert last.status is LearningStatus.RETIRED


def test_the_effect_compares_with_offered_and_not_applied_and_with_the_cluster() -> None:
    m = miner()
    learning = success_pattern(fold(m, [row(GOOD, True)]))
    fold(m, [row(BAD, False) for _ in range(3)])  # offered nothing: the cluster's baseline
    fold(m, [row(BAD, False, offered=(learning.id,))])  # offered, not applied
    after = stated(fold(m, [row(GOOD, True, applied=(learning.id,))]), learning.id)
    assert after.effect is not None
    assert (after.effect.applied.n, after.effect.applied.k) == (1, 1)
    # 3 failures offered nothing, 1 offered and not applied, and the success the
    # learning was mined from, which was offered nothing either
    assert (after.effect.compared.n, after.effect.compared.k) == (5, 1)
    assert after.effect.lift == pytest.approx(0.8)


def test_the_phrasing_that_applied_a_learning_with_success_becomes_its_evidence() -> None:
    m = miner()
    learning = success_pattern(fold(m, [row(GOOD, True)]))
    paraphrase = "Extract the golden syrup bees make from its glass container"
    result = fold(m, [row(GOOD, True, task=paraphrase, applied=(learning.id,))])
    assert paraphrase in stated(result, learning.id).tasks


def test_feedback_naming_another_tenants_learning_is_ignored() -> None:
    m = miner()
    theirs = success_pattern(fold(m, [row(GOOD, True, tenant="acme")]))
    result = fold(m, [row(BAD, False, tenant="globex", applied=(theirs.id,))])
    assert all(d.id != theirs.id for d in result.learnings)
    assert all(tenant == "globex" for tenant, _, _ in result.effects)


async def test_the_holdout_withholds_learnings_and_the_tenant_lift_is_measured(
    data_dir: Path,
) -> None:
    async with kaizen(data_dir, learning_holdout_fraction=1.0) as kz:
        await _record(kz, GOOD, True)
        page = await kz.learnings(task=TASK)
        assert page.held_out and page.items == []
        listing = await kz.learnings()  # no task: nothing to hold out
        assert not listing.held_out
        for success in (False, False, True):
            await _record(kz, BAD, success, held_out=True)
        offered = [x.id for x in await eventually(lambda: _listed(kz))]
        for _ in range(4):
            await _record(kz, GOOD, True, offered=offered, applied=offered[:1])
        effect = await eventually(lambda: _measured(kz))
        assert (effect.offered, effect.offered_successes) == (4, 4)
        assert (effect.held_out, effect.held_out_successes) == (3, 1)
        assert effect.lift == pytest.approx(1 - 1 / 3)
        assert effect.low is not None and effect.high is not None
        assert effect.low < effect.lift < effect.high
        assert (await kz.stats()).learning_effect == effect
        assert effect.holdout_fraction == 1.0


async def test_a_measured_learning_says_its_effect(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        await _record(kz, GOOD, True)
        (learning,) = await eventually(lambda: _listed(kz))
        await _record(kz, GOOD, True, offered=[learning.id], applied=[learning.id])

        async def measured() -> list[Any]:
            found = await kz.get_relevant_learnings(TASK, type=LearningType.SUCCESS_PATTERN)
            return [x for x in found if x.effect is not None]

        (after,) = await eventually(measured)
        assert after.effect is not None and after.effect.applied == 1
        assert after.why.effect_weight == 1.0


async def test_feedback_fields_are_validated(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        for bad in ({"applied_learnings": ["x"]}, {"offered_learnings": list(range(101))}):
            body = {"agent_type": "cook", "task_description": TASK, "success": True}
            async with kz.http.post(
                "/interactions", json={**body, "completion_time": 1, **bad}
            ) as r:
                assert r.status == 422
                assert (await r.json())["error"]["code"] == "invalid_request"


async def _record(
    kz: KaizenClient,
    actions: list[dict[str, Any]],
    success: bool,
    *,
    offered: list[int] | None = None,
    applied: list[int] | None = None,
    held_out: bool = False,
) -> None:
    item = attempt(actions, success, offered=offered, applied=applied, held_out=held_out)
    await kz.record_interactions([item])


async def _listed(kz: KaizenClient) -> list[Any]:
    return list(await kz.get_learnings_by_type(LearningType.SUCCESS_PATTERN))


async def _measured(kz: KaizenClient) -> Any:
    effect = await kz.learning_effect()
    return effect if effect.offered >= 4 and effect.lift is not None else None


def sourced(actions: list[dict[str, Any]], success: bool, agent: str, **kw: Any) -> CommittedBatch:
    batch = row(actions, success, **kw)
    batch.items[0].metadata = {"agent_id": agent}
    return batch


def test_a_source_whose_successes_fail_for_others_loses_weight_as_evidence() -> None:
    m = miner()
    lie = [{"type": "shake", "object": "jar"}]
    other_lie = [{"type": "freeze", "object": "jar"}]
    told = success_pattern(fold(m, [sourced(lie, True, "liar")]))
    untested = next(
        d
        for d in fold(m, [sourced(other_lie, True, "liar")]).learnings
        if d.actions != told.actions
    )
    assert untested.confidence == pytest.approx(wilson_lower_bound(1, 1))
    for n in range(5):
        fold(m, [sourced(lie, False, f"honest-{n}", applied=(told.id,))])
    assert m.feedback.reliability("t", "liar", 3.0) == pytest.approx(3 / 8)
    swept = m.sweep(NOW)
    after = next(d for d in swept.learnings if d.id == untested.id)
    assert after.status is LearningStatus.RETIRED  # its one success now weighs under half
    assert m.feedback.reliability("t", "honest-0", 3.0) == 1.0


def test_an_agent_does_not_vouch_for_itself() -> None:
    m = miner()
    told = success_pattern(fold(m, [sourced(BAD, True, "solo")]))
    fold(m, [sourced(BAD, False, "solo", applied=(told.id,))])
    assert m.feedback.reliability("t", "solo", 3.0) == 1.0


@given(
    st.dictionaries(st.text(min_size=1, max_size=4), st.integers(1, 20), max_size=5),
    st.integers(0, 5),
)
def test_the_evidence_weight_is_a_mean_of_reliabilities(
    sources: dict[str, int], unsourced: int
) -> None:
    reliable = {s: (i % 4) / 4 for i, s in enumerate(sources)}
    w = weight(sources, reliable, unsourced)
    assert min(reliable.values(), default=1.0) - 1e-9 <= w <= 1 + 1e-9
    assert weight(sources, {}, unsourced) == 1.0


def test_baselines_are_saved_once_the_tenant_sends_feedback_with_what_came_before() -> None:
    m = miner()
    quiet = fold(m, [row(BAD, False) for _ in range(3)])
    assert quiet.effects == []  # counted, not written: no feedback yet
    learning = success_pattern(fold(m, [row(GOOD, True)]))
    heard = fold(m, [row(GOOD, True, applied=(learning.id,))])
    saved = {subject: state for _, subject, state in heard.effects}
    assert saved[f"c:{learning.clusters[0]}"] == [4, 1]
