"""Bad HTTP input gets a 4xx in the error shape and writes nothing."""

from pathlib import Path
from typing import Any

import orjson
import pytest

from client import KaizenClient
from schemas.common import MAX_JSON_DEPTH
from tests.conftest import interaction, running

CASES: list[tuple[str, bytes, int, str]] = [
    ("malformed json", b'{"agent_type": "code",', 400, "malformed_json"),
    ("not json at all", b"\xff\xfe garbage", 400, "malformed_json"),
    ("wrong type", orjson.dumps(interaction(success="yes")), 422, "invalid_request"),
    ("number as string", orjson.dumps(interaction(completion_time="5")), 422, "invalid_request"),
    ("unknown field", orjson.dumps(interaction(colour="red")), 422, "invalid_request"),
    ("missing field", orjson.dumps({"agent_type": "code"}), 422, "invalid_request"),
    ("negative time", orjson.dumps(interaction(completion_time=-1)), 422, "invalid_request"),
    ("bad agent name", orjson.dumps(interaction(agent_type="has space")), 422, "invalid_request"),
    ("array body", b"[1, 2]", 422, "invalid_request"),
    ("empty batch", orjson.dumps({"interactions": []}), 422, "invalid_request"),
    (
        "one bad item in a batch",
        orjson.dumps({"interactions": [interaction(), interaction(success=3)]}),
        422,
        "invalid_request",
    ),
]


async def post(kz: KaizenClient, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    async with kz.http.post(path, data=body) as resp:
        return resp.status, orjson.loads(await resp.read())


def assert_error_shape(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code


@pytest.mark.parametrize(("name", "body", "status", "code"), CASES, ids=[c[0] for c in CASES])
async def test_bad_bodies_are_refused_and_write_nothing(
    kz: KaizenClient, name: str, body: bytes, status: int, code: str
) -> None:
    got_status, got = await post(kz, "/interactions", body)
    assert got_status == status
    assert_error_shape(got, code)
    assert (await kz.stats()).counts.interactions == 0


async def test_oversized_body_is_413(data_dir: Path) -> None:
    async with running(data_dir, max_body_bytes=4096) as server:
        async with KaizenClient(server.url) as kz:
            big = orjson.dumps(interaction(metadata={"blob": "x" * 10_000}))
            status, body = await post(kz, "/interactions", big)
            assert status == 413
            assert_error_shape(body, "payload_too_large")
            assert (await kz.stats()).counts.interactions == 0


async def test_batch_over_the_limit_is_refused_whole(data_dir: Path) -> None:
    async with running(data_dir, max_batch=3) as server:
        async with KaizenClient(server.url) as kz:
            status, body = await post(
                kz, "/interactions", orjson.dumps({"interactions": [interaction()] * 4})
            )
            assert status == 413
            assert_error_shape(body, "batch_too_large")
            assert body["error"]["details"] == {"max_batch": 3}
            assert (await kz.stats()).counts.interactions == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("PUT", "/interactions", 405, "method_not_allowed"),
        ("GET", "/interactions/abc", 404, "not_found"),
        ("GET", "/interactions/99999999999999999999999", 404, "not_found"),
        ("GET", "/learnings?limit=0", 422, "invalid_request"),
        ("GET", "/learnings?limit=many", 422, "invalid_request"),
        ("GET", "/learnings?min_confidence=SURE", 422, "invalid_request"),
        ("GET", "/learnings?type=GUESS", 422, "invalid_request"),
        ("GET", "/learnings?colour=red", 422, "invalid_request"),
        ("GET", "/learnings?cursor=!!!", 422, "invalid_request"),
        ("GET", "/learnings?cursor=eyJhZnRlciI6Mn0", 422, "invalid_request"),
        ("GET", "/interactions?cursor=eyJvZmZzZXQiOiJ4In0", 422, "invalid_request"),
        ("GET", "/interactions?limit=100000", 422, "invalid_request"),
        ("DELETE", "/tokens/nope", 404, "not_found"),
    ],
)
async def test_bad_paths_and_queries(
    kz: KaizenClient, method: str, path: str, status: int, code: str
) -> None:
    async with kz.http.request(method, path) as resp:
        assert resp.status == status
        assert_error_shape(orjson.loads(await resp.read()), code)


async def test_bad_token_body(kz: KaizenClient) -> None:
    status, body = await post(kz, "/tokens", b'{"agent": 5}')
    assert status == 422
    assert_error_shape(body, "invalid_request")


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize("depth", [196, 300, 1000])
async def test_json_nested_too_deep_is_refused(kz: KaizenClient, depth: int) -> None:
    deep = b'{"x":' * depth + b"1" + b"}" * depth  # by hand: orjson writes only ~254 levels
    raw = orjson.dumps(interaction(metadata={})).replace(b'"metadata":{}', b'"metadata":' + deep)
    status, body = await post(kz, "/interactions", raw)
    assert status == 422
    assert_error_shape(body, "invalid_request")
    assert (await kz.stats()).counts.interactions == 0


async def test_json_nested_near_the_limit_round_trips(kz: KaizenClient) -> None:
    deepest = nested(MAX_JSON_DEPTH - 1)  # the interaction itself is the first level
    status, body = await post(kz, "/interactions", orjson.dumps(interaction(metadata=deepest)))
    assert status == 201
    stored = await kz.get_interaction(body["ids"][0])
    assert stored.metadata == deepest
    assert len((await kz.list_interactions()).items) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/interactions?cursor=eyJhZnRlciI6MTg0NDY3NDQwNzM3MDk1NTE2MTV9",  # after = 2**64 - 1
        "/learnings?cursor=eyJvZmZzZXQiOi0xfQ",  # offset = -1
    ],
)
async def test_out_of_range_cursors_are_refused(kz: KaizenClient, path: str) -> None:
    async with kz.http.get(path) as resp:
        assert resp.status == 422
        assert_error_shape(orjson.loads(await resp.read()), "invalid_request")


async def test_an_absurdly_long_id_is_not_found(kz: KaizenClient) -> None:
    async with kz.http.get("/interactions/" + "9" * 5000) as resp:
        assert resp.status == 404
        assert_error_shape(orjson.loads(await resp.read()), "not_found")


async def test_a_method_not_allowed_says_which_are(kz: KaizenClient) -> None:
    async with kz.http.request("TRACE", "/learnings") as r:
        assert r.status == 405
        assert "GET" in r.headers["Allow"]
        assert (await r.json())["error"]["code"]
