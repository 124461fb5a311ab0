"""Chat-session processing: the time from `POST /sessions/{id}/end` to its report,
per stage, for sessions of realistic length.

    python -m bench.sessions [--sessions 20] [--messages 20]

Each session is a technical conversation on one of a few subjects: short user
questions and follow-ups (15 to 40 words) and assistant answers of 80 to 200
words with a code block now and then, alternating, `--messages` in all (
and 001 describe sessions of this kind). Sessions run one at a time on a fresh
server with the MiniLM embedder (the `ml` extra), messages `--pause` apart (0.25
s; a person takes far longer), so each is processed alone:
`seconds` is `ended → processed` as the client sees it (polling `GET /sessions/
{id}` every 10 ms), beside the sum of the pipeline's own stage timings and each
stage's share. The first session pays the model's warm-up and is reported apart.
Fine-tuning is off, as the target excludes it. The server embeds each message in
the background as it arrives (topics and memory need them), so a session's end
waits for its candidate phrases only; `--pause 0` shows the cost when messages
come all at once (the bench runs that too, on a second fresh server).
"""

import argparse
import asyncio
import random
import time
from collections import defaultdict
from typing import Any

import aiohttp
import orjson

from bench.common import percentile, start_server, table, write_results

SUBJECTS = {
    "docker networking": [
        "containers cannot reach each other on the bridge network",
        "the compose file publishes port 8080 but curl times out",
        "DNS resolution inside the container fails for service names",
        "the overlay network drops packets under load",
    ],
    "pytest fixtures": [
        "a session-scoped fixture leaks state between tests",
        "parametrized fixtures multiply the test run time",
        "the async fixture never finishes its teardown",
        "monkeypatch does not undo the environment variable",
    ],
    "postgres performance": [
        "a query on the orders table does a sequential scan",
        "the index on created_at is not used with a date cast",
        "vacuum cannot keep up with the update rate",
        "connection pool exhaustion under a traffic spike",
    ],
    "react state": [
        "the component re-renders on every keystroke",
        "useEffect runs twice in development mode",
        "the context value changes identity on each render",
        "a stale closure reads an old state value",
    ],
}
FILLER = (
    "In practice the cause is usually configuration rather than code, so check the "
    "settings first, reproduce it with the smallest example you can, and measure "
    "before and after the change. Keep the fix small and write a test that fails "
    "without it. If the behaviour differs between environments, compare versions, "
    "environment variables and resource limits side by side."
).split()
CODE = "\n```\n{cmd}\n```\n"
COMMANDS = [
    "docker network inspect bridge",
    "pytest -x -k fixture --setup-show",
    "EXPLAIN ANALYZE SELECT * FROM orders WHERE created_at > now() - interval '1 day';",
    "npx react-scripts test --watchAll=false",
]


def conversation(rng: random.Random, messages: int) -> list[tuple[str, str]]:
    subject = rng.choice(list(SUBJECTS))
    problems = SUBJECTS[subject]
    out: list[tuple[str, str]] = []
    for n in range(messages):
        problem = problems[(n // 2) % len(problems)]
        if n % 2 == 0:
            out.append(("user", _question(rng, subject, problem)))
        else:
            out.append(("assistant", _answer(rng, subject, problem)))
    return out


def _question(rng: random.Random, subject: str, problem: str) -> str:
    opener = rng.choice(["I have a problem with", "Quick question about", "Still stuck on"])
    tail = rng.sample(FILLER, rng.randint(5, 25))
    return f"{opener} {subject}: {problem}. {' '.join(tail)}?"


def _answer(rng: random.Random, subject: str, problem: str) -> str:
    words = [w for _ in range(rng.randint(2, 5)) for w in FILLER]
    body = " ".join(words[: rng.randint(60, 180)])
    code = CODE.format(cmd=rng.choice(COMMANDS)) if rng.random() < 0.4 else ""
    return f"When {problem} in {subject}, {body}.{code}"


async def one_session(
    http: aiohttp.ClientSession, talk: list[tuple[str, str]], pause: float
) -> dict[str, Any]:
    async with http.post("/sessions", data=b"{}") as resp:
        sid = orjson.loads(await resp.read())["id"]
    for role, text in talk:
        body = orjson.dumps({"role": role, "content": text})
        async with http.post(f"/sessions/{sid}/messages", data=body) as resp:
            assert resp.status == 201, await resp.text()
        await asyncio.sleep(pause)
    ended = time.perf_counter()
    async with http.post(f"/sessions/{sid}/end") as resp:
        assert resp.status == 200
    while True:
        async with http.get(f"/sessions/{sid}") as resp:
            info = orjson.loads(await resp.read())
        if info["state"] == "processed":
            break
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - ended
    stages = {s["name"]: s["seconds"] for s in info["report"]["stages"]}
    return {"seconds": seconds, "stages": stages, "words": sum(len(t.split()) for _, t in talk)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.25)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    summaries, stages = [], []
    for pause in dict.fromkeys((args.pause, 0.0)):
        server = await start_server()
        try:
            async with aiohttp.ClientSession(server.url) as http:
                first = await one_session(http, conversation(rng, args.messages), pause)
                runs = [
                    await one_session(http, conversation(rng, args.messages), pause)
                    for _ in range(args.sessions)
                ]
        finally:
            await server.stop()
        summaries.append(summary(first, runs, args.messages, pause))
        stages += stage_rows(runs, pause)
    print(table(summaries, list(summaries[0])))
    print(table(stages, ["pause_s", "stage", "p50_ms", "max_ms"]))
    path = write_results("sessions", {"summary": summaries, "stages": stages})
    print(f"wrote {path}")


def summary(
    first: dict[str, Any], runs: list[dict[str, Any]], messages: int, pause: float
) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    return {
        "sessions": len(runs),
        "messages": messages,
        "pause_s": pause,
        "mean_words": round(sum(r["words"] for r in runs) / len(runs)),
        "p50_ms": 1000 * percentile(seconds, 0.5),
        "p90_ms": 1000 * percentile(seconds, 0.9),
        "max_ms": 1000 * max(seconds),
        "first_ms": 1000 * first["seconds"],
    }


def stage_rows(runs: list[dict[str, Any]], pause: float) -> list[dict[str, Any]]:
    per_stage: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        for name, s in r["stages"].items():
            per_stage[name].append(s)
    return [
        {
            "pause_s": pause,
            "stage": name,
            "p50_ms": 1000 * percentile(v, 0.5),
            "max_ms": 1000 * max(v),
        }
        for name, v in per_stage.items()
    ]


if __name__ == "__main__":
    asyncio.run(main())
