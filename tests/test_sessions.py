"""Chat sessions end to end: the SDK's session context, the
pipeline after the end (topics, preferences, memory, training examples, logs),
an isolated stage failure, idle timeouts on a manual clock, tenants, bad input."""

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from client import KaizenClient
from client.errors import ConflictError, NotFoundError
from schemas.chat import SessionInfo, SessionState
from server.app import EMBEDDER
from server.core.clock import ManualClock
from server.runner import KaizenServer
from tests.conftest import eventually, settings_for
from tests.refusals import assert_refused

CHAT = [
    ("user", "How do I connect two docker containers so they can talk over the network?"),
    (
        "assistant",
        "Create a user-defined bridge network with `docker network create appnet`, then start "
        "both containers with `--network appnet`. Containers on the same bridge network resolve "
        "each other by container name through Docker's embedded DNS.",
    ),
    ("user", "Thanks, that worked! Can you show me code for a docker compose file with it?"),
    (
        "assistant",
        "services:\n  web:\n    image: nginx\n    networks: [appnet]\n  api:\n    image: my-api\n"
        "    networks: [appnet]\nnetworks:\n  appnet: {}\n\nCompose puts both services on appnet.",
    ),
    ("user", "Perfect, thank you."),
]


@contextlib.asynccontextmanager
async def kaizen(
    data_dir: Path, clock: ManualClock | None = None, **overrides: Any
) -> AsyncIterator[tuple[KaizenServer, KaizenClient]]:
    server = KaizenServer(settings_for(data_dir, session_sweep_s=0.02, **overrides), clock)
    await server.start()
    try:
        async with KaizenClient(server.url) as kz:
            yield server, kz
    finally:
        await server.stop()


async def processed(kz: KaizenClient, sid: str) -> SessionInfo:
    async def done() -> SessionInfo | None:
        info = await kz.get_session(sid)
        return info if info.state is SessionState.PROCESSED else None

    return await eventually(done, timeout=30)


async def test_a_session_becomes_logs_memory_and_training_examples(data_dir: Path) -> None:
    async with kaizen(data_dir) as (_, kz):
        async with kz.session(metadata={"project": "infra"}) as s:
            for role, text in CHAT:
                await s.log(role, text)
        assert s.ended
        info = await processed(kz, s.id)
        report = info.report
        assert report is not None
        assert all(stage.ok for stage in report.stages)
        assert [st.name for st in report.stages] == [
            "topics",
            "preferences",
            "memory",
            "examples",
            "log",
        ]
        phrases = " ".join(t.phrase for t in report.topics)
        assert "docker" in phrases or "network" in phrases
        assert report.topic_method == "embedding"
        assert {(p.name, p.value) for p in report.preferences} >= {("code_examples", "wanted")}
        assert report.memory_items == len(CHAT)
        assert report.examples_kept >= 2
        hits = await kz.search_memory("linking containers on a private network")
        assert hits.method == "embedding"
        assert hits.items[0].session_id == s.id
        assert "network" in hits.items[0].content
        assert hits.items[-1].content == "Perfect, thank you."  # least related, last
        stats = await kz.get_session_stats()
        assert (stats.sessions_processed, stats.total_messages) == (1, len(CHAT))
        assert stats.examples_prepared == report.examples_kept
        assert (await kz.stats()).sessions == stats
    logs = data_dir / "logs"
    session_logs = list(logs.glob("session_log_*.json"))
    assert len(session_logs) == 1
    assert json.loads(session_logs[0].read_text())["session_id"] == s.id
    master = (logs / "master_log.jsonl").read_text().splitlines()
    assert len(master) == 1
    assert json.loads((logs / "daemon_stats.json").read_text())["sessions_processed"] == 1


async def test_messages_are_embedded_as_they_arrive(data_dir: Path) -> None:
    async with kaizen(data_dir) as (_, kz):

        async def embedded(at_least: int) -> bool:
            return (await kz.stats()).learning.embedded_texts >= at_least

        before = (await kz.stats()).learning
        async with kz.session() as s:
            for role, text in CHAT:
                await s.log(role, text)
            await eventually(lambda: embedded(before.embedded_texts + len(CHAT)))
        await processed(kz, s.id)
        after = (await kz.stats()).learning
        assert after.embedding_cache_hits - before.embedding_cache_hits >= 2 * len(CHAT)


