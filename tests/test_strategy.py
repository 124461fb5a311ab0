"""The adaptive strategy system and the performance optimizer, end to end: a real
server, the real SDK, a real SQLite file and the real MiniLM model."""

from pathlib import Path

import pytest

from client import Interaction, KaizenClient
from client.errors import BadRequestError, ConflictError, NotFoundError
from schemas import ScoredLearning
from schemas.performance import ExecutionRecord, Priority, RecommendationType, Verdict
from schemas.strategy import Complexity, ExecutionStrategy, TaskAnalysis
from server.runner import KaizenServer
from tests.conftest import eventually, interaction, running
from tests.refusals import assert_refused

API_TASK = "Build a REST API with authentication and tests"


async def test_a_task_without_history_gets_the_documented_prior(kz: KaizenClient) -> None:
    analysis = await kz.analyze_task(API_TASK, {"multiple_files": True})
    assert analysis.complexity is Complexity.COMPLEX
    assert analysis.requirements == ["implementation", "testing", "security", "api"]
    assert analysis.keywords[:3] == ["build", "rest", "api"]
    assert analysis.estimated_duration.basis == "prior"
    assert analysis.estimated_duration.samples == 0
    assert [a.agent_type for a in analysis.suggested_agents] == ["code", "test", "security"]
    assert all(a.support == 0 for a in analysis.suggested_agents)
    trivial = await kz.analyze_task("rename a variable")
    assert trivial.complexity is Complexity.TRIVIAL
    assert trivial.estimated_duration.seconds < analysis.estimated_duration.seconds


async def test_similar_tasks_suggest_agents_and_estimate_duration(kz: KaizenClient) -> None:
    tasks = ["Fix the failing login test", "Repair the broken login unit test"]
    for n in range(8):
        task = tasks[n % 2]
        await kz.record_interactions(
            [
                Interaction(**interaction(task, agent_type="debug", completion_time=40.0 + n)),
                Interaction(
                    **interaction(task, agent_type="code", success=False, completion_time=90.0)
                ),
            ]
        )

    async def placed() -> TaskAnalysis | None:
        found = await kz.analyze_task("The login test fails, fix it")
        return found if found.cluster_id is not None else None

    analysis = await eventually(placed)
    assert [a.agent_type for a in analysis.suggested_agents] == ["debug"]
    assert analysis.suggested_agents[0].success_rate == pytest.approx(1.0)
    duration = analysis.estimated_duration
    assert duration.basis == "similar_tasks"
    assert duration.low < 43.5 < duration.high
    assert duration.seconds == pytest.approx(43.5, abs=0.5)


async def test_outcomes_steer_selection_and_back_off_to_the_agent_set(
    kz: KaizenClient,
) -> None:
    agents = ["code", "test"]
    for _ in range(12):
        chosen = await kz.select_strategy(API_TASK, agent_types=agents)
        assert len(chosen.alternatives) == len(ExecutionStrategy)
        won = chosen.execution_strategy is ExecutionStrategy.PARALLEL
        await kz.record_outcome(
            chosen.strategy_id, task_id=chosen.task_id, success=won, actual_duration=30.0
        )
    for _ in range(6):  # make sure parallel itself has outcomes
        chosen = await kz.select_strategy(API_TASK, agent_types=agents, greedy=True)
        won = chosen.execution_strategy is ExecutionStrategy.PARALLEL
        await kz.record_outcome(
            chosen.strategy_id, task_id=chosen.task_id, success=won, actual_duration=30.0
        )
    best = await kz.select_strategy(API_TASK, agent_types=agents, greedy=True)
    assert best.execution_strategy is ExecutionStrategy.PARALLEL
    assert best.agent_sequence == agents
    unseen = await kz.select_strategy(
        "Write the deployment guide for the billing service", agent_types=agents, greedy=True
    )
    assert unseen.execution_strategy is ExecutionStrategy.PARALLEL  # from the agent-set level
    assert unseen.alternatives[0].level.startswith("agents:")
    stats = await kz.get_strategy_statistics()
    assert stats.outcomes_recorded == 18
    assert stats.strategies_selected == 20
    assert stats.total_tasks_analyzed == 20
    assert stats.learned_patterns >= 2
    assert 0 < (stats.overall_success_rate or 0) < 1


