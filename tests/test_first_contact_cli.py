"""First contact with the `kaizen` command line: one-line errors with an exit
status instead of tracebacks, `--url`/`--token` that explain themselves and read
KAIZEN_URL/KAIZEN_TOKEN, and a `token list` that reads as a table."""

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import main
from server.runner import KaizenServer

TENANT = ("--tenant", "acme")


def kaizen(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("KAIZEN_URL", "KAIZEN_TOKEN")}
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean | env,
    )


def _closed_port_url() -> str:
    """A URL where nothing listens: a port the OS handed out and took back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kaizen: ")
    return lines[0]


def test_jobs_list_without_a_server_says_so_in_one_line() -> None:
    url = _closed_port_url()
    result = kaizen("jobs", "list", "--url", url)
    assert result.returncode == 1
    assert f"no Kaizen server answers at {url}" in _one_line_error(result)


def test_jobs_watch_without_a_server_says_so_in_one_line() -> None:
    result = kaizen("jobs", "watch", "--url", _closed_port_url())
    assert result.returncode == 1
    assert "no Kaizen server answers" in _one_line_error(result)


def test_kaizen_url_from_the_environment_is_used() -> None:
    url = _closed_port_url()
    result = kaizen("jobs", "list", KAIZEN_URL=url)
    assert result.returncode == 1
    assert url in _one_line_error(result)


def test_a_url_that_is_not_one_is_a_usage_error() -> None:
    result = kaizen("jobs", "list", "--url", "localhost:8080")
    assert result.returncode == 2
    assert "--url" in _one_line_error(result)


def test_url_and_token_have_help_that_names_their_variables() -> None:
    for verb in ("list", "watch"):
        text = kaizen("jobs", verb, "--help").stdout
        assert "KAIZEN_URL" in text and "KAIZEN_TOKEN" in text, text


async def test_a_missing_token_is_one_line_not_a_pydantic_error(
    tenants: tuple[KaizenServer, str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, _, _ = tenants
    monkeypatch.delenv("KAIZEN_TOKEN", raising=False)
    status = await _main_in_thread(["jobs", "list", "--url", server.url])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "validation error" not in err
    assert "token" in err and "KAIZEN_TOKEN" in err


async def test_kaizen_token_from_the_environment_is_sent(
    tenants: tuple[KaizenServer, str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, token, _ = tenants
    monkeypatch.setenv("KAIZEN_TOKEN", token)
    status = await _main_in_thread(["jobs", "list", "--url", server.url])
    out = capsys.readouterr()
    assert status == 0, out.err
    assert out.out.strip() == "no jobs"


async def _main_in_thread(argv: list[str]) -> int:
    """The CLI runs its own event loop; the server under test runs in this one."""
    return await asyncio.to_thread(main, argv)


def test_token_list_says_when_there_are_none(tmp_path: Path) -> None:
    result = kaizen("token", "list", *TENANT, "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert "no tokens" in result.stdout


def test_token_list_prints_a_header_above_the_tokens(tmp_path: Path) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    created = kaizen("token", "create", *TENANT, "--agent", "bot", *data)
    assert created.returncode == 0, created.stderr
    lines = kaizen("token", "list", *TENANT, *data).stdout.splitlines()
    assert lines[0].split() == ["ID", "AGENT", "CREATED", "STATE"]
    assert len(lines) == 2 and "bot" in lines[1] and "active" in lines[1]
