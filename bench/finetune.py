"""Fine-tuning through the server, on a tiny Llama built on the spot.

    python -m bench.finetune [--steps 100] [--load-s 15] [--rate 1000]

1. Throughput: one job of `--steps` steps, nothing else running: examples/s and
   tokens/s as the worker measured them (model loading left out), and the job's
   wall time from submit to SUCCEEDED (worker start and evaluation included).
2. Event-loop lag: `--rate` interactions/s posted in batches of 50 every 50 ms for
   `--load-s` seconds, first alone, then while a long job trains in the process
   pool; p50/p99/max of the server's own 10 ms timer lateness (/stats loop_lag,
   over that window).
3. Session to promoted adapter: a session of 4 messages ends; the time until the
   job it triggers has run and the gate has decided (promoted or not).
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import start_server, table, write_results
from server.training.tiny import build_tiny_llama

FINAL = {"succeeded", "failed", "cancelled"}


def interaction(n: int) -> dict[str, Any]:
    word = ["apple", "river", "stone", "cloud", "maple"][n % 5]
    return {
        "agent_type": "code",
        "task_description": f"handle the {word} case {n % 200}",
        "actions_taken": [{"type": word.upper()}, {"type": "TEST"}],
        "success": True,
        "completion_time": 3.0,
    }


async def load(http: aiohttp.ClientSession, rate: int, seconds: float) -> int:
    """Post `rate` interactions/s for `seconds`; returns how many were stored."""
    per_tick, tick = rate // 20, 0.05
    sent, start = 0, time.perf_counter()
    for k in range(int(seconds / tick)):
        body = orjson.dumps({"interactions": [interaction(sent + i) for i in range(per_tick)]})
        async with http.post("/interactions", data=body) as resp:
            assert resp.status == 201, await resp.text()
        sent += per_tick
        delay = start + (k + 1) * tick - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    return sent


async def lag(http: aiohttp.ClientSession) -> dict[str, float]:
    async with http.get("/stats") as resp:
        stats: dict[str, dict[str, float]] = orjson.loads(await resp.read())
    return stats["loop_lag"]


async def job_until(http: aiohttp.ClientSession, job_id: int, states: set[str]) -> dict[str, Any]:
    while True:
        async with http.get(f"/jobs/{job_id}") as resp:
            job: dict[str, Any] = orjson.loads(await resp.read())
        if job["state"] in states:
            return job
        await asyncio.sleep(0.05)


async def submit(http: aiohttp.ClientSession, **body: Any) -> dict[str, Any]:
    async with http.post("/jobs/fine-tune", data=orjson.dumps(body)) as resp:
        assert resp.status == 201, await resp.text()
        return dict(orjson.loads(await resp.read()))


async def throughput(http: aiohttp.ClientSession, steps: int) -> dict[str, Any]:
    started = time.perf_counter()
    job = await job_until(http, (await submit(http, max_steps=steps))["id"], FINAL)
    result = job["result"] or {}
    return {
        "steps": steps,
        "state": job["state"],
        "wall_s": time.perf_counter() - started,
        "examples_per_s": result.get("examples_per_s"),
        "tokens_per_s": result.get("tokens_per_s"),
        "device": result.get("device"),
        "promoted": result.get("promoted"),
    }


async def lag_under_load(
    http: aiohttp.ClientSession, rate: int, seconds: float
) -> list[dict[str, Any]]:
    rows = []
    stored = await load(http, rate, seconds)
    rows.append({"phase": "ingest only", "interactions": stored, **await lag(http)})
    job = await submit(http, max_steps=1_000_000)
    while (await job_until(http, job["id"], {"running"}))["progress"] is None:
        await asyncio.sleep(0.1)  # training has started, not just the worker
    stored = await load(http, rate, seconds)
    rows.append({"phase": "ingest + training", "interactions": stored, **await lag(http)})
    async with http.delete(f"/jobs/{job['id']}") as resp:
        assert resp.status == 200
    return rows


async def session_to_adapter(http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.post("/sessions", data=b"{}") as resp:
        sid = orjson.loads(await resp.read())["id"]
    for n in range(2):
        for role, text in (
            ("user", f"How do I list files, case {n}?"),
            ("assistant", f"Run ls -la, case {n}."),
        ):
            body = orjson.dumps({"role": role, "content": text})
            async with http.post(f"/sessions/{sid}/messages", data=body) as resp:
                assert resp.status == 201
    ended = time.perf_counter()
    async with http.post(f"/sessions/{sid}/end") as resp:
        assert resp.status == 200
    while True:
        async with http.get("/jobs", params={"limit": "5"}) as resp:
            jobs = [
                j for j in orjson.loads(await resp.read())["items"] if j["trigger"] == "session"
            ]
        if jobs and jobs[0]["state"] in FINAL:
            break
        await asyncio.sleep(0.05)
    result = jobs[0]["result"] or {}
    return {
        "seconds": time.perf_counter() - ended,
        "state": jobs[0]["state"],
        "promoted": result.get("promoted"),
        "reason": result.get("reason"),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--load-s", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=1000)
    args = parser.parse_args()
    model = build_tiny_llama(Path(tempfile.mkdtemp(prefix="kaizen-tiny-")))
    flags = [
        "--training-base-model",
        str(model),
        "--training-learning-rate",
        "0.01",
        "--training-batch-size",
        "8",
        "--training-max-length",
        "48",
        "--training-lora-r",
        "4",
        "--training-max-steps",
        "40",
        "--loop-lag-window-s",
        str(args.load_s),
    ]
    server = await start_server(*flags)
    try:
        async with aiohttp.ClientSession(server.url) as http:
            await load(http, 1000, 1.0)
            job = await throughput(http, args.steps)
            print(table([job], list(job)))
            lags = await lag_under_load(http, args.rate, args.load_s)
            print(table(lags, ["phase", "interactions", "samples", "p50_ms", "p99_ms", "max_ms"]))
            session = await session_to_adapter(http)
            print(table([session], ["seconds", "state", "promoted"]))
    finally:
        await server.stop()
    path = write_results(
        "finetune",
        {
            "model": "tiny Llama (tiny.py): vocab 512, hidden 64, 2 layers",
            "job": job,
            "loop_lag": lags,
            "session_to_adapter": session,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