async def test_outcomes_become_task_strategy_learnings(kz: KaizenClient) -> None:
    for _ in range(4):
        chosen = await kz.select_strategy(API_TASK, agent_types=["code"], greedy=True)
        await kz.record_outcome(
            chosen.strategy_id, task_id=chosen.task_id, success=True, actual_duration=12.0
        )

    async def learned() -> list[ScoredLearning]:
        found = await kz.get_learnings_by_type("TASK_STRATEGY")
        return [x for x in found if x.agent_type == "strategy"]

    found = await eventually(learned)
    assert found[0].actions[0].startswith("strategy:")  # the client's spelling, kept
    assert (await kz.get_strategy_statistics()).task_strategy_learnings >= 1
    assert (await kz.get_performance_stats()).executions == 4


async def test_posteriors_survive_a_restart(data_dir: Path) -> None:
    async with running(data_dir) as server, KaizenClient(server.url) as kz:
        await kz.record_interaction(**interaction(API_TASK))

        async def clustered() -> bool:
            return (await kz.analyze_task(API_TASK)).cluster_id is not None

        await eventually(clustered)  # so every selection below has the same contexts
        for strategy_won in [True] * 6:
            chosen = await kz.select_strategy(API_TASK, agent_types=["code"], greedy=True)
            await kz.record_outcome(
                chosen.strategy_id,
                task_id=chosen.task_id,
                success=strategy_won,
                actual_duration=5.0,
            )
        before = await kz.select_strategy(API_TASK, agent_types=["code"], greedy=True)
    async with running(data_dir) as server, KaizenClient(server.url) as kz:
        after = await kz.select_strategy(API_TASK, agent_types=["code"], greedy=True)
        assert after.execution_strategy is before.execution_strategy
        assert after.expected_success == pytest.approx(before.expected_success)
        assert (await kz.get_strategy_statistics()).outcomes_recorded == 6


async def test_an_outcome_is_recorded_once_and_only_for_its_task(kz: KaizenClient) -> None:
    chosen = await kz.select_strategy(API_TASK)
    with pytest.raises(BadRequestError):
        await kz.record_outcome(
            chosen.strategy_id, task_id=chosen.task_id + 1, success=True, actual_duration=1.0
        )
    await kz.record_outcome(
        chosen.strategy_id, task_id=chosen.task_id, success=True, actual_duration=1.0
    )
    with pytest.raises(ConflictError):
        await kz.record_outcome(
            chosen.strategy_id, task_id=chosen.task_id, success=True, actual_duration=1.0
        )
    with pytest.raises(NotFoundError):
        await kz.record_outcome(10_000, task_id=chosen.task_id, success=True, actual_duration=1.0)
    with pytest.raises(NotFoundError):
        await kz.select_strategy(10_000)


async def test_another_tenants_tasks_and_selections_are_invisible(
    tenants: tuple[KaizenServer, str, str],
) -> None:
    server, token_a, token_b = tenants
    async with (
        KaizenClient(server.url, token=token_a) as a,
        KaizenClient(server.url, token=token_b) as b,
    ):
        chosen = await a.select_strategy(API_TASK)
        await a.record_execution(
            agent_type="code", task_category="api", completion_time=3.0, iterations=1, success=True
        )
        with pytest.raises(NotFoundError):
            await b.select_strategy(chosen.task_id)
        with pytest.raises(NotFoundError):
            await b.record_outcome(
                chosen.strategy_id, task_id=chosen.task_id, success=True, actual_duration=1.0
            )
        with pytest.raises(NotFoundError):
            await b.get_agent_performance("code")
        assert (await b.get_strategy_statistics()).strategies_selected == 0


