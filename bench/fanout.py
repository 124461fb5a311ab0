"""Fan-out bench: one publisher, many subscribers, Kaizen's hub against Redis pub/sub.

    python -m bench.fanout [--seconds 5] [--rounds 3] [--quick] [--only kaizen|redis]
                           [--kaizen-flag=--hub-write-delay-s=0.002 ...]

Without --kaizen-url it starts its own server (publish rate limit lifted) in a temp
dir; Redis is the one already running on --redis (127.0.0.1:6379). The same
harness drives both, interleaved phase by phase so they see the same machine.

Per phase (10, 100 and 1,000 subscribers × 256 B and 4 KB pushes):
1. Subscribers are spread over --processes spawned processes, each holding many
   connections on one uvloop (bench/lean.py: raw sockets, a hand-written WebSocket
   or RESP client that counts pushes without decoding them). A few connections per
   process are "sampled": they decode each push for its publish time and size.
2. Calibration: one unpadded message, which every subscriber must receive; its
   size on the wire sets the padding, so each push is about --sizes bytes on the
   wire. A Kaizen push with no content is already ~290 B, so "256 B" means that
   floor; Redis's pushes are then padded to the size Kaizen's had, not smaller.
3. Warm-up, then the measured window: an open-loop publisher sends --rates msg/s,
   pipelined (acks counted, never awaited one by one). Each message carries the
   wall time it was *due*, so a stalled publisher counts against latency too.
   The window ends when every acked message reached every subscriber (or nothing
   arrived for a second).
Reported: deliveries/s; deliveries per CPU-second of the server process (utime +
stime from /proc, so the load generator's CPU is left out); publish-to-receipt
p50/p99 from the sampled connections; the server's CPU %. Then RSS per idle
connection: VmRSS growth of the server while --idle-connections subscribed, idle
connections are opened, divided by their number (measured first, on a fresh heap).
Every phase runs --rounds times (3; the idle phase once); each figure reported is
the median over the rounds, and each Kaizen/Redis ratio is taken within a round,
then its median, with ranges printed beside. Writes bench/results/fanout.json,
with every round's rows.

Targets (2-core machine): >= 500,000 deliveries per server CPU-second at 1,000
subscribers; >= half of Redis's in the same run; p99 <= 20 ms at 100,000
deliveries/s (100 subscribers × 1,000 msg/s); <= 20 KB RSS per idle connection.
"""

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import uvloop

from bench.common import cpu_seconds, percentile, start_server, table, write_results
from bench.lean import (
    RespConn,
    Tally,
    WorkerSpec,
    WsConn,
    message_head,
    open_resp,
    open_ws,
    raise_fd_limit,
    receive,
    resp_command,
    subscriber_process,
    ws_frame,
)

Row = dict[str, Any]
TICK_S = 0.001
"""The open-loop publisher releases due messages this often."""
IDLE_END_S = 1.0
"""A window also ends when no push has arrived for this long (some were dropped)."""
SPAWN_TIMEOUT_S = 300.0
KAIZEN_FLAGS = ("--hub-publish-rate", "1000000", "--hub-publish-burst", "1000000")
COLUMNS = [
    "system",
    "subscribers",
    "size",
    "rate",
    "deliveries_per_s",
    "per_server_cpu_s",
    "p50_ms",
    "p99_ms",
    "server_cpu_pct",
    "delivered_pct",
    "generator_cpu_pct",
]
IDLE_COLUMNS = ["system", "connections", "rss_before_mb", "rss_after_mb", "kb_per_connection"]


@dataclass(frozen=True)
class System:
    name: str
    """"kaizen" or "redis", or a peer's name in bench.fanout_floor."""
    host: str
    port: int
    pid: int | None
    token: str | None = None
    protocol: str = "kaizen"
    """What its clients speak: "kaizen" (/ws) or "redis" (RESP)."""


# -- publishers ------------------------------------------------------------------


