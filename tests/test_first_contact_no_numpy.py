"""A plain install (no `ml` extra, so no numpy or torch) starts `kaizen serve` and
serves learnings lexically.

The server runs in a child whose every import of numpy, torch and the other `ml`
packages fails, as on a machine without them: a `sitecustomize` on PYTHONPATH
installs the blocker before anything else, in the server and in its miner
process alike.
"""

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

from client import KaizenClient
from tests.conftest import eventually, interaction

ML_PACKAGES = ("numpy", "torch", "transformers", "sentence_transformers", "peft", "scipy")
BLOCKER = f"""
import importlib.abc
import sys

BLOCKED = {ML_PACKAGES!r}


class NoMl(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NoMl())
"""
LISTENING = re.compile(r"listening on (http://\S+)")


async def _serve_without_ml(tmp_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONUNBUFFERED": "1"}
    # A file, not a pipe nobody drains: a full pipe would stall the server's logging.
    errors = (tmp_path / "stderr.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "server", "serve", "--data-dir", str(tmp_path / "data")),
        *("--port", "0"),
        stdout=asyncio.subprocess.PIPE,
        stderr=errors,
        env=env,
    )
    errors.close()
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    match = LISTENING.search(line.decode())
    if match is None:
        await proc.wait()
        log = (tmp_path / "stderr.log").read_text(errors="replace")
        raise AssertionError(f"no server: {line!r}\n{log[-4000:]}")
    return proc, match.group(1)


async def test_a_server_without_numpy_starts_and_serves_learnings_lexically(
    tmp_path: Path,
) -> None:
    proc, url = await _serve_without_ml(tmp_path)
    try:
        async with KaizenClient(url) as kz:
            for thing in ("shirt", "jeans"):
                await kz.record_interaction(**interaction(f"Put the dirty {thing} away"))

            async def learned() -> object:
                return await kz.get_relevant_learnings("Put the dirty socks away")

            assert await eventually(learned, timeout=30)
            async with kz.http.get("/memory/search", params={"query": "socks"}) as resp:
                assert resp.status == 200
                assert (await resp.json())["method"] == "lexical"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
