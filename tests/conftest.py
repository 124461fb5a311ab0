"""Fixtures: a real Kaizen server on 127.0.0.1:0 with a real SQLite file, and the real SDK."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from client import KaizenClient
from server.auth.service import create_token
from server.core.settings import Settings
from server.db.database import Database
from server.runner import KaizenServer
from server.stores import Stores

T = TypeVar("T")

# Tests assert behaviour, never timings: no per-example deadline, and no failure
# when this shared 2-core machine generates examples slowly.
hypothesis_settings.register_profile(
    "kaizen", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("kaizen")


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    # The miner runs in the server's thread here: a miner process costs each of the
    # suite's hundreds of servers a spawn. test_miner_process.py and the tests that
    # run `kaizen serve` (test_crash.py) cover the process, the default.
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "port": 0,
        "extractor_interval_s": 0.05,
        "miner_process": False,
    }
    return Settings.load(base | overrides, env={})


@contextlib.asynccontextmanager
async def running(data_dir: Path, **overrides: Any) -> AsyncIterator[KaizenServer]:
    """A server on `data_dir` with some settings changed, stopped on the way out."""
    kaizen = KaizenServer(settings_for(data_dir, **overrides))
    await kaizen.start()
    try:
        yield kaizen
    finally:
        await kaizen.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[KaizenServer]:
    kaizen = KaizenServer(settings_for(data_dir))
    await kaizen.start()
    yield kaizen
    await kaizen.stop()


@pytest.fixture
async def kz(server: KaizenServer) -> AsyncIterator[KaizenClient]:
    async with KaizenClient(server.url) as client:
        yield client


async def make_tokens(data_dir: Path, *pairs: tuple[str, str]) -> list[str]:
    """Create tokens as `kaizen token create` does, straight in the store."""
    store = Stores(Database(data_dir / "kaizen.sqlite3", exclusive=False))
    await store.open()
    try:
        return [(await create_token(store.tokens, tenant, agent)).token for tenant, agent in pairs]
    finally:
        await store.close()


@pytest.fixture
async def tenants(data_dir: Path) -> AsyncIterator[tuple[KaizenServer, str, str]]:
    """A token server with one token for tenant `acme` and one for tenant `globex`."""
    token_a, token_b = await make_tokens(data_dir, ("acme", "coder"), ("globex", "tester"))
    kaizen = KaizenServer(settings_for(data_dir))
    await kaizen.start()
    yield kaizen, token_a, token_b
    await kaizen.stop()


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


def interaction(task: str = "Create Python function", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "agent_type": "code",
        "task_description": task,
        "actions_taken": [{"type": "CREATE_FILE", "path": "f.py"}, {"type": "EXECUTE"}],
        "results": [{"success": True}, {"success": True, "stdout": "ok"}],
        "success": True,
        "completion_time": 5.2,
        "iterations": 2,
        "errors_encountered": 0,
    }
    return base | fields