class Publisher(Protocol):
    @property
    def acked(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def first_error(self) -> str | None: ...
    def fit(self, size: int, unpadded_wire: float) -> None: ...
    def message(self, t_ns: int) -> bytes: ...
    def send(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class _Pipelined:
    """What both publishers share: one connection, its ack counts, raw writes."""

    conn: WsConn | RespConn

    @property
    def acked(self) -> int:
        return self.conn.acked

    @property
    def errors(self) -> int:
        return self.conn.errors

    @property
    def first_error(self) -> str | None:
        return self.conn.first_error

    def send(self, data: bytes) -> None:
        self.conn.write(data)

    def close(self) -> None:
        self.conn.close()


class KaizenPublisher(_Pipelined):
    """Pipelined `publish` ops on one WebSocket; the content field is the padding."""

    def __init__(self, conn: WsConn, channel: str) -> None:
        self.conn = conn
        self.channel = channel.encode()
        self.pad = b""
        self.seq = 0

    @classmethod
    async def open(cls, system: System, channel: str) -> "KaizenPublisher":
        conn = await open_ws(system.host, system.port, system.token)
        reply = await conn.request("create_channel", name=channel)
        if reply.get("type") != "reply":
            print(f"  create_channel {channel}: {reply.get('error')} (carrying on)")
        return cls(conn, channel)

    def fit(self, size: int, unpadded_wire: float) -> None:
        """Pad so a push is `size` bytes on the wire, header included: a push
        payload of over 125 bytes has a 4-byte frame header, under 126 a 2-byte one."""
        if unpadded_wire != unpadded_wire:  # NaN: no sampled connection saw a push
            return
        unpadded = unpadded_wire - (2 if unpadded_wire <= 127 else 4)
        wanted = size - (2 if size <= 127 else 4 if size - 4 < 1 << 16 else 10)
        self.pad = b"x" * max(0, round(wanted - unpadded))

    def message(self, t_ns: int) -> bytes:
        self.seq += 1
        return ws_frame(
            b'{"id":"%d","op":"publish","message":{"knowledge_type":"DISCOVERY",'
            b'"title":"bench","content":"%s","context":{"t":%d},"channel":"%s"}}'
            % (self.seq, self.pad, t_ns, self.channel)
        )


class RedisPublisher(_Pipelined):
    """Pipelined PUBLISH on one connection; the payload is `{"t":ns,"p":"xx..."}`."""

    def __init__(self, conn: RespConn, channel: str) -> None:
        self.conn = conn
        self.channel = channel.encode()
        self.pad = b""

    @classmethod
    async def open(cls, system: System, channel: str) -> "RedisPublisher":
        return cls(await open_resp(system.host, system.port, channel.encode()), channel)

    def fit(self, size: int, unpadded_wire: float) -> None:
        """RESP framing is known, so the padding is computed, not calibrated."""
        pad = 0
        while self._wire(pad + 1) <= size:
            pad += 1
        self.pad = b"x" * pad

    def _wire(self, pad: int) -> int:
        payload = len(self._payload(time.time_ns(), b"x" * pad))
        return len(message_head(self.channel)) + len(str(payload)) + 2 + payload + 2

    @staticmethod
    def _payload(t_ns: int, pad: bytes) -> bytes:
        return b'{"t":%d,"p":"%s"}' % (t_ns, pad)

    def message(self, t_ns: int) -> bytes:
        return resp_command(b"PUBLISH", self.channel, self._payload(t_ns, self.pad))


async def open_publisher(system: System, channel: str) -> Publisher:
    if system.protocol == "kaizen":
        return await KaizenPublisher.open(system, channel)
    return await RedisPublisher.open(system, channel)


async def publish_for(pub: Publisher, rate: float, seconds: float) -> tuple[int, int]:
    """Open loop: message k is due at start + k/rate and carries that wall time.
    Returns (messages sent, wall ns at start)."""
    start = time.perf_counter()
    wall0 = time.time_ns()
    sent = 0
    while (now := time.perf_counter()) < start + seconds:
        due = int((now - start) * rate)
        if due > sent:
            pub.send(b"".join(pub.message(wall0 + round(k * 1e9 / rate)) for k in range(sent, due)))
            sent = due
        await asyncio.sleep(TICK_S)
    return sent, wall0


async def wait_acks(pub: Publisher, answered: int, timeout_s: float = 30.0) -> None:
    """Until `answered` publishes have been acked or refused (or the timeout)."""
    end = time.perf_counter() + timeout_s
    while pub.acked + pub.errors < answered and time.perf_counter() < end:
        await asyncio.sleep(0.005)


# -- subscriber processes ---------------------------------------------------------


@dataclass
class Counts(Tally):
    """What all subscriber processes have counted, merged."""

    def add(self, part: dict[str, Any]) -> None:
        self.deliveries += part["deliveries"]
        self.lagged += part["lagged"]
        self.closed += part["closed"]
        self.last_ns = max(self.last_ns, part["last_ns"])
        self.latencies_ms += part["latencies_ms"]
        self.wire_bytes += part["wire_bytes"]
        self.wire_frames += part["wire_frames"]
        self.notes += part["notes"]


@dataclass
class Workers:
    procs: list[BaseProcess]
    pipes: list[Connection]
    subscribed: int = 0
    failures: list[str] = field(default_factory=list)

    async def ask(self) -> Counts:
        for pipe in self.pipes:
            pipe.send("stats")
        counts = Counts()
        for part in await asyncio.gather(*(receive(pipe) for pipe in self.pipes)):
            counts.add(part)
        return counts

    async def stop(self) -> None:
        for pipe in self.pipes:
            pipe.send("stop")
        await asyncio.gather(*(receive(pipe) for pipe in self.pipes), return_exceptions=True)
        for proc in self.procs:
            await asyncio.to_thread(proc.join, 10)
            if proc.is_alive():
                proc.kill()


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


async def spawn_workers(
    system: System, channel: str, connections: int, processes: int, sampled: int
) -> Workers:
    """Start the subscriber processes and wait until each has subscribed its share."""
    ctx = mp.get_context("spawn")
    workers = Workers([], [])
    for share in split(connections, min(processes, connections)):
        spec = WorkerSpec(
            system.protocol, system.host, system.port, channel, share, sampled, system.token
        )
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=subscriber_process, args=(spec, theirs), daemon=True)
        proc.start()
        workers.procs.append(proc)
        workers.pipes.append(ours)
    for pipe in workers.pipes:
        ready = await asyncio.wait_for(receive(pipe), SPAWN_TIMEOUT_S)
        workers.subscribed += ready["ready"]
        workers.failures += ready["first_failure"]
    if workers.failures:
        print(f"  {connections - workers.subscribed} failed to subscribe: {workers.failures[0]}")
    return workers


async def drain(workers: Workers, target: int) -> tuple[Counts, list[float]]:
    """Poll the subscribers until they have counted `target` deliveries in all, or
    none arrived for IDLE_END_S. Returns the last counts and every latency sample."""
    samples: list[float] = []
    seen, since = -1, time.perf_counter()
    while True:
        counts = await workers.ask()
        samples += counts.latencies_ms
        if counts.deliveries >= target:
            return counts, samples
        if counts.deliveries != seen:
            seen, since = counts.deliveries, time.perf_counter()
        elif time.perf_counter() - since > IDLE_END_S:
            return counts, samples
        await asyncio.sleep(0.02)


# -- phases --------------------------------------------------------------------------


@dataclass
class Window:
    sent: int
    acked: int
    expected: int
    delivered: int
    seconds: float
    cpu_s: float
    latencies_ms: list[float]
    lagged: int
    closed: int
    wire_bytes: float
    generator_cpu_s: float


def generator_cpu(workers: Workers) -> float:
    """CPU seconds of the load generator: this process and the subscriber processes."""
    return cpu_seconds(os.getpid()) + sum(cpu_seconds(p.pid) for p in workers.procs)


async def window(
    system: System, pub: Publisher, workers: Workers, rate: float, seconds: float
) -> Window:
    """Publish at `rate` for `seconds` (one message when seconds is 0), then wait for
    every acked message to reach every subscriber; server CPU is read around it all."""
    before = await workers.ask()
    answered0, acked0 = pub.acked + pub.errors, pub.acked
    cpu0, gen0 = cpu_seconds(system.pid), generator_cpu(workers)
    if seconds:
        sent, wall0 = await publish_for(pub, rate, seconds)
    else:
        sent, wall0 = 1, time.time_ns()
        pub.send(pub.message(wall0))
    published_ns = time.time_ns()
    await wait_acks(pub, answered0 + sent)
    acked = pub.acked - acked0
    expected = acked * workers.subscribed
    after, samples = await drain(workers, before.deliveries + expected)
    cpu, gen = cpu_seconds(system.pid) - cpu0, generator_cpu(workers) - gen0
    return Window(
        sent=sent,
        acked=acked,
        expected=expected,
        delivered=after.deliveries - before.deliveries,
        seconds=(max(after.last_ns, published_ns) - wall0) / 1e9,
        cpu_s=cpu,
        latencies_ms=samples,
        lagged=after.lagged - before.lagged,
        closed=after.closed - before.closed,
        wire_bytes=after.wire_bytes / after.wire_frames if after.wire_frames else float("nan"),
        generator_cpu_s=gen,
    )


async def fanout_phase(
    system: System,
    subscribers: int,
    size: int,
    rate: float,
    args: argparse.Namespace,
    wire: int | None = None,
) -> Row:
    """One phase; pushes are padded to `wire` bytes (default `size`), which lets
    Redis match the size Kaizen's pushes actually had."""
    channel = f"fan-{size}-{subscribers}"
    pub = await open_publisher(system, channel)
    workers = await spawn_workers(system, channel, subscribers, args.processes, args.sampled)
    try:
        calibration = await window(system, pub, workers, rate, 0)
        pub.fit(wire or size, calibration.wire_bytes)
        if args.warmup:
            await window(system, pub, workers, rate, args.warmup)
        measured = await window(system, pub, workers, rate, args.seconds)
    finally:
        await workers.stop()
        pub.close()
    return row(system, subscribers, size, rate, measured, pub)


def row(system: System, subscribers: int, size: int, rate: float, w: Window, pub: Publisher) -> Row:
    lat = w.latencies_ms
    return {
        "system": system.name,
        "subscribers": subscribers,
        "size": size,
        "rate": rate,
        "target_deliveries_per_s": rate * subscribers,
        "deliveries_per_s": w.delivered / w.seconds if w.seconds > 0 else 0.0,
        "per_server_cpu_s": w.delivered / w.cpu_s if w.cpu_s > 0 else None,
        "p50_ms": percentile(lat, 0.50),
        "p99_ms": percentile(lat, 0.99),
        "server_cpu_pct": 100 * w.cpu_s / w.seconds if w.seconds > 0 else None,
        "delivered_pct": 100 * w.delivered / w.expected if w.expected else 0.0,
        "wire_bytes": w.wire_bytes,
        "published": w.sent,
        "acked": w.acked,
        "publish_errors": pub.errors,
        "first_publish_error": pub.first_error,
        "delivered": w.delivered,
        "expected": w.expected,
        "lagged": w.lagged,
        "closed": w.closed,
        "seconds": w.seconds,
        "server_cpu_s": w.cpu_s,
        "generator_cpu_pct": 100 * w.generator_cpu_s / w.seconds if w.seconds > 0 else None,
        "latency_samples": len(lat),
    }


def rss_kb(pid: int | None) -> int:
    if pid is None:
        return 0
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


async def idle_phase(system: System, connections: int, processes: int) -> Row:
    """Server RSS growth over `connections` subscribed, idle connections. The
    publisher connection (which creates the channel) is opened and closed first,
    so the server's one-off costs of a first connection fall before the baseline."""
    channel = "fan-idle"
    (await open_publisher(system, channel)).close()
    await asyncio.sleep(0.5)
    before = rss_kb(system.pid)
    workers = await spawn_workers(system, channel, connections, processes, 0)
    try:
        await asyncio.sleep(1.0)
        after = rss_kb(system.pid)
    finally:
        await workers.stop()
    opened = max(workers.subscribed, 1)
    return {
        "system": system.name,
        "connections": workers.subscribed,
        "rss_before_mb": before / 1024,
        "rss_after_mb": after / 1024,
        "kb_per_connection": (after - before) / opened,
    }


# -- systems and the run --------------------------------------------------------------


async def redis_system(address: str) -> System:
    host, _, port = address.rpartition(":")
    conn = await open_resp(host, int(port), b"-")
    info = await conn.request(b"INFO", b"server")
    conn.close()
    match = re.search(rb"process_id:(\d+)", info if isinstance(info, bytes) else b"")
    pid = int(match.group(1)) if match else None
    return System("redis", host, int(port), pid, protocol="redis")


def kaizen_system(url: str, pid: int | None, token: str | None, name: str = "kaizen") -> System:
    parts = urlsplit(url)
    return System(name, parts.hostname or "127.0.0.1", parts.port or 80, pid, token)


async def one_round(chosen: list[System], args: argparse.Namespace) -> list[Row]:
    """Every (size, subscribers) phase once, the systems interleaved phase by phase."""
    rows: list[Row] = []
    for size in args.sizes:
        for subscribers, rate in zip(args.subscribers, args.rates, strict=True):
            wire = size
            for system in chosen:
                print(f"{system.name}: {subscribers} subscribers, {size} B, {rate} msg/s")
                rows.append(await fanout_phase(system, subscribers, size, rate, args, wire))
                seen = rows[-1]["wire_bytes"]
                wire = max(wire, round(seen) if seen == seen else size)  # NaN: none seen
    return rows


MEDIAN_KEYS = ("deliveries_per_s", "per_server_cpu_s", "p50_ms", "p99_ms", "server_cpu_pct")


def median_rows(
    rounds: list[list[Row]], key: tuple[str, ...] = ("system", "subscribers", "size")
) -> list[Row]:
    """Each row's median over the rounds (of the figures in MEDIAN_KEYS that it
    has), with the range of per_server_cpu_s: on this shared 2-core machine one
    run differs from the next by about 20 %. Ratios are taken within a round (the
    same minutes of the machine) and then their median."""
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for rows in rounds:
        for r in rows:
            groups.setdefault(tuple(r[k] for k in key), []).append(r)
    out = []
    for runs in groups.values():
        row = dict(runs[-1])
        for name in MEDIAN_KEYS:
            values = sorted(v for r in runs if (v := r.get(name)) is not None)
            if name in row:
                row[name] = values[len(values) // 2] if values else None
        cpu = [r["per_server_cpu_s"] or 0.0 for r in runs]
        row["per_server_cpu_s_range"] = [min(cpu), max(cpu)]
        row["rounds"] = len(runs)
        out.append(row)
    return out


def ratios(rows: list[Row], of: str = "kaizen") -> list[Row]:
    """System `of` over Redis, for each (subscribers, size) both ran."""
    by_key = {(r["system"], r["subscribers"], r["size"]): r for r in rows}
    out = []
    for (name, subs, size), k in by_key.items():
        r = by_key.get(("redis", subs, size))
        if name != of or r is None:
            continue
        out.append(
            {
                "system": name,
                "subscribers": subs,
                "size": size,
                "per_server_cpu_s": _ratio(k["per_server_cpu_s"], r["per_server_cpu_s"]),
                "deliveries_per_s": _ratio(k["deliveries_per_s"], r["deliveries_per_s"]),
                "p99_ms": _ratio(k["p99_ms"], r["p99_ms"]),
            }
        )
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def targets(rows: list[Row], idle: list[Row], ratio_rows: list[Row]) -> list[str]:
    """The issue's targets, each with what this run measured."""
    lines = []
    for r in rows:
        if r["system"] == "kaizen" and r["subscribers"] == 1000:
            ok = (r["per_server_cpu_s"] or 0) >= 500_000
            lines.append(
                f"{'PASS' if ok else 'FAIL'} {r['size']} B, 1,000 subscribers: "
                f"{r['per_server_cpu_s'] or 0:,.0f} deliveries per server CPU-s (>= 500,000)"
            )
        if r["system"] == "kaizen" and r["target_deliveries_per_s"] == 100_000:
            ok = r["p99_ms"] <= 20 and r["delivered_pct"] >= 99.9
            lines.append(
                f"{'PASS' if ok else 'FAIL'} {r['size']} B at {r['deliveries_per_s']:,.0f} "
                f"deliveries/s: p99 {r['p99_ms']:.1f} ms (<= 20), {r['delivered_pct']:.1f}% delivered"
            )
    for q in ratio_rows:
        ok = (q["per_server_cpu_s"] or 0) >= 0.5
        lines.append(
            f"{'PASS' if ok else 'FAIL'} {q['size']} B, {q['subscribers']} subscribers: "
            f"{q['per_server_cpu_s'] or 0:.2f}x Redis's deliveries per server CPU-s (>= 0.5)"
        )
    for i in idle:
        if i["system"] == "kaizen":
            ok = i["kb_per_connection"] <= 20
            lines.append(
                f"{'PASS' if ok else 'FAIL'} {i['kb_per_connection']:.1f} KB RSS per idle "
                f"connection at {i['connections']:,} (<= 20)"
            )
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ints = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    parser.add_argument("--only", choices=["kaizen", "redis"])
    parser.add_argument("--kaizen-url", help="a running server (else one is started)")
    parser.add_argument("--kaizen-pid", type=int, help="its pid, for CPU and RSS")
    parser.add_argument("--kaizen-token")
    parser.add_argument(
        "--kaizen-flag",
        action="append",
        default=[],
        help="extra `serve` flag for the started server, as --kaizen-flag=--hub-write-delay-s=0.002",
    )
    parser.add_argument("--redis", default="127.0.0.1:6379", help="HOST:PORT")
    parser.add_argument("--subscribers", type=ints, default=[10, 100, 1000])
    parser.add_argument(
        "--rates", type=ints, default=[2000, 1000, 500], help="msg/s, one per --subscribers"
    )
    parser.add_argument("--sizes", type=ints, default=[256, 4096], help="push bytes on the wire")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each window")
    parser.add_argument("--processes", type=int, default=2, help="subscriber processes")
    parser.add_argument("--sampled", type=int, default=5, help="latency connections per process")
    parser.add_argument("--idle-connections", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="report the median of this many")
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    args = parser.parse_args()
    if len(args.rates) != len(args.subscribers):
        parser.error("--rates needs one rate per --subscribers count")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.quick:
        args.seconds, args.warmup, args.rounds = 1.5, 0.3, 1
        args.idle_connections = min(args.idle_connections, 1000)
    return args


async def systems(args: argparse.Namespace) -> tuple[list[System], Any]:
    """The systems to measure, and the Kaizen server this run started (or None)."""
    out: list[System] = []
    local = None
    if args.only != "redis":
        if args.kaizen_url:
            out.append(kaizen_system(args.kaizen_url, args.kaizen_pid, args.kaizen_token))
        else:
            local = await start_server(*KAIZEN_FLAGS, *args.kaizen_flag)
            out.append(kaizen_system(local.url, local.pid, None))
    if args.only != "kaizen":
        out.append(await redis_system(args.redis))
    return out, local


async def main() -> None:
    args = parse_args()
    raise_fd_limit()  # before the server starts: it inherits the limit
    chosen, local = await systems(args)
    rounds: list[list[Row]] = []
    idle: list[Row] = []
    try:
        for system in chosen:
            print(f"{system.name}: {args.idle_connections:,} idle connections")
            idle.append(await idle_phase(system, args.idle_connections, args.processes))
        for n in range(args.rounds):
            print(f"round {n + 1} of {args.rounds}")
            rounds.append(await one_round(chosen, args))
    finally:
        if local is not None:
            await local.stop()
    rows = median_rows(rounds)
    ratio_rows = median_rows([ratios(r) for r in rounds], key=("subscribers", "size"))
    print()
    print(table(rows, COLUMNS))
    print()
    print(table(idle, IDLE_COLUMNS))
    if ratio_rows:
        print("\nKaizen / Redis:")
        print(table(ratio_rows, ["subscribers", "size", "per_server_cpu_s", "deliveries_per_s"]))
    print()
    print("\n".join(targets(rows, idle, ratio_rows)))
    if args.rounds > 1:
        print("\nranges over rounds (deliveries per server CPU-s; Kaizen / Redis):")
        for r in rows:
            low, high = r["per_server_cpu_s_range"]
            print(
                f"  {r['system']:<6} {r['subscribers']:>5} x {r['size']:>4} B  {low:>9,.0f} to {high:>9,.0f}"
            )
        for q in ratio_rows:
            low, high = q["per_server_cpu_s_range"]
            print(f"  ratio  {q['subscribers']:>5} x {q['size']:>4} B  {low:>9.2f} to {high:>9.2f}")
    payload = {
        "settings": {k: v for k, v in vars(args).items() if k != "kaizen_token"},
        "rounds": rounds,
        "rows": rows,
        "idle": idle,
        "kaizen_over_redis": ratio_rows,
    }
    print(f"\nwrote {write_results('fanout', payload)}")


if __name__ == "__main__":
    uvloop.run(main())
