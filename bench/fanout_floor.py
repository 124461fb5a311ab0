"""Kaizen's hub against its floor and Redis, at few subscribers per message.

    python -m bench.fanout_floor [--rounds 3] [--seconds 5] [--subscribers 10]
                                 [--rate 2000] [--size 256] [--intervals 0.005,0.02]

The target is half of Redis's deliveries per server CPU-second at 10
subscribers too, where the cost of a publish is not spread over many deliveries.
This bench shows where that cost comes from. Each round runs, phase by phase on
the same minutes of the machine (bench.fanout's harness and clients):

- `kaizen@I`: `kaizen serve` as bench.fanout starts it, with
  `--write-commit-interval-s I`, for each I in --intervals, keeping all history
  as the floor does (no pruning in the windows);
- `floor-sqlite@I`: bench/floor_hub.py, the least a Python server on aiohttp can
  do while storing each message (Kaizen's table and FTS row, WAL, FULL sync)
  before delivering it, with the same commit pacing I;
- `floor-raw@I` (first I only): the same on a bare asyncio Protocol, no aiohttp;
- `floor-memory`: the floor storing nothing;
- `redis`: Redis pub/sub on --redis.

Reported per system: deliveries per server CPU-s, its ratio to Redis within each
round (median and range), server CPU µs per publish, rows per commit (from
`/stats`, where the server has it; 2 a publish), CPU while idle (measured once, before the
rounds, and not taken off the windows), p50/p99. Writes
bench/results/fanout_floor.json.
"""

import argparse
import asyncio
from typing import Any

import aiohttp
import orjson
import uvloop

from bench.common import LocalServer, cpu_seconds, start_server, table, write_results
from bench.fanout import (
    KAIZEN_FLAGS,
    Row,
    System,
    fanout_phase,
    kaizen_system,
    median_rows,
    ratios,
    redis_system,
)
from bench.lean import raise_fd_limit

FLOOR = ("bench.floor_hub",)
KEEP_ALL = ("--hub-history-size", str(10**12))
"""The floor keeps every message, so Kaizen does too here: otherwise its pruner
(10,000 a channel by default, every 10 s) deletes rows in its windows only."""
IDLE_S = 5.0
COLUMNS = [
    "system",
    "per_server_cpu_s",
    "over_redis",
    "over_redis_low",
    "over_redis_high",
    "cpu_us_per_publish",
    "rows_per_commit",
    "idle_cpu_pct",
    "p50_ms",
    "p99_ms",
]


async def start_systems(args: argparse.Namespace) -> tuple[list[System], list[LocalServer]]:
    """Every system of the run, Redis last; and the servers this run started."""
    started: list[tuple[str, LocalServer]] = []
    for interval in args.intervals:
        pace = ("--write-commit-interval-s", str(interval))
        tag = f"@{interval * 1000:g}ms"
        started.append((f"kaizen{tag}", await start_server(*KAIZEN_FLAGS, *KEEP_ALL, *pace)))
        sqlite = ("--store", "sqlite", "--commit-interval-s", str(interval))
        started.append((f"floor-sqlite{tag}", await start_server(*sqlite, command=FLOOR)))
        if interval == args.intervals[0]:
            raw = await start_server(*sqlite, "--transport", "raw", command=FLOOR)
            started.append((f"floor-raw{tag}", raw))
    started.append(("floor-memory", await start_server("--store", "memory", command=FLOOR)))
    systems = [kaizen_system(s.url, s.pid, None, name) for name, s in started]
    return [*systems, await redis_system(args.redis)], [s for _, s in started]


async def idle_cpu_pct(systems: list[System]) -> dict[str, float]:
    """Each server's CPU while nobody is connected: its timers and background
    tasks, which its windows pay for too (not taken off them)."""
    before = {s.name: cpu_seconds(s.pid) for s in systems}
    await asyncio.sleep(IDLE_S)
    return {s.name: 100 * (cpu_seconds(s.pid) - before[s.name]) / IDLE_S for s in systems}


