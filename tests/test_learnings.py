"""Interactions become learnings, served ranked by relevance x confidence."""

import asyncio

import pytest

from client import Interaction, KaizenClient, NotFoundError
from schemas import ConfidenceLevel, LearningType, ScoredLearning
from server.core.stats import wilson_lower_bound
from tests.conftest import eventually, interaction

FAIL_STEPS = [{"type": "RUN_TESTS"}, {"type": "DEPLOY"}]


async def record(
    kz: KaizenClient, n: int, task: str = "Create Python function", **fields: object
) -> list[int]:
    return await kz.record_interactions(
        [Interaction(**interaction(task, **fields)) for _ in range(n)]
    )


async def learnings_of(
    kz: KaizenClient, kind: LearningType, **query: object
) -> list[ScoredLearning]:
    found = await kz.get_relevant_learnings(type=kind, **query)  # type: ignore[arg-type]
    return found


async def test_interactions_become_a_success_pattern(kz: KaizenClient) -> None:
    ids = await record(kz, 9) + await record(kz, 1, success=False)

    async def probe() -> list[ScoredLearning]:
        found = await learnings_of(kz, LearningType.SUCCESS_PATTERN)
        return [x for x in found if x.support == 10]

    (learning,) = await eventually(probe)
    assert (learning.support, learning.successes, learning.success_rate) == (10, 9, 0.9)
    assert learning.confidence == wilson_lower_bound(9, 10)
    assert learning.confidence_level is ConfidenceLevel.MEDIUM  # 0.596
    assert learning.actions == ['CREATE_FILE path="f.py"', "EXECUTE"]
    assert learning.steps == [{"type": "CREATE_FILE", "path": "f.py"}, {"type": "EXECUTE"}]
    assert learning.evidence == ids[:9]
    assert learning.avg_completion_time == 5.2
    fetched = await kz.get_learning(learning.id)
    assert fetched.model_dump() == learning.model_dump(exclude={"relevance", "score", "why"})


async def test_failures_become_a_failure_pattern(kz: KaizenClient) -> None:
    await record(kz, 3, "Deploy the service to production", success=False, actions_taken=FAIL_STEPS)
    (learning,) = await eventually(lambda: learnings_of(kz, LearningType.FAILURE_PATTERN))
    assert (learning.support, learning.successes) == (3, 0)
    assert learning.confidence == wilson_lower_bound(3, 3)
    assert learning.confidence_level is ConfidenceLevel.MEDIUM
    assert "RUN_TESTS → DEPLOY failed 3 of 3 times" in learning.statement


async def test_min_confidence_filters(kz: KaizenClient) -> None:
    await record(kz, 3)
    await eventually(lambda: learnings_of(kz, LearningType.SUCCESS_PATTERN))
    assert await kz.get_relevant_learnings(min_confidence="MEDIUM")
    assert await kz.get_relevant_learnings(min_confidence="HIGH") == []


async def test_ranking_prefers_relevant_tasks_and_own_agent_type(kz: KaizenClient) -> None:
    await record(kz, 5, "Create Python function")
    await record(kz, 5, "Write unit tests for Python module", agent_type="test")
    await record(kz, 5, "Deploy kubernetes cluster", actions_taken=FAIL_STEPS)
    await eventually(lambda: _count_at_least(kz, 3))
    found = await kz.get_relevant_learnings(
        "Create Python unit tests", agent_type="test", type=LearningType.SUCCESS_PATTERN
    )
    assert [x.task_example for x in found] == [
        "Write unit tests for Python module",
        "Create Python function",
    ]
    assert found[0].score > found[1].score
    other = found[1]
    assert other.why.agent_weight == 0.5
    assert other.score == pytest.approx(
        other.relevance**3 * other.confidence * other.why.recency * 0.5
    )  # relevance_power 3


async def _count_at_least(kz: KaizenClient, n: int) -> bool:
    return len(await kz.get_relevant_learnings(limit=100)) >= n


DISTINCT_TASKS = (
    "Parse CSV files into records",
    "Deploy the web service to kubernetes",
    "Renew the TLS certificate of the mail server",
    "Train an image classifier on photos of cats",
    "Add a dark mode toggle to the settings page",
)


async def test_learnings_page_with_a_cursor(kz: KaizenClient) -> None:
    for task in DISTINCT_TASKS:
        await record(kz, 3, task)
    await eventually(lambda: _count_at_least(kz, 10))
    kind = LearningType.SUCCESS_PATTERN
    first = await kz.learnings(limit=2, type=kind)
    second = await kz.learnings(limit=2, type=kind, cursor=first.next_cursor)
    third = await kz.learnings(limit=2, type=kind, cursor=second.next_cursor)
    ids = [x.id for page in (first, second, third) for x in page.items]
    assert len(ids) == 5 == len(set(ids))
    assert third.next_cursor is None


async def test_unknown_learning_is_not_found(kz: KaizenClient) -> None:
    try:
        await kz.get_learning(999_999)
    except NotFoundError as exc:
        assert exc.status == 404 and exc.code == "not_found"
    else:
        raise AssertionError("expected NotFoundError")


async def test_learnings_keep_up_with_later_interactions(kz: KaizenClient) -> None:
    await record(kz, 3)
    (first,) = await eventually(lambda: learnings_of(kz, LearningType.SUCCESS_PATTERN))
    for round_ in range(1, 4):
        await asyncio.sleep(0.1)
        await record(kz, 2)

        async def grown(n: int = 3 + 2 * round_) -> list[ScoredLearning]:
            return [
                x for x in await learnings_of(kz, LearningType.SUCCESS_PATTERN) if x.support == n
            ]

        (learning,) = await eventually(grown)
        assert learning.id == first.id
        assert learning.confidence == wilson_lower_bound(learning.support, learning.support)
    stats = await kz.stats()
    assert stats.extractor.folded == 9 and stats.extractor.backlog == 0
