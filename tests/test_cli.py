"""The `kaizen` command line."""

import subprocess
import sys
from pathlib import Path

from client import KaizenClient
from tests.procs import ServerProcess


def kaizen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args], capture_output=True, text=True, timeout=60
    )


async def test_token_create_list_and_revoke(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    created = kaizen("token", "create", "--tenant", "acme", "--agent", "bot", "--data-dir", data)
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
    token, token_id = fields["token"].strip(), fields["id"].strip()

    server = ServerProcess(tmp_path / "data", "--token-cache-ttl-s", "0")
    url = await server.start()
    try:
        async with KaizenClient(url, token=token) as kz:
            assert (await kz.stats()).tenant == "acme"
        listed = kaizen("token", "list", "--tenant", "acme", "--data-dir", data)
        assert token_id in listed.stdout and "active" in listed.stdout
        revoked = kaizen("token", "revoke", token_id, "--tenant", "acme", "--data-dir", data)
        assert revoked.returncode == 0, revoked.stderr
        async with KaizenClient(url, token=token) as kz:
            assert (await kz.health()).status == "ok"
            try:
                await kz.stats()
                raise AssertionError("a revoked token was accepted")
            except Exception as exc:
                assert getattr(exc, "status", None) == 401
    finally:
        assert await server.terminate() == 0
    again = kaizen("token", "revoke", token_id, "--tenant", "acme", "--data-dir", data)
    assert again.returncode == 1


def test_serve_refuses_a_public_address_without_tokens(tmp_path: Path) -> None:
    result = kaizen("serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "without tokens" in result.stderr


def test_bad_settings_are_reported_not_raised(tmp_path: Path) -> None:
    result = kaizen("serve", "--port", "not-a-port", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "port" in result.stderr and "Traceback" not in result.stderr


def test_a_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    import asyncio

    async def go() -> subprocess.CompletedProcess[str]:
        first = ServerProcess(tmp_path / "data")
        await first.start()
        try:
            return await asyncio.to_thread(
                kaizen, "serve", "--port", "0", "--data-dir", str(tmp_path / "data")
            )
        finally:
            await first.terminate()

    result = asyncio.run(go())
    assert result.returncode == 2 and "another Kaizen server" in result.stderr


async def test_serve_logs_json_lines_to_the_data_dir(tmp_path: Path) -> None:
    import orjson

    server = ServerProcess(tmp_path / "data")
    await server.start()
    assert await server.terminate() == 0
    lines = (tmp_path / "data" / "logs" / "kaizen.log").read_text().splitlines()
    entries = [orjson.loads(line) for line in lines]
    assert {"ts", "level", "logger", "msg"} <= set(entries[0])
    messages = [e["msg"] for e in entries]
    assert (
        "services started" in messages
        and "writes drained" in messages
        and "store closed" in messages
    )
    assert messages.index("writes drained") < messages.index("store closed")