BAD_REQUESTS = [
    ("POST", "/tasks/analyze", b"{nope", 400),
    ("POST", "/tasks/analyze", b'{"description": ""}', 422),
    ("POST", "/tasks/analyze", b'{"description": "x", "colour": 1}', 422),
    ("POST", "/tasks/analyze", b'{"description": 7}', 422),
    ("POST", "/tasks/analyze", b'{"description": "x", "context": []}', 422),
    ("POST", "/tasks/analyze", b'{"description": "' + b"x" * 9000 + b'"}', 422),
    ("POST", "/strategies/select", b"{}", 422),
    ("POST", "/strategies/select", b'{"task_id": "1"}', 422),
    ("POST", "/strategies/select", b'{"task_id": 0}', 422),
    ("POST", "/strategies/select", b'{"description": "x", "agent_types": []}', 422),
    ("POST", "/strategies/select", b'{"description": "x", "agent_types": ["a b"]}', 422),
    ("POST", "/strategies/select", b'{"description": "x", "greedy": "yes"}', 422),
    ("POST", "/strategies/1/outcome", b'{"task_id": 1}', 422),
    (
        "POST",
        "/strategies/1/outcome",
        b'{"task_id": 1, "success": true, "actual_duration": -1}',
        422,
    ),
    ("POST", "/strategies/99999999999999999999/outcome", b"{}", 422),
    ("POST", "/strategies/abc/outcome", b"{}", 404),
    ("POST", "/executions", b'{"agent_type": "a"}', 422),
    ("POST", "/executions", b'{"executions": []}', 422),
    (
        "POST",
        "/executions",
        b'{"agent_type": "a", "task_category": "c", "completion_time": -2, "iterations": 1, '
        b'"success": true, "actions_count": 1}',
        422,
    ),
    ("GET", "/performance/agents/code?window_s=1", None, 422),
    ("GET", "/performance/agents/nobody", None, 404),
    ("GET", "/performance/compare?a=x&b=x", None, 422),
    ("GET", "/performance/compare?a=x", None, 422),
    ("GET", "/recommendations?min_priority=7", None, 422),
    ("GET", "/recommendations?agent_type=a%20b", None, 422),
    ("PUT", "/tasks/analyze", b"{}", 405),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_REQUESTS)
async def test_bad_input_is_refused_in_the_error_shape(
    kz: KaizenClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    await assert_refused(kz, method, path, body, status)
    assert (await kz.get_strategy_statistics()).outcomes_recorded == 0


async def test_performance_profiles_comparisons_and_recommendations(kz: KaizenClient) -> None:
    now_batch: list[ExecutionRecord] = []
    for n in range(40):
        now_batch.append(execution("fast", n, success=n % 10 != 0, time=10.0 + n % 3))
        now_batch.append(execution("slow", n, success=n % 2 == 0, time=60.0 + n % 7))
    assert len(await kz.record_executions(now_batch)) == 80
    fast = await kz.get_agent_performance("fast")
    assert fast.executions == 40
    assert fast.success_rate == pytest.approx(0.9)
    comparison = await kz.compare_agents("fast", "slow")
    assert comparison.verdict is Verdict.A_BETTER
    assert comparison.success_rate.p_value is not None
    assert comparison.success_rate.p_value < 0.05
    recs = await kz.get_recommendations("slow")
    assert RecommendationType.AGENT_SELECTION in {r.type for r in recs}
    assert all(r.expected_improvement.current != r.expected_improvement.expected for r in recs)
    assert await kz.get_recommendations("slow", min_priority=Priority.CRITICAL) == [
        r for r in recs if r.priority is Priority.CRITICAL
    ]


async def test_no_recommendations_on_balanced_data(kz: KaizenClient) -> None:
    batch = [
        execution(agent, n, success=n % 4 != 0, time=20.0 + n % 5)
        for agent in ("a", "b")
        for n in range(40)
    ]
    await kz.record_executions([b.model_copy(update={"errors": []}) for b in batch])
    assert await kz.get_recommendations() == []
    assert (await kz.compare_agents("a", "b")).verdict is Verdict.NO_SIGNIFICANT_DIFFERENCE


def execution(agent: str, n: int, *, success: bool, time: float) -> ExecutionRecord:
    return ExecutionRecord(
        agent_type=agent,
        task_category="api",
        completion_time=time,
        iterations=1 + n % 3,
        success=success,
        errors=[] if success else ["TimeoutError"],
        actions_count=4,
    )
