"""Service calls over `/ws` (schemas/calls.py): each capability's WebSocket face,
its error frames, and tenants."""

from typing import Any

import pytest

from client import Interaction, KaizenClient
from client.errors import BadRequestError, NotFoundError
from server.runner import KaizenServer
from tests.conftest import interaction


async def test_each_capability_answers_over_the_socket(kz: KaizenClient) -> None:
    ws = kz.socket
    analysis = await ws.call("analyze_task", {"description": "Write unit tests for the parser"})
    assert analysis["requirements"] == ["implementation", "testing"]
    chosen = await ws.call("select_strategy", {"task_id": analysis["task_id"], "greedy": True})
    outcome = await ws.call(
        "record_outcome",
        {
            "strategy_id": chosen["strategy_id"],
            "task_id": analysis["task_id"],
            "success": True,
            "actual_duration": 3.5,
        },
    )
    assert outcome["success"] is True
    assert (await ws.call("strategy_statistics"))["outcomes_recorded"] == 1
    assert (
        await ws.call(
            "agent_performance", {"agent_type": "strategy:" + chosen["execution_strategy"]}
        )
    )["executions"] == 1
    events = [
        {
            "event_type": "command_executed",
            "session_id": "w",
            "timestamp": 1.0 + n,
            "metadata": {"command": c},
        }
        for n, c in enumerate(["git pull", "pytest", "git commit"])
    ]
    assert (await ws.call("record_events", {"events": events}))["accepted"] == 3
    assert (await ws.call("workflow_stats"))["active_sessions"] == 1
    session = await ws.call("session_start", {"session_id": "chat"})
    assert session["state"] == "open"
    assert (
        await ws.call("session_message", {"session_id": "chat", "role": "user", "content": "hi"})
    )["seq"] == 1
    assert (await ws.call("session_end", {"session_id": "chat"}))["state"] in ("ended", "processed")
    item = await ws.call("kb_add", {"category": "patterns", "title": "TDD", "content": {"a": 1}})
    updated = await ws.call(
        "kb_update", {"item_id": item["id"], "patch": {"change_note": "why", "content": {"a": 2}}}
    )
    assert updated["version"] == 2
    assert (await ws.call("kb_usage", {"item_id": item["id"], "success": True}))["id"] == item["id"]
    assert (await ws.call("models"))["items"] == []
    assert (await ws.call("jobs"))["items"] == []


@pytest.mark.parametrize(
    ("op", "args", "error"),
    [
        ("analyze_task", {"description": ""}, BadRequestError),
        ("analyze_task", {"description": "x", "extra": 1}, BadRequestError),
        ("select_strategy", {"task_id": 999}, NotFoundError),
        (
            "record_outcome",
            {"strategy_id": 0, "task_id": 1, "success": True, "actual_duration": 1},
            BadRequestError,
        ),
        ("session_message", {"session_id": "nope", "role": "user", "content": "x"}, NotFoundError),
        ("kb_get", {"item_id": "1"}, BadRequestError),
        ("get_job", {"job_id": 5}, NotFoundError),
        ("promote_model", {"version": "latest"}, BadRequestError),
        ("next_commands", {}, BadRequestError),
    ],
)
async def test_bad_calls_get_error_frames_and_the_socket_survives(
    kz: KaizenClient, op: Any, args: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await kz.socket.call(op, args)
    assert (await kz.socket.call("workflow_stats"))["running"] is True


async def test_an_unknown_call_is_refused(kz: KaizenClient) -> None:
    with pytest.raises(BadRequestError):
        await kz.socket.call("drop_tables", {})


async def test_calls_see_only_their_tenant(tenants: tuple[KaizenServer, str, str]) -> None:
    server, token_a, token_b = tenants
    async with (
        KaizenClient(server.url, token=token_a) as a,
        KaizenClient(server.url, token=token_b) as b,
    ):
        item = await a.socket.call("kb_add", {"category": "c", "title": "mine"})
        with pytest.raises(NotFoundError):
            await b.socket.call("kb_get", {"item_id": item["id"]})
        await a.socket.call("session_start", {"session_id": "s1"})
        with pytest.raises(NotFoundError):
            await b.socket.call("get_session", {"session_id": "s1"})


async def test_reads_answer_over_the_socket_as_over_http(kz: KaizenClient) -> None:
    (first,) = await kz.record_interactions([Interaction(**interaction("Parse dates"))])
    ws = kz.socket
    assert await ws.call("learning_effect") == (await kz.learning_effect()).model_dump(mode="json")
    got = await ws.call("get_interaction", {"interaction_id": first})
    assert got["task_description"] == "Parse dates"
    page = await ws.call("list_interactions", {"limit": 5})
    assert [i["id"] for i in page["items"]] == [first]
    channel = await ws.call("get_channel", {"name": "general"})
    assert channel == (await kz.get_channel("general")).model_dump(mode="json")
    with pytest.raises(NotFoundError):
        await ws.call("get_interaction", {"interaction_id": first + 1})