async def writer_counts(http: aiohttp.ClientSession, system: System) -> tuple[int, int] | None:
    """(commits, rows written) so far from a server's `/stats`, when it has them."""
    try:
        async with http.get(f"http://{system.host}:{system.port}/stats") as resp:
            writer = orjson.loads(await resp.read())["writer"]
        return int(writer["batches"]), int(writer["writes"])
    except (aiohttp.ClientError, ValueError, KeyError, TypeError):
        return None


async def one_round(systems: list[System], args: argparse.Namespace) -> list[Row]:
    """Every system once. Pushes are padded to the size the first system's had
    on the wire (offsets grow a digit now and then; the size does not follow)."""
    rows: list[Row] = []
    wire = None
    async with aiohttp.ClientSession() as http:
        for system in systems:
            print(
                f"{system.name}: {args.subscribers} subscribers, {args.size} B, {args.rate} msg/s"
            )
            before = await writer_counts(http, system)
            row = await fanout_phase(system, args.subscribers, args.size, args.rate, args, wire)
            after = await writer_counts(http, system)
            rows.append({**row, **per_publish(row, before, after)})
            seen = row["wire_bytes"]
            wire = wire or (round(seen) if seen == seen else args.size)  # NaN: none seen
    return rows


def per_publish(
    row: Row, before: tuple[int, int] | None, after: tuple[int, int] | None
) -> dict[str, float | None]:
    """Server CPU per acked publish in the window, and rows per commit over the
    whole phase (calibration and warm-up too) where the server counts them: a
    publish writes 2 rows (the message, its FTS row)."""
    cpu = 1e6 * row["server_cpu_s"] / row["acked"] if row["acked"] else None
    commits = after[0] - before[0] if before and after else 0
    per_commit = (after[1] - before[1]) / commits if before and after and commits else None
    return {"cpu_us_per_publish": cpu, "rows_per_commit": per_commit}


def summary(rounds: list[list[Row]]) -> list[Row]:
    """Median rows, each with its ratio to Redis (median and range over rounds)."""
    rows = median_rows(rounds)
    for r in rows:
        mine = [q for rnd in rounds for q in ratios(rnd, of=r["system"])]
        over = sorted(q["per_server_cpu_s"] or 0.0 for q in mine)
        if over:
            r["over_redis"] = over[len(over) // 2]
            r["over_redis_low"], r["over_redis_high"] = over[0], over[-1]
        for name in ("cpu_us_per_publish", "rows_per_commit"):
            r[name] = median(
                [q.get(name) for rnd in rounds for q in rnd if q["system"] == r["system"]]
            )
    return rows


def median(values: list[float | None]) -> float | None:
    known = sorted(v for v in values if v is not None)
    return known[len(known) // 2] if known else None


async def main() -> None:
    args = parse_args()
    raise_fd_limit()
    systems, started = await start_systems(args)
    rounds: list[list[Row]] = []
    try:
        idle = await idle_cpu_pct(systems)
        for n in range(args.rounds):
            print(f"round {n + 1} of {args.rounds}")
            rounds.append(await one_round(systems, args))
    finally:
        for server in started:
            await server.stop()
    rows = [{**r, "idle_cpu_pct": idle.get(r["system"])} for r in summary(rounds)]
    print()
    print(table(rows, COLUMNS))
    payload: dict[str, Any] = {"settings": vars(args), "rounds": rounds, "rows": rows}
    print(f"\nwrote {write_results('fanout_floor', payload)}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    floats = lambda text: [float(x) for x in text.split(",")]  # noqa: E731
    parser.add_argument("--redis", default="127.0.0.1:6379", help="HOST:PORT")
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--rate", type=int, default=2000, help="msg/s")
    parser.add_argument("--size", type=int, default=256, help="push bytes on the wire")
    parser.add_argument(
        "--intervals", type=floats, default=[0.005, 0.02], help="commit pacing, seconds"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each window")
    parser.add_argument("--processes", type=int, default=2, help="subscriber processes")
    parser.add_argument("--sampled", type=int, default=5, help="latency connections per process")
    parser.add_argument("--rounds", type=int, default=3, help="report the median of this many")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


if __name__ == "__main__":
    uvloop.run(main())
