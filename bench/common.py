"""Shared bench plumbing: a server to measure, percentiles, tables, results files."""

import asyncio
import contextlib
import json
import os
import platform
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass
class LocalServer:
    url: str
    pid: int | None
    proc: asyncio.subprocess.Process | None = None

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


async def start_server(*flags: str, command: tuple[str, ...] = ("server", "serve")) -> LocalServer:
    """A fresh Kaizen in a temporary data dir, as `kaizen serve` runs it (or
    another `python -m` command that takes --data-dir and --port and prints
    "listening on URL", as bench/floor_hub.py does)."""
    data = tempfile.mkdtemp(prefix="kaizen-bench-")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *command,
        "--data-dir",
        data,
        "--port",
        "0",
        *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    match = LISTENING.search(line)
    if not match:
        raise RuntimeError(f"server did not start: {line!r}")
    return LocalServer(match.group(1), proc.pid, proc)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process and of its live children (the miner
    process, `miner_process`), from /proc (0 when unknown)."""
    if pid is None:
        return 0.0
    return sum(_own_cpu_seconds(p) for p in (pid, *_children(pid)))


def _own_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0  # a child that exited between the listing and the read
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def line(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) for v, w in zip(vals, widths, strict=True))

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 100 else f"{value:.2f}"
    return str(value)


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path
