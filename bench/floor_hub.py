"""The floor under Kaizen's hub: about the least CPU a Python asyncio server can
spend per publish, with or without storing each message before it is delivered.

    python -m bench.floor_hub --store sqlite|memory [--transport aiohttp|raw]
                              [--commit-interval-s 0.005] [--port 0] [--data-dir DIR]

A peer for bench/fanout_floor.py, measured in the same run as Kaizen and Redis.
It answers only the /ws subset that bench/lean.py speaks (hello, create_channel,
subscribe, publish) and skips everything else Kaizen does per message: no
validation, tenants, auth, limits, priorities, outbox bounds or recovery, one
channel set per name. It reads frames with aiohttp's WebSocket, as Kaizen does,
or (`--transport raw`) on a bare asyncio Protocol with RFC 6455 framing by hand;
both run on uvloop and write pushes to the transport as prebuilt frames.

- `--store sqlite`: each publish is one row of Kaizen's own `knowledge` table and
  its FTS5 row (the same migrations), group-committed by one writer thread (WAL,
  synchronous=FULL); pushes and the ack go out only after the commit, one write
  per connection per commit. The target is exactly this order.
- `--store memory`: numbered and pushed at once (one write per connection per
  loop pass): the floor of the transport and fan-out alone.

It prints `listening on http://HOST:PORT` as `kaizen serve` does, so
bench.common.start_server starts it.
"""

import argparse
import asyncio
import base64
import hashlib
import os
import queue
import sqlite3
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import orjson
import uvloop
from aiohttp import WSMsgType, web

from bench.lean import mask
from server.db.migrations import MIGRATIONS
from server.hub.wsframe import text_frame

WS_GUID = b"258EAFA5-E914-47A3-95CA-C5AB0DC11B65"
"""RFC 6455 §1.3: the accept key is base64(SHA-1(key + this GUID))."""
HELLO = orjson.dumps({"type": "hello"})
INSERT_ROW = (
    "INSERT INTO knowledge (tenant, channel, seq, rank, kind, source_agent, tags, "
    "created_at, body) VALUES ('default', ?, ?, 1, ?, '', '', ?, ?)"
)
INSERT_FTS = (
    "INSERT INTO knowledge_fts (rowid, title, content, tags) VALUES (last_insert_rowid(), ?, ?, '')"
)


def client_frames(buf: bytearray) -> tuple[list[tuple[int, bytes]], int]:
    """The complete (opcode, payload) frames at the start of `buf`, and the bytes
    they take. Clients always mask, so a 4-byte key follows the length; XOR with
    it again unmasks (RFC 6455 §5.3)."""
    frames, i, n = [], 0, len(buf)
    while n - i >= 6:
        length, start = buf[i + 1] & 0x7F, i + 2
        if length == 126:
            length, start = int.from_bytes(buf[i + 2 : i + 4], "big"), i + 4
        elif length == 127:
            length, start = int.from_bytes(buf[i + 2 : i + 10], "big"), i + 10
        if start + 4 + length > n:
            break
        key = bytes(buf[start : start + 4])
        frames.append((buf[i] & 0x0F, mask(bytes(buf[start + 4 : start + 4 + length]), key)))
        i = start + 4 + length
    return frames, i


def upgrade_reply(request: bytes) -> bytes | None:
    """The 101 answer to a WebSocket upgrade (RFC 6455 §4.2.2); None without a key."""
    key = next(
        (
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        ),
        None,
    )
    if key is None:
        return None
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


Queued = tuple["Peer", bytes, bytes, bytes]
"""(publisher, ack frame, channel, push frame)."""


class Hub:
    """Channels, numbering and delivery: one write per connection per batch."""

    def __init__(self, store: Callable[[Queued, dict[str, Any]], None] | None) -> None:
        self.channels: dict[bytes, set[Peer]] = defaultdict(set)
        self.seqs: dict[bytes, int] = defaultdict(int)
        self.pending: list[Queued] = []
        self.store = store
        self.writer: SqliteWriter | None = None

    def publish(self, peer: "Peer", rid: Any, message: dict[str, Any]) -> None:
        channel = message["channel"].encode()
        seq = self.seqs[channel] = self.seqs[channel] + 1
        push = orjson.dumps(
            {"type": "push", "channel": message["channel"], "offset": seq, "data": message}
        )
        ack = orjson.dumps({"type": "reply", "op": "publish", "id": rid, "offset": seq})
        item = (peer, text_frame(ack), channel, text_frame(push))
        if self.store is not None:
            self.store(item, {"seq": seq, "message": message})
        else:
            self.pending.append(item)
            if len(self.pending) == 1:
                asyncio.get_running_loop().call_soon(self.deliver_pending)

    def deliver_pending(self) -> None:
        batch, self.pending = self.pending, []
        self.deliver(batch)

    def deliver(self, batch: list[Queued]) -> None:
        out: dict[Peer, list[bytes]] = defaultdict(list)
        for publisher, ack, channel, push in batch:
            for peer in self.channels[channel]:
                out[peer].append(push)
            out[publisher].append(ack)
        for peer, frames in out.items():
            peer.write(b"".join(frames))


HUB = web.AppKey("hub", Hub)


