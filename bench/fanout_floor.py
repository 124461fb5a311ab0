"""Kaizen's hub against its floor and Redis, at few subscribers per message.

    python -m bench.fanout_floor [--rounds 3] [--seconds 5] [--subscribers 10]
                                 [--rate 2000] [--size 256] [--intervals 0.005,0.02]

Issue 3 asks for half of Redis's deliveries per server CPU-second at 10
subscribers too, where the cost of a publish is not spread over many deliveries.
This bench shows where that cost comes from. Each round runs, phase by phase on
the same minutes of the machine (bench.fanout's harness and clients):

- `kaizen@I`: `kaizen serve` as bench.fanout starts it, with
  `--write-commit-interval-s I`, for each I in --intervals;
- `floor-sqlite@I`: bench/floor_hub.py, the least a Python server on aiohttp can
  do while storing each message (Kaizen's table and FTS row, WAL, FULL sync)
  before delivering it, with the same commit pacing I;
- `floor-memory`: the same server storing nothing;
- `redis`: Redis pub/sub on --redis.

Reported per system: deliveries per server CPU-s, its ratio to Redis within each
round (median and range), server CPU µs per publish, p50/p99. Writes
bench/results/fanout_floor.json.
"""

import argparse
from typing import Any

import uvloop

from bench.common import LocalServer, start_server, table, write_results
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
COLUMNS = [
    "system",
    "per_server_cpu_s",
    "over_redis",
    "over_redis_low",
    "over_redis_high",
    "cpu_us_per_publish",
    "p50_ms",
    "p99_ms",
]


async def start_systems(args: argparse.Namespace) -> tuple[list[System], list[LocalServer]]:
    """Every system of the run, Redis last; and the servers this run started."""
    started: list[tuple[str, LocalServer]] = []
    for interval in args.intervals:
        pace = ("--write-commit-interval-s", str(interval))
        tag = f"@{interval * 1000:g}ms"
        started.append((f"kaizen{tag}", await start_server(*KAIZEN_FLAGS, *pace)))
        sqlite = ("--store", "sqlite", "--commit-interval-s", str(interval))
        started.append((f"floor-sqlite{tag}", await start_server(*sqlite, command=FLOOR)))
    started.append(("floor-memory", await start_server("--store", "memory", command=FLOOR)))
    systems = [kaizen_system(s.url, s.pid, None, name) for name, s in started]
    return [*systems, await redis_system(args.redis)], [s for _, s in started]


async def one_round(systems: list[System], args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    wire = args.size
    for system in systems:
        print(f"{system.name}: {args.subscribers} subscribers, {args.size} B, {args.rate} msg/s")
        rows.append(await fanout_phase(system, args.subscribers, args.size, args.rate, args, wire))
        seen = rows[-1]["wire_bytes"]
        wire = max(wire, round(seen) if seen == seen else args.size)  # NaN: none seen
    for r in rows:
        r["cpu_us_per_publish"] = 1e6 * r["server_cpu_s"] / r["acked"] if r["acked"] else None
    return rows


def summary(rounds: list[list[Row]]) -> list[Row]:
    """Median rows, each with its ratio to Redis (median and range over rounds)."""
    rows = median_rows(rounds)
    for r in rows:
        mine = [q for rnd in rounds for q in ratios(rnd, of=r["system"])]
        over = sorted(q["per_server_cpu_s"] or 0.0 for q in mine)
        if over:
            r["over_redis"] = over[len(over) // 2]
            r["over_redis_low"], r["over_redis_high"] = over[0], over[-1]
        cpu = sorted(
            q["cpu_us_per_publish"] for rnd in rounds for q in rnd if q["system"] == r["system"]
        )
        r["cpu_us_per_publish"] = cpu[len(cpu) // 2]
    return rows


async def main() -> None:
    args = parse_args()
    raise_fd_limit()
    systems, started = await start_systems(args)
    rounds: list[list[Row]] = []
    try:
        for n in range(args.rounds):
            print(f"round {n + 1} of {args.rounds}")
            rounds.append(await one_round(systems, args))
    finally:
        for server in started:
            await server.stop()
    rows = summary(rounds)
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
