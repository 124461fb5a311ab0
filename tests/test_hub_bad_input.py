"""Bad hub input, over HTTP and WebSocket: a 4xx or an error frame, nothing written,
and the connection lives on."""

from pathlib import Path
from typing import Any

import orjson
import pytest

from client import KaizenClient
from server.runner import KaizenServer
from tests.conftest import running
from tests.hubkit import draft, raw_peer
from tests.test_bad_input_http import assert_error_shape, post

GOOD = {"knowledge_type": "SOLUTION", "title": "t"}

PUBLISH_CASES: list[tuple[str, bytes, int, str]] = [
    ("malformed json", b'{"title": ', 400, "malformed_json"),
    ("array body", b"[]", 422, "invalid_request"),
    ("unknown type", orjson.dumps(GOOD | {"knowledge_type": "GOSSIP"}), 422, "invalid_request"),
    ("unknown priority", orjson.dumps(GOOD | {"priority": "URGENT"}), 422, "invalid_request"),
    ("title not a string", orjson.dumps(GOOD | {"title": 5}), 422, "invalid_request"),
    ("empty title", orjson.dumps(GOOD | {"title": ""}), 422, "invalid_request"),
    ("context not an object", orjson.dumps(GOOD | {"context": [1]}), 422, "invalid_request"),
    ("tag with a space", orjson.dumps(GOOD | {"tags": ["a b"]}), 422, "invalid_request"),
    (
        "too many tags",
        orjson.dumps(GOOD | {"tags": [str(n) for n in range(33)]}),
        422,
        "invalid_request",
    ),
    ("unknown field", orjson.dumps(GOOD | {"colour": "red"}), 422, "invalid_request"),
    ("bad channel name", orjson.dumps(GOOD | {"channel": "Has Caps"}), 422, "invalid_request"),
    ("pattern as channel", orjson.dumps(GOOD | {"channel": "code.*"}), 422, "invalid_request"),
    ("unknown channel", orjson.dumps(GOOD | {"channel": "nowhere"}), 404, "not_found"),
    ("oversized", orjson.dumps(GOOD | {"content": "x" * 70_000}), 413, "payload_too_large"),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "code"), PUBLISH_CASES, ids=[c[0] for c in PUBLISH_CASES]
)
async def test_bad_publish_writes_nothing(
    kz: KaizenClient, name: str, body: bytes, status: int, code: str
) -> None:
    got, reply = await post(kz, "/knowledge", body)
    assert got == status, reply
    assert_error_shape(reply, code)
    assert (await kz.query_knowledge()).items == []
    assert (await kz.stats()).hub.published == 0


OTHER_CASES: list[tuple[str, str, str, bytes | None, int, str]] = [
    (
        "solution without problem",
        "POST",
        "/knowledge/solutions",
        b'{"solution": "s"}',
        422,
        "invalid_request",
    ),
    (
        "discovery wrong type",
        "POST",
        "/knowledge/discoveries",
        b'{"title": 1}',
        422,
        "invalid_request",
    ),
    ("vote on nothing", "POST", "/knowledge/99/vote", None, 404, "not_found"),
    ("vote huge id", "POST", "/knowledge/99999999999999999999999/vote", None, 404, "not_found"),
    ("vote bad body", "POST", "/knowledge/1/vote", b'{"agent": 3}', 422, "invalid_request"),
    ("applied on nothing", "POST", "/knowledge/99/applied", None, 404, "not_found"),
    ("get nothing", "GET", "/knowledge/99", None, 404, "not_found"),
    ("query without words", "GET", "/knowledge?query=%22%2A%22", None, 422, "invalid_request"),
    ("bad tags", "GET", "/knowledge?tags=a%20b", None, 422, "invalid_request"),
    ("bad cursor", "GET", "/knowledge?cursor=zzz", None, 422, "invalid_request"),
    ("limit too big", "GET", "/knowledge?limit=100000", None, 422, "invalid_request"),
    ("bad priority", "GET", "/knowledge?min_priority=HUGE", None, 422, "invalid_request"),
    ("unknown channel query", "GET", "/knowledge?channel=nowhere", None, 404, "not_found"),
    ("bad channel create", "POST", "/channels", b'{"name": "a..b"}', 422, "invalid_request"),
    ("duplicate channel", "POST", "/channels", b'{"name": "general"}', 409, "conflict"),
    ("delete a default", "DELETE", "/channels/general", None, 403, "forbidden"),
    ("delete nothing", "DELETE", "/channels/nowhere", None, 404, "not_found"),
    ("popular bad limit", "GET", "/knowledge/popular?limit=0", None, 422, "invalid_request"),
]


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "status", "code"),
    OTHER_CASES,
    ids=[c[0] for c in OTHER_CASES],
)
async def test_bad_hub_requests(
    kz: KaizenClient, name: str, method: str, path: str, body: bytes | None, status: int, code: str
) -> None:
    await kz.share_solution("p", "s")
    async with kz.http.request(method, path, data=body) as resp:
        got, reply = resp.status, orjson.loads(await resp.read())
    assert got == status, reply
    assert_error_shape(reply, code)
    assert (await kz.get_knowledge(1)).votes == 0