class SqliteWriter:
    """One thread; takes whatever is queued, commits it in one transaction, then
    hands the batch back to the loop to deliver."""

    def __init__(
        self, path: Path, deliver: Callable[[list[Queued]], None], interval_s: float
    ) -> None:
        self.interval_s = interval_s
        self.commits = self.rows = 0
        """Commits and rows written (a message and its FTS row: 2 a publish), as
        Kaizen's writer counts them; read on the loop while this thread counts."""
        self.loop = asyncio.get_running_loop()
        self.deliver = deliver
        self.queue: queue.SimpleQueue[tuple[Queued, dict[str, Any]]] = queue.SimpleQueue()
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)  # offsets restart at 1: keep nothing from a last run
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        for script in MIGRATIONS[:2]:
            self.db.executescript(script)
        threading.Thread(target=self.run, daemon=True).start()

    def submit(self, item: Queued, row: dict[str, Any]) -> None:
        self.queue.put((item, row))

    def run(self) -> None:
        """Commit until a commit fails; then say why and end the process (a bench
        must not wait out its ack timeouts behind a dead writer)."""
        try:
            self.commit_forever()
        except BaseException:
            traceback.print_exc()
            os._exit(1)

    def commit_forever(self) -> None:
        """Like Kaizen's writer: a write to an idle writer commits at once; later
        ones wait until `interval_s` after the last commit began, to share one."""
        last = 0.0
        while True:
            taken = [self.queue.get()]
            time.sleep(max(0.0, last + self.interval_s - time.monotonic()))
            while not self.queue.empty():
                taken.append(self.queue.get_nowait())
            last = time.monotonic()
            self.commit([row for _, row in taken])
            self.commits += 1
            self.rows += 2 * len(taken)
            self.loop.call_soon_threadsafe(self.deliver, [item for item, _ in taken])

    def commit(self, rows: list[dict[str, Any]]) -> None:
        now = time.time()
        self.db.execute("BEGIN")
        for row in rows:
            message = row["message"]
            body = orjson.dumps(message)
            self.db.execute(
                INSERT_ROW, (message["channel"], row["seq"], message["knowledge_type"], now, body)
            )
            self.db.execute(INSERT_FTS, (message.get("title", ""), message.get("content", "")))
        self.db.execute("COMMIT")


class Peer:
    """One subscriber or publisher, whatever carries its frames: ops in, bytes out."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.transport: asyncio.Transport | None = None

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def op(self, frame: dict[str, Any]) -> None:
        op, rid = frame.get("op"), frame.get("id")
        if op == "publish":
            self.hub.publish(self, rid, frame["message"])
            return
        if op == "subscribe":
            self.hub.channels[frame["channel"].encode()].add(self)
        self.write(text_frame(orjson.dumps({"type": "reply", "op": op, "id": rid})))

    def gone(self) -> None:
        for peers in self.hub.channels.values():
            peers.discard(self)
        self.transport = None


class RawPeer(Peer, asyncio.Protocol):
    """A Peer on a raw asyncio Protocol: the upgrade, then text frames as ops."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub)
        self.buf = bytearray()
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            reply = upgrade_reply(bytes(self.buf[:end]))
            if reply is None and self.transport is not None:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()
                return
            self.write((reply or b"") + text_frame(HELLO))
            del self.buf[: end + 4]
            self.upgraded = True
        frames, used = client_frames(self.buf)
        del self.buf[:used]
        for opcode, payload in frames:
            if self.transport is None or self.transport.is_closing():
                return  # nothing after a close frame
            self.frame(opcode, payload)

    def frame(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x9:
            self.write(bytes([0x8A, len(payload)]) + payload)
        elif opcode == 0x8 and self.transport is not None:
            self.write(bytes([0x88, 0]))
            self.transport.close()
        elif opcode == 0x1:
            self.op(orjson.loads(payload))

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone()


async def aiohttp_peer(request: web.Request) -> web.WebSocketResponse:
    """A Peer on aiohttp's WebSocket, as Kaizen's /ws is: aiohttp reads and
    parses the frames; pushes go to the transport as prebuilt frames, as Kaizen's do."""
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    peer = Peer(request.app[HUB])
    peer.transport = cast(asyncio.Transport, request.transport)
    peer.write(text_frame(HELLO))
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                peer.op(orjson.loads(msg.data))
    finally:
        peer.gone()
    return ws


async def stats(request: web.Request) -> web.Response:
    """Commits and rows so far, in the shape of Kaizen's `/stats` writer section
    (whose `writes` counts rows)."""
    writer = request.app[HUB].writer
    counts = {"batches": writer.commits, "writes": writer.rows} if writer else {}
    return web.Response(body=orjson.dumps({"writer": counts}), content_type="application/json")


async def listen(args: argparse.Namespace, hub: Hub) -> asyncio.AbstractServer | web.AppRunner:
    """Serve on the chosen transport; returns what holds the listening socket."""
    if args.transport == "raw":
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: RawPeer(hub), args.host, args.port, backlog=1024)
        print(f"listening on http://{args.host}:{server.sockets[0].getsockname()[1]}", flush=True)
        return server
    app = web.Application()
    app[HUB] = hub
    app.router.add_get("/ws", aiohttp_peer)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=1024)
    await site.start()
    print(f"listening on http://{args.host}:{runner.addresses[0][1]}", flush=True)
    return runner


async def serve(args: argparse.Namespace) -> None:
    hub = Hub(None)
    if args.store == "sqlite":
        data = Path(args.data_dir or tempfile.mkdtemp(prefix="kaizen-floor-"))
        hub.writer = SqliteWriter(data / "floor.sqlite3", hub.deliver, args.commit_interval_s)
        hub.store = hub.writer.submit
    await listen(args, hub)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--transport", choices=["aiohttp", "raw"], default="aiohttp")
    parser.add_argument(
        "--commit-interval-s",
        type=float,
        default=0.005,
        help="least time between commits, as Kaizen's write_commit_interval_s",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", help="where the SQLite file goes (default: a temp dir)")
    uvloop.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
