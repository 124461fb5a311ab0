"""Workflow learner through the server: events/s over WebSocket batches, the latency
from a session going idle to its learned workflow, and next-command top-3 accuracy.

    python -m bench.workflows [--sessions 3000] [--batch 1000] [--inflight 4]

1. Ingest: the generated stream (`bench.workflow_stream`: edit-test-fix-commit
   loops, builds, pulls, noise, interleaved developers) is sent as `record_events`
   calls of `--batch` events on one `/ws`, `--inflight` calls outstanding; the rate
   counts events acknowledged (committed) per wall second. Beside it, the same
   events over HTTP `POST /events` batches, one at a time.
2. Idle latency: with `--workflow-idle-s 1`, sessions are sent, then the bench polls
   `/workflows/stats` until they are learned; latency = seen learned − (last event
   + idle). The server ticks every 0.05 s here.
3. Accuracy: top-3 next-command accuracy on the stream's held-out split (the last
   20% of sessions by start), from the learner the service runs
   (`server.workflows`), as `bench.workflow_stream` measures it: `top3` as
   `/workflows/next?session_id=` predicts (the id's earlier commands feed the
   session cache), `top3_prefix_only` from the workflow session's own prefix.
"""

import argparse
import asyncio
import time
from typing import Any

import aiohttp
import orjson

from bench.common import cpu_seconds, start_server, table, write_results
from bench.workflow_stream import StreamParams, accuracy_at, generate


async def ingest_ws(
    url: str, events: list[dict[str, Any]], batch: int, inflight: int
) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws") as ws:
        await ws.receive()  # hello
        batches = [events[i : i + batch] for i in range(0, len(events), batch)]
        frames = [
            orjson.dumps({"id": str(n), "op": "record_events", "args": {"events": b}})
            for n, b in enumerate(batches)
        ]
        started = time.perf_counter()
        sent = acked = 0
        while acked < len(frames):
            while sent < len(frames) and sent - acked < inflight:
                await ws.send_bytes(frames[sent])
                sent += 1
            reply = orjson.loads((await ws.receive()).data)
            if reply.get("type") != "result":
                raise RuntimeError(f"unexpected frame {reply}")
            acked += 1
        elapsed = time.perf_counter() - started
    return {
        "path": "ws",
        "events": len(events),
        "seconds": elapsed,
        "events_per_s": len(events) / elapsed,
    }


async def ingest_http(url: str, events: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    async with aiohttp.ClientSession(url) as http:
        started = time.perf_counter()
        for i in range(0, len(events), batch):
            body = orjson.dumps({"events": events[i : i + batch]})
            async with http.post("/events", data=body) as resp:
                if resp.status != 201:
                    raise RuntimeError(await resp.text())
        elapsed = time.perf_counter() - started
    return {
        "path": "http",
        "events": len(events),
        "seconds": elapsed,
        "events_per_s": len(events) / elapsed,
    }


async def idle_latency(sessions: int) -> dict[str, Any]:
    server = await start_server("--workflow-idle-s", "1", "--workflow-tick-s", "0.05")
    try:
        async with aiohttp.ClientSession(server.url) as http:
            latencies = []
            for n in range(sessions):
                cmds = ["git pull", "vim a.py", "pytest", "git commit -m x"]
                now = time.time()
                events = [
                    {
                        "event_type": "command_executed",
                        "session_id": f"s{n}",
                        "timestamp": now,
                        "metadata": {"command": c},
                    }
                    for c in cmds
                ]
                async with http.post("/events", data=orjson.dumps({"events": events})) as resp:
                    assert resp.status == 201
                last = time.time()
                while True:
                    async with http.get("/workflows/stats") as resp:
                        stats = orjson.loads(await resp.read())
                    if stats["sessions_learned"] > n:
                        break
                    await asyncio.sleep(0.005)
                latencies.append(time.time() - (last + 1.0))
    finally:
        await server.stop()
    latencies.sort()
    return {
        "sessions": sessions,
        "idle_s": 1.0,
        "tick_s": 0.05,
        "p50_s": latencies[len(latencies) // 2],
        "max_s": latencies[-1],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=4)
    args = parser.parse_args()
    stream = generate(1, args.sessions)
    events = [event for _, event in stream]
    rows = []
    for path in ("ws", "http"):
        server = await start_server()
        try:
            cpu0 = cpu_seconds(server.pid)
            if path == "ws":
                row = await ingest_ws(server.url, events, args.batch, args.inflight)
            else:
                row = await ingest_http(server.url, events, args.batch)
            row["server_cpu_s"] = cpu_seconds(server.pid) - cpu0
            rows.append(row)
        finally:
            await server.stop()
    print(table(rows, ["path", "events", "seconds", "events_per_s", "server_cpu_s"]))
    latency = await idle_latency(20)
    print(table([latency], ["sessions", "idle_s", "tick_s", "p50_s", "max_s"]))
    accuracy = accuracy_at(1, args.sessions, StreamParams())
    columns = ["noise_rate", "sessions", "learned", "top3", "top3_prefix_only", "top1"]
    print(table([accuracy], [*columns, "top3_no_marks", "baseline_top3"]))
    written = write_results(
        "workflows",
        {
            "batch": args.batch,
            "inflight": args.inflight,
            "ingest": rows,
            "idle_latency": latency,
            "accuracy": accuracy,
        },
    )
    print(f"wrote {written}")


if __name__ == "__main__":
    asyncio.run(main())