async def test_a_failed_stage_leaves_the_others_running(data_dir: Path) -> None:
    async with kaizen(data_dir) as (server, kz):
        async with kz.session() as s:
            for role, text in CHAT:
                await s.log(role, text)
            embedder = server.app[EMBEDDER]
            assert embedder is not None
            await embedder.close()  # the memory stage needs it; topics fall back to RAKE
        report = (await processed(kz, s.id)).report
        assert report is not None
        outcome = {st.name: st.ok for st in report.stages}
        assert outcome == {
            "topics": True,
            "preferences": True,
            "memory": False,
            "examples": True,
            "log": True,
        }
        assert report.topic_method == "rake"
        assert report.examples_kept >= 2
    master = (data_dir / "logs" / "master_log.jsonl").read_text()
    assert "memory" in master


async def test_an_idle_session_is_ended_on_the_clock(data_dir: Path) -> None:
    clock = ManualClock()
    async with kaizen(data_dir, clock, session_idle_s=60) as (_, kz):
        quiet = await kz.session("quiet")
        busy = await kz.session("busy")
        await quiet.log("user", "hello there, how do I rebase?")
        clock.advance(45)
        await busy.log("user", "still here")
        clock.advance(20)  # quiet: 65 s idle; busy: 20 s
        await processed(kz, "quiet")
        assert (await kz.get_session("busy")).state is SessionState.OPEN
        with pytest.raises(ConflictError):
            await quiet.log("user", "too late")


async def test_sessions_are_per_tenant(tenants: tuple[KaizenServer, str, str]) -> None:
    server, token_a, token_b = tenants
    async with (
        KaizenClient(server.url, token=token_a) as a,
        KaizenClient(server.url, token=token_b) as b,
    ):
        s = await a.session("private")
        await s.log("user", "secret plans for the kubernetes migration")
        with pytest.raises(NotFoundError):
            await b.get_session("private")
        with pytest.raises(NotFoundError):
            await b.add_message("private", "user", "hi")
        with pytest.raises(NotFoundError):
            await b.end_session("private")
        mine = await b.session("private")  # the same id is free in another tenant
        assert mine.id == "private"
        await s.end()
        await processed(a, "private")
        assert (await b.search_memory("kubernetes migration")).items == []


async def test_session_errors(kz: KaizenClient) -> None:
    s = await kz.session("once")
    with pytest.raises(ConflictError):
        await kz.session("once")
    await s.end()
    assert (await s.end()).state in (SessionState.ENDED, SessionState.PROCESSED)  # idempotent
    with pytest.raises(ConflictError):
        await kz.add_message("once", "user", "after the end")
    with pytest.raises(ConflictError):
        await kz.end_session("once")
    with pytest.raises(NotFoundError):
        await kz.add_message("nobody", "user", "hi")


BAD = [
    ("POST", "/sessions", b"{", 400),
    ("POST", "/sessions", b'{"session_id": "has space"}', 422),
    ("POST", "/sessions", b'{"session_id": 5}', 422),
    ("POST", "/sessions", b'{"colour": "red"}', 422),
    ("POST", "/sessions/x/messages", b'{"role": "robot", "content": "hi"}', 422),
    ("POST", "/sessions/x/messages", b'{"role": "user", "content": ""}', 422),
    ("POST", "/sessions/x/messages", b'{"role": "user"}', 422),
    ("POST", "/sessions/x/messages", b'{"role": "user", "content": "' + b"a" * 33_000 + b'"}', 422),
    ("POST", "/sessions/x/messages", b'{"role": "user", "content": "hi"}', 404),
    ("POST", "/sessions/x/end", None, 404),
    ("GET", "/sessions/" + "x" * 200, None, 404),
    ("GET", "/memory/search", None, 422),
    ("GET", "/memory/search?query=a&limit=0", None, 422),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD)
async def test_bad_input(
    kz: KaizenClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    await assert_refused(kz, method, path, body, status)
    assert (await kz.get_session_stats()).total_messages == 0


SYNC_SCRIPT = """
import sys
from client import SyncKaizenClient
kz = SyncKaizenClient(sys.argv[1])
s = kz.session("left-open")
s.log("user", "a question nobody ends")
print("logged", flush=True)
"""


async def test_the_sync_client_ends_its_sessions_at_exit(kz: KaizenClient) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SYNC_SCRIPT, kz.base_url, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and b"logged" in out
    info = await kz.get_session("left-open")
    assert info.state in (SessionState.ENDED, SessionState.PROCESSED)
    assert info.messages == 1
