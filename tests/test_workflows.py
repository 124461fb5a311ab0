"""The workflow learner end to end: events over HTTP, sessions closed by
idle time on a manual clock, learned workflows, next-command predictions, restart
recovery and bad input."""

import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from client import KaizenClient, LearningType
from client.errors import NotFoundError
from schemas import ScoredLearning
from server.core.clock import ManualClock
from server.runner import KaizenServer
from tests.conftest import eventually, settings_for
from tests.refusals import assert_refused

LOOP = ["git pull", "vim app.py", "pytest -x", "vim app.py", "pytest", "git commit -m wip"]
T0 = 1_700_000_000.0


@contextlib.asynccontextmanager
async def kaizen(
    data_dir: Path, clock: ManualClock, **overrides: Any
) -> AsyncIterator[KaizenClient]:
    server = KaizenServer(settings_for(data_dir, workflow_tick_s=0.02, **overrides), clock)
    await server.start()
    try:
        async with KaizenClient(server.url) as kz:
            yield kz
    finally:
        await server.stop()


def commands(session: str, cmds: list[str], start: float) -> list[dict[str, Any]]:
    return [
        {
            "event_type": "command_executed",
            "session_id": session,
            "timestamp": start + n,
            "metadata": {"command": c},
        }
        for n, c in enumerate(cmds)
    ]


async def learn_loops(kz: KaizenClient, clock: ManualClock, sessions: int) -> None:
    for n in range(sessions):
        await kz.record_events(commands(f"dev-{n}", LOOP, clock.now()))
    clock.advance(301)

    async def learned() -> int:
        return (await kz.get_workflow_stats()).sessions_learned >= sessions

    await eventually(learned)


async def test_idle_sessions_become_workflows(data_dir: Path) -> None:
    clock = ManualClock(T0)
    async with kaizen(data_dir, clock) as kz:
        await kz.record_events(commands("short", ["ls", "pwd"], T0))
        await kz.record_events(commands("open", LOOP, T0))
        clock.advance(299)
        await kz.record_events(commands("open", ["git push"], clock.now()))
        clock.advance(2)  # "short" is now idle; "open" is not
        await eventually(lambda: _stat(kz, "sessions_skipped"))
        stats = await kz.get_workflow_stats()
        assert (stats.sessions_learned, stats.sessions_skipped, stats.active_sessions) == (0, 1, 1)
        await learn_loops(kz, clock, 3)
        flows = await kz.get_workflows()
        loop = next(w for w in flows if w.commands[:2] == ["git pull", "vim"])
        assert loop.support == 4
        assert loop.success_rate == 1.0
        assert 0 < loop.confidence < 1


async def test_next_command_predictions(data_dir: Path) -> None:
    clock = ManualClock(T0)
    async with kaizen(data_dir, clock) as kz:
        await learn_loops(kz, clock, 5)
        found = await kz.next_commands(["git pull", "vim app.py"])
        assert found.after == ["git pull", "vim app.py"]
        assert found.predictions[0].command == "pytest"
        assert found.predictions[0].probability > 0.5
        assert sum(p.probability for p in found.predictions) <= 1.0 + 1e-9
        await kz.record_events(commands("live", ["git pull", "vim x.py"], clock.now()))
        live = await kz.next_commands(session_id="live")
        assert live.source == "session"
        assert live.predictions[0].command == "pytest"
        both = await kz.next_commands(["vim app.py"], session_id="live")
        assert (both.source, both.after) == ("after", ["vim app.py"])


async def test_what_follows_a_failure_is_learned_apart(data_dir: Path) -> None:
    clock = ManualClock(T0)
    fixed = ["vim app.py", "pytest", "vim app.py", "pytest", "git commit -m fix"]
    async with kaizen(data_dir, clock) as kz:
        for n in range(4):
            events = commands(f"fix-{n}", fixed, clock.now())
            events[1]["metadata"]["exit_code"] = 1
            await kz.record_events(events)
        clock.advance(301)
        await eventually(lambda: _stat(kz, "sessions_learned", 4))
        after_failure = await kz.next_commands(["pytest -x!"], k=1)
        after_success = await kz.next_commands(["pytest -x"], k=1)
        assert after_failure.predictions[0].command == "vim"
        assert after_success.predictions[0].command == "git commit"


async def workflow_learnings(kz: KaizenClient, at_least: int = 1) -> list[ScoredLearning]:
    found = await kz.get_learnings_by_type(LearningType.WORKFLOW)
    return found if len(found) >= at_least else []


async def test_workflows_appear_in_learnings(data_dir: Path) -> None:
    clock = ManualClock(T0)
    async with kaizen(data_dir, clock) as kz:
        await learn_loops(kz, clock, 4)
        stated = await eventually(lambda: workflow_learnings(kz, 2))
        assert {tuple(w.actions) for w in stated} == {
            ("git pull", "vim", "pytest", "vim", "pytest"),
            ("vim", "pytest", "vim", "pytest", "git commit"),
        }
        assert all(w.agent_type == "workflow" and w.support == 4 for w in stated)
        flows = {tuple(f.commands): f.confidence for f in await kz.get_workflows()}
        assert all(w.confidence == pytest.approx(flows[tuple(w.actions)]) for w in stated)
        asked = await kz.get_relevant_learnings("git pull, then pytest", type="WORKFLOW")
        assert asked[0].actions[0] == "git pull"
        assert asked[0].why.matched_terms == ["git", "pull", "pytest"]
    async with kaizen(data_dir, clock) as kz:  # restarted: the same learnings, same ids
        again = await kz.get_learnings_by_type(LearningType.WORKFLOW)
        assert sorted(w.id for w in again) == sorted(w.id for w in stated)