WS_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown op", {"op": "teleport"}, "unknown_op"),
    ("subscribe bad pattern", {"op": "subscribe", "channel": "co*de"}, "invalid_request"),
    ("subscribe unknown channel", {"op": "subscribe", "channel": "nowhere"}, "not_found"),
    (
        "subscribe bad since",
        {"op": "subscribe", "channel": "general", "since": {"general": 5}},
        "invalid_request",
    ),
    ("subscribe wrong type", {"op": "subscribe", "channel": 7}, "invalid_request"),
    ("unsubscribe stranger", {"op": "unsubscribe", "channel": "general"}, "not_found"),
    ("publish no message", {"op": "publish"}, "invalid_request"),
    (
        "publish bad type",
        {"op": "publish", "message": draft("x", knowledge_type="X")},
        "invalid_request",
    ),
    (
        "publish oversized",
        {"op": "publish", "message": draft("x", content="y" * 70_000)},
        "payload_too_large",
    ),
    (
        "publish unknown channel",
        {"op": "publish", "message": draft("x", channel="nowhere")},
        "not_found",
    ),
    ("vote nothing", {"op": "vote", "knowledge_id": 42}, "not_found"),
    ("vote bad id", {"op": "vote", "knowledge_id": "42"}, "invalid_request"),
    ("get nothing", {"op": "get_knowledge", "knowledge_id": 42}, "not_found"),
    ("query no words", {"op": "query_knowledge", "query": {"query": "!!"}}, "invalid_request"),
    ("create duplicate", {"op": "create_channel", "name": "general"}, "conflict"),
    ("delete default", {"op": "delete_channel", "name": "general"}, "forbidden"),
]


@pytest.mark.parametrize(("name", "frame", "code"), WS_CASES, ids=[c[0] for c in WS_CASES])
async def test_bad_frames_get_error_frames_and_the_socket_lives(
    server: KaizenServer, kz: KaizenClient, name: str, frame: dict[str, Any], code: str
) -> None:
    async with raw_peer(server.url) as peer:
        fields = {k: v for k, v in frame.items() if k != "op"}
        reply = await peer.call(frame["op"], **fields)
        assert reply["type"] == "error" and reply["error"]["code"] == code, reply
        assert (await peer.call("ping"))["type"] == "reply"
    assert (await kz.stats()).hub.published == 0


async def test_subscription_and_rate_limits(data_dir: Path) -> None:
    limits = {"hub_max_subscriptions": 2, "hub_publish_rate": 1.0, "hub_publish_burst": 3}
    async with running(data_dir, **limits) as server, raw_peer(server.url) as peer:
        for channel in ("general", "code"):
            assert (await peer.call("subscribe", channel=channel))["type"] == "reply"
        refused = await peer.call("subscribe", channel="testing")
        assert refused["error"]["code"] == "invalid_request"
        assert refused["error"]["details"]["max_subscriptions"] == 2
        again = await peer.call("subscribe", channel="code", min_priority="HIGH")
        assert again["type"] == "reply"
        replies = [await peer.call("publish", message=draft(f"m{n}")) for n in range(4)]
        assert [r["type"] for r in replies] == ["reply", "reply", "reply", "error"]
        assert replies[-1]["error"]["code"] == "rate_limited"
        assert replies[-1]["error"]["details"]["retry_after_s"] > 0
        async with KaizenClient(server.url) as kz:
            assert (await kz.stats()).hub.published == 3