async def test_a_workflow_that_drops_out_is_retired(data_dir: Path) -> None:
    clock = ManualClock(T0)
    async with kaizen(data_dir, clock, workflow_learnings=1) as kz:
        await learn_loops(kz, clock, 3)
        (first,) = await eventually(lambda: workflow_learnings(kz))
        build = ["git pull", "make", "make test", "git push"]
        for n in range(5):
            await kz.record_events(commands(f"build-{n}", build, clock.now()))
        clock.advance(301)
        (second,) = await eventually(lambda: _replaced(kz, first.id))
        assert second.actions == ["git pull", "make", "make test", "git push"]
        assert (await kz.get_learning(first.id)).status == "retired"


async def _replaced(kz: KaizenClient, old: int) -> list[ScoredLearning]:
    found = await workflow_learnings(kz)
    return found if found and found[0].id != old else []


async def test_a_reported_outcome_replaces_the_inferred_one(data_dir: Path) -> None:
    clock = ManualClock(T0)
    async with kaizen(data_dir, clock) as kz:
        for n in range(3):
            await kz.record_events(commands(f"s{n}", LOOP, clock.now()))
            assert (await kz.report_workflow_outcome(f"s{n}", success=False)).applied
        assert not (await kz.report_workflow_outcome("never-seen", success=True)).applied
        clock.advance(301)
        await eventually(lambda: _stat(kz, "sessions_learned"))
        loop = (await kz.get_workflows())[0]
        assert loop.success_rate == 0.0


async def test_events_and_learning_survive_a_restart(data_dir: Path) -> None:
    clock = ManualClock(T0)
    async with kaizen(data_dir, clock) as kz:
        await learn_loops(kz, clock, 3)
        await kz.record_events(commands("half", LOOP[:3], clock.now()))
    async with kaizen(data_dir, clock, workflow_checkpoint_s=3600) as kz:
        assert len(await kz.get_workflows()) > 0
        assert (await kz.get_workflow_stats()).active_sessions == 1
        await kz.record_events(commands("half", LOOP[3:], clock.now()))
    async with kaizen(data_dir, clock) as kz:  # the last batch came back by replay
        clock.advance(301)
        await eventually(lambda: _stat(kz, "sessions_learned", at_least=4))
        assert (await kz.get_workflows())[0].support == 4


async def test_tenants_do_not_share_workflows(
    tenants: tuple[KaizenServer, str, str],
) -> None:
    server, token_a, token_b = tenants
    async with (
        KaizenClient(server.url, token=token_a) as a,
        KaizenClient(server.url, token=token_b) as b,
    ):
        await a.record_events(commands("shared-id", LOOP, T0))
        assert (await b.get_workflow_stats()).events_processed == 0
        with pytest.raises(NotFoundError):
            await b.next_commands(session_id="shared-id")
        assert (await a.next_commands(session_id="shared-id")).source == "session"


BAD = [
    ("POST", "/events", b"{", 400),
    ("POST", "/events", b'{"events": []}', 422),
    ("POST", "/events", b'{"events": [{"event_type": "x"}]}', 422),
    (
        "POST",
        "/events",
        b'{"events": [{"event_type": "has space", "session_id": "s", "timestamp": 1}]}',
        422,
    ),
    (
        "POST",
        "/events",
        b'{"events": [{"event_type": "file_save", "session_id": "", "timestamp": 1}]}',
        422,
    ),
    (
        "POST",
        "/events",
        b'{"events": [{"event_type": "file_save", "session_id": "s", "timestamp": "soon"}]}',
        422,
    ),
    (
        "POST",
        "/events",
        b'{"events": [{"event_type": "file_save", "session_id": "s", "timestamp": 1, "metadata": []}]}',
        422,
    ),
    (
        "POST",
        "/events",
        b'{"events": [{"event_type": "file_save", "session_id": "s", "timestamp": 1, "extra": 1}]}',
        422,
    ),
    ("GET", "/workflows?limit=0", None, 422),
    ("GET", "/workflows?min_length=9", None, 422),
    ("GET", "/workflows/next", None, 422),
    ("GET", "/workflows/next?after=a&k=99", None, 422),
    ("GET", "/workflows/next?session_id=nobody", None, 404),
    ("POST", "/workflows/outcome", b'{"session_id": "s"}', 422),
    ("POST", "/workflows/outcome", b'{"session_id": "s", "success": "no"}', 422),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD)
async def test_bad_input(
    kz: KaizenClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    await assert_refused(kz, method, path, body, status)
    assert (await kz.get_workflow_stats()).events_processed == 0


async def test_too_many_events_in_one_batch(kz: KaizenClient) -> None:
    events = commands("big", ["ls"] * 10_001, T0)
    body = io.BytesIO(orjson.dumps({"events": events}))
    async with kz.http.post("/events", data=body) as resp:
        assert resp.status == 422


async def _stat(kz: KaizenClient, name: str, at_least: int = 1) -> bool:
    return int(getattr(await kz.get_workflow_stats(), name)) >= at_least
