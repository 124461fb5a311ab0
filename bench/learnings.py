"""Learnings bench: query latency over many learnings, and freshness under ingest load.

    python -m bench.learnings [--sizes 10000,100000] [--queries 500] [--concurrency 1,8]
                              [--probes 20] [--rate 1000] [--quick]

For each size it starts a fresh server in a temporary data dir and:
1. Ingests a synthetic corpus built to yield about `size` learnings (batches of
   1,000 over HTTP, several posters in flight), then waits until `GET /stats` shows
   the extractor caught up and `counts.learnings` ≥ size.
2. Times `GET /learnings?task=…&limit=10` with distinct query texts (never repeated,
   never equal to a stored description, so no cache can hit) at each concurrency,
   over raw aiohttp keep-alive sessions (not the SDK: its pydantic parsing would be
   timed too); client-side p50/p95/p99, queries/s and server CPU-s per query.
3. Freshness: while a background poster offers `--rate` interactions/s, records
   3 interactions of a brand-new pattern in one POST and polls `GET /learnings` every
   ~50 ms until a learning with that action sequence shows; lag runs from the POST's
   ack. `/stats` is sampled meanwhile to tell whether extraction kept up.

Corpus: tasks are templates over 10 domains (verbs × objects × technologies, so
clusters differ in meaning), 5 agent types, and action sequences of 2-4 steps
from a 30-type vocabulary (each domain draws from its own dozen). Every pattern
(agent type, sequence) is distinct across the corpus, so each yields a learning
however the server clusters tasks: 90% are success patterns (3 successes, 30%
with one extra failure), 10% failure patterns (the mirror), ≈3.3 interactions
per learning. Descriptions repeat verbatim across their interactions.
Writes bench/results/learnings.json.
"""

import argparse
import asyncio
import contextlib
import itertools
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

from bench.common import (
    LocalServer,
    cpu_seconds,
    percentile,
    start_server,
    table,
    write_results,
)

Row = dict[str, Any]
JSON = {"Content-Type": "application/json"}
TIMEOUT = aiohttp.ClientTimeout(total=300)

BATCH = 1_000
POSTERS = 4
TASKS = 2_000
FAILURE_SHARE = 0.10
EXTRA_OUTCOME_SHARE = 0.30
LENGTH_WEIGHTS = {2: 0.15, 3: 0.45, 4: 0.40}
PROBE_LENGTH = 5
"""Probe sequences are longer than any in the corpus or the live load: never seen before."""
POLL_S = 0.050
"""Between probe polls. Each poll is a 100-item /learnings query (~25 ms of server
CPU at 100k learnings): polled every 10 ms, the probe alone took most of a core
from the extractor it was timing. Lags are exact to about this much."""
PROBE_TIMEOUT_S = 10.0
STATS_EVERY_S = 0.1
LIVE_BATCH = 100
LIVE_IN_FLIGHT = 16
STALL_S = 30.0
"""Give up waiting for learnings when the extractor is idle and the count is unchanged this long."""

TARGETS = {"p50_ms": 20.0, "p95_ms": 50.0, "fresh_ms": 2_000.0, "rate": 1_000.0}
TARGET_SIZE = 100_000

# -- corpus vocabulary ------------------------------------------------------------

AGENT_TYPES = ("coder", "reviewer", "tester", "ops", "analyst")
ACTIONS = (
    "READ_FILE SEARCH_CODE EDIT_FILE CREATE_FILE DELETE_FILE RUN_TESTS EXECUTE "
    "INSTALL_DEPENDENCY LINT TYPE_CHECK BUILD DEPLOY ROLLBACK QUERY_DATABASE MIGRATE_SCHEMA "
    "CALL_API WEB_SEARCH READ_DOCS ASK_USER WRITE_DOCS COMMIT OPEN_PR REVIEW_DIFF PROFILE "
    "BENCHMARK DEBUG INSPECT_LOGS RESTART_SERVICE CONFIGURE PLOT_CHART"
).split()


@dataclass(frozen=True)
class Domain:
    template: str
    verbs: tuple[str, ...]
    objects: tuple[str, ...]
    techs: tuple[str, ...]
    actions: tuple[str, ...]


def _domain(template: str, verbs: str, objects: str, techs: str, actions: str) -> Domain:
    return Domain(template, _split(verbs), _split(objects), _split(techs), tuple(actions.split()))


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(";"))


DOMAINS = (
    _domain(
        "{verb} {object} in the {tech} backend",
        "Add; Fix; Refactor; Optimize; Document; Write tests for",
        "pagination for the orders endpoint; rate limiting on the login route; input validation "
        "for the signup form; caching for the product catalog API; JWT authentication middleware; "
        "the password reset flow; webhook retries for payment events; CSV export of invoices",
        "Django; FastAPI; Flask; Express; Rails",
        "READ_FILE SEARCH_CODE EDIT_FILE CREATE_FILE RUN_TESTS LINT TYPE_CHECK QUERY_DATABASE "
        "CALL_API DEBUG COMMIT OPEN_PR",
    ),
    _domain(
        "{verb} {object} of the {tech} web app",
        "Build; Fix; Restyle; Speed up; Make accessible; Add tests for",
        "the checkout page; the dark mode toggle; the infinite scroll feed; the date picker "
        "component; the settings modal; the onboarding wizard; the search autocomplete; "
        "the image gallery",
        "React; Vue; Svelte; Angular; Next.js",
        "READ_FILE SEARCH_CODE EDIT_FILE CREATE_FILE RUN_TESTS LINT BUILD INSTALL_DEPENDENCY "
        "PROFILE DEBUG REVIEW_DIFF COMMIT",
    ),
    _domain(
        "{verb} {object} in {tech}",
        "Build; Debug; Backfill; Speed up; Monitor; Validate",
        "the nightly ETL job for sales data; the clickstream ingestion pipeline; the customer "
        "deduplication step; the daily revenue aggregation; the CDC feed from the orders "
        "database; the feature table for churn prediction; the partitioned event log; "
        "the currency conversion join",
        "Airflow; Spark; dbt; Kafka; Dagster",
        "READ_FILE EDIT_FILE EXECUTE QUERY_DATABASE MIGRATE_SCHEMA INSPECT_LOGS CONFIGURE "
        "BENCHMARK DEBUG RUN_TESTS DEPLOY RESTART_SERVICE",
    ),
    _domain(
        "{verb} {object} with {tech}",
        "Train; Fine-tune; Evaluate; Tune hyperparameters of; Deploy; Debug",
        "a sentiment classifier for support tickets; a fraud detection model; an image "
        "classifier for product photos; a demand forecasting model; a recommendation ranker; "
        "a named entity recognizer for invoices; a speech-to-text model for call recordings; "
        "an anomaly detector for sensor data",
        "PyTorch; scikit-learn; XGBoost; TensorFlow; JAX",
        "READ_FILE EDIT_FILE CREATE_FILE EXECUTE INSTALL_DEPENDENCY QUERY_DATABASE PLOT_CHART "
        "BENCHMARK PROFILE READ_DOCS DEBUG DEPLOY",
    ),
    _domain(
        "{verb} {object} using {tech}",
        "Set up; Fix; Migrate; Harden; Automate; Scale",
        "the CI pipeline for pull requests; blue-green deployments; TLS certificate renewal; "
        "log shipping to the central store; autoscaling for the API workers; secrets "
        "management; nightly database backups; the staging environment",
        "Kubernetes; Terraform; GitHub Actions; Ansible; Docker Compose",
        "READ_FILE EDIT_FILE CREATE_FILE CONFIGURE EXECUTE DEPLOY ROLLBACK INSPECT_LOGS "
        "RESTART_SERVICE BUILD READ_DOCS OPEN_PR",
    ),
    _domain(
        "{verb} {object} in {tech}",
        "Optimize; Add an index for; Migrate; Debug; Partition; Archive",
        "the slow orders report query; the user activity table; the full-text search on "
        "articles; the deadlock in the billing transactions; the inventory schema; the audit "
        "log table; the geospatial store lookup; the session storage",
        "PostgreSQL; MySQL; MongoDB; SQLite; Redis",
        "QUERY_DATABASE MIGRATE_SCHEMA PROFILE BENCHMARK INSPECT_LOGS READ_DOCS EDIT_FILE "
        "EXECUTE CONFIGURE RESTART_SERVICE DEBUG RUN_TESTS",
    ),
    _domain(
        "{verb} {object} in the {tech} mobile app",
        "Implement; Fix; Profile; Localize; Test; Redesign",
        "push notifications; offline sync of notes; the login screen; in-app purchases; the "
        "camera upload flow; deep links from emails; the map view with nearby stores; "
        "biometric unlock",
        "Swift; Kotlin; Flutter; React Native; Jetpack Compose",
        "READ_FILE SEARCH_CODE EDIT_FILE CREATE_FILE BUILD RUN_TESTS PROFILE DEBUG "
        "INSTALL_DEPENDENCY CALL_API COMMIT REVIEW_DIFF",
    ),
    _domain(
        "{verb} {object} of the {tech} service",
        "Audit; Patch; Fix; Scan; Threat-model; Review",
        "the SQL injection in the search form; the file upload handler; the OAuth callback; "
        "dependency vulnerabilities; the admin panel permissions; cross-site scripting in "
        "comments; the API key rotation; the session cookie settings",
        "Java Spring; Node.js; PHP Laravel; Go; .NET",
        "READ_FILE SEARCH_CODE EDIT_FILE REVIEW_DIFF RUN_TESTS WEB_SEARCH READ_DOCS "
        "INSTALL_DEPENDENCY CONFIGURE INSPECT_LOGS OPEN_PR ASK_USER",
    ),
    _domain(
        "{verb} {object} in {tech}",
        "Write; Update; Translate; Proofread; Restructure; Summarize",
        "the API reference; the getting started guide; the release notes; the architecture "
        "decision record; the troubleshooting FAQ; the onboarding handbook; the migration "
        "guide; the incident postmortem",
        "Markdown; Sphinx; Docusaurus; MkDocs; Confluence",
        "READ_FILE SEARCH_CODE READ_DOCS WRITE_DOCS EDIT_FILE CREATE_FILE BUILD ASK_USER "
        "WEB_SEARCH REVIEW_DIFF COMMIT OPEN_PR",
    ),
    _domain(
        "{verb} {object} using {tech}",
        "Analyze; Visualize; Explain; Forecast; Segment; Report on",
        "monthly churn by cohort; A/B test results for the new pricing page; support ticket "
        "volume by category; regional sales trends; website conversion funnel drop-off; "
        "delivery times by carrier; employee survey responses; energy usage by building",
        "pandas; SQL; Excel; Tableau; R",
        "QUERY_DATABASE READ_FILE EXECUTE PLOT_CHART WRITE_DOCS ASK_USER CALL_API WEB_SEARCH "
        "CREATE_FILE EDIT_FILE DEBUG READ_DOCS",
    ),
)

SYNONYMS = {
    "Add": ("Introduce", "Implement"),
    "Fix": ("Repair", "Resolve the problems with"),
    "Refactor": ("Clean up", "Restructure"),
    "Optimize": ("Tune", "Improve the performance of"),
    "Build": ("Create", "Put together"),
    "Debug": ("Troubleshoot", "Find the bug in"),
    "Write": ("Draft", "Author"),
    "Analyze": ("Dig into", "Study"),
    "Migrate": ("Move", "Port"),
    "Speed up": ("Accelerate", "Make faster"),
}
QUERY_TEMPLATES = (
    "{verb} {object} ({tech}), {extra}",
    "how can we {verb_l} {object} in {tech}? {extra}",
    "{extra}: {verb_l} {object} for {tech}",
    "need help to {verb_l} {object} with {tech}, {extra}",
)
FILLERS = (
    "quickly; before the release; without downtime; for the mobile team; again; in staging; "
    "as discussed; step by step; with minimal changes; for the audit; this sprint; urgently; "
    "for the new client; on the legacy branch; after the outage; for the demo; carefully; "
    "in production; with better logging; for the quarterly review; keeping backwards "
    "compatibility; on a tight budget; for the EU region; over the weekend; with the intern; "
    "behind a feature flag; for compliance; with fewer retries; at scale; for accessibility"
).split("; ")
CODENAME = ("ka", "lo", "mi", "ra", "ven", "tor", "zu", "del", "pha", "nix", "sor", "qua", "bel")


@dataclass(frozen=True)
class Task:
    text: str
    domain: int
    verb: str
    object: str
    tech: str


@dataclass(frozen=True)
class Pattern:
    task: Task
    agent: str
    actions: tuple[str, ...]
    wins: bool


@dataclass
class Corpus:
    tasks: list[Task]
    patterns: list[Pattern]
    events: list[tuple[int, bool]]
    """(pattern index, success) in posting order."""
    texts: set[str] = field(default_factory=set)
    """Every description used so far, stored or probe: queries must avoid them."""

    @property
    def interactions(self) -> int:
        return len(self.events)


def make_tasks(n: int, rng: random.Random) -> list[Task]:
    combos = [
        Task(d.template.format(verb=v, object=o, tech=t), i, v, o, t)
        for i, d in enumerate(DOMAINS)
        for v in d.verbs
        for o in d.objects
        for t in d.techs
    ]
    return rng.sample(combos, min(n, len(combos)))


def draw_actions(pool: tuple[str, ...], rng: random.Random) -> tuple[str, ...]:
    length = rng.choices(list(LENGTH_WEIGHTS), weights=list(LENGTH_WEIGHTS.values()))[0]
    return tuple(rng.choices(pool, k=length))


def make_patterns(size: int, tasks: list[Task], rng: random.Random) -> list[Pattern]:
    """`size` patterns spread evenly over the tasks; no (agent, sequence) repeats."""
    used: set[tuple[str, tuple[str, ...]]] = set()
    patterns = []
    for i in range(size):
        task = tasks[i % len(tasks)]
        while True:
            agent = rng.choice(AGENT_TYPES)
            actions = draw_actions(DOMAINS[task.domain].actions, rng)
            if (agent, actions) not in used:
                break
        used.add((agent, actions))
        patterns.append(Pattern(task, agent, actions, rng.random() >= FAILURE_SHARE))
    return patterns


def outcomes(pattern: Pattern, rng: random.Random) -> list[bool]:
    """Three of the claimed outcome, sometimes one of the other: a clear majority."""
    extra = [not pattern.wins] if rng.random() < EXTRA_OUTCOME_SHARE else []
    return [pattern.wins] * 3 + extra


def build_corpus(size: int, seed: int) -> Corpus:
    rng = random.Random(seed)
    tasks = make_tasks(min(TASKS, max(100, size // 5)), rng)
    patterns = make_patterns(size, tasks, rng)
    events = [(i, ok) for i, p in enumerate(patterns) for ok in outcomes(p, rng)]
    rng.shuffle(events)
    return Corpus(tasks, patterns, events, {t.text for t in tasks})


def interaction(pattern: Pattern, success: bool, rng: random.Random) -> Row:
    steps = len(pattern.actions)
    return {
        "agent_type": pattern.agent,
        "task_description": pattern.task.text,
        "actions_taken": [{"type": a} for a in pattern.actions],
        "results": [{"ok": True}] * (steps - 1) + [{"ok": success}],
        "success": success,
        "completion_time": round(rng.uniform(2.0, 90.0), 1),
        "iterations": steps,
        "errors_encountered": 0 if success else rng.randint(1, 3),
    }


def chunked(events: Sequence[tuple[int, bool]], n: int) -> Iterator[Sequence[tuple[int, bool]]]:
    return (events[i : i + n] for i in range(0, len(events), n))


def batch_body(items: list[Row]) -> bytes:
    return orjson.dumps({"interactions": items})


# -- text that no cache has seen ----------------------------------------------------


def paraphrase(corpus: Corpus, rng: random.Random) -> str:
    """A query-like recombination of a stored task: synonym verb, another template,
    sometimes another technology of its domain, and random extra words."""
    task = rng.choice(corpus.tasks)
    verb = rng.choice(SYNONYMS.get(task.verb, (task.verb,)))
    tech = rng.choice(DOMAINS[task.domain].techs) if rng.random() < 0.5 else task.tech
    extra = " ".join(rng.sample(FILLERS, rng.randint(1, 3)))
    return rng.choice(QUERY_TEMPLATES).format(
        verb=verb, verb_l=verb[0].lower() + verb[1:], object=task.object, tech=tech, extra=extra
    )


def fresh_texts(corpus: Corpus, n: int, rng: random.Random) -> list[str]:
    """`n` texts never used before in this run (queries, probes, stored descriptions)."""
    out: list[str] = []
    while len(out) < n:
        text = paraphrase(corpus, rng)
        if text not in corpus.texts:
            corpus.texts.add(text)
            out.append(text)
    return out


def probe_task(corpus: Corpus, rng: random.Random) -> str:
    """A new task description: a stored task for a project with a made-up name."""
    while True:
        name = "".join(rng.choices(CODENAME, k=3)).capitalize()
        text = f"{rng.choice(corpus.tasks).text} for project {name}"
        if text not in corpus.texts:
            corpus.texts.add(text)
            return text


# -- 1. ingest ------------------------------------------------------------------------


def encode_corpus(corpus: Corpus, seed: int) -> list[bytes]:
    """The corpus as POST bodies, encoded up front so the client spends no CPU while timed."""
    rng = random.Random(seed)
    return [
        batch_body([interaction(corpus.patterns[i], ok, rng) for i, ok in chunk])
        for chunk in chunked(corpus.events, BATCH)
    ]


async def ingest(session: aiohttp.ClientSession, corpus: Corpus, bodies: list[bytes]) -> Row:
    """Post the bodies, `POSTERS` in flight; returns the rate and the last id."""
    shared = iter(bodies)  # each poster takes the next
    last_id = 0
    latencies: list[float] = []

    async def poster() -> None:
        nonlocal last_id
        for body in shared:
            sent = time.perf_counter()
            ids = await post(session, body)
            latencies.append(time.perf_counter() - sent)
            last_id = max(last_id, ids[-1])

    start = time.perf_counter()
    await asyncio.gather(*(poster() for _ in range(POSTERS)))
    elapsed = time.perf_counter() - start
    return {
        "interactions": corpus.interactions,
        "ingest_s": elapsed,
        "posted_per_s": corpus.interactions / elapsed,
        "batch_p50_ms": percentile(latencies, 0.5) * 1000,
        "last_id": last_id,
    }


async def post(session: aiohttp.ClientSession, body: bytes) -> list[int]:
    async with session.post("/interactions", data=body, headers=JSON) as resp:
        if resp.status != 201:
            raise RuntimeError(f"POST /interactions: {resp.status} {await resp.text()}")
        ids: list[int] = (await resp.json(loads=orjson.loads))["ids"]
        return ids


async def stats(session: aiohttp.ClientSession) -> Row:
    async with session.get("/stats") as resp:
        resp.raise_for_status()
        reply: Row = await resp.json(loads=orjson.loads)
        return reply


async def wait_extracted(
    session: aiohttp.ClientSession, size: int, last_id: int, timeout: float
) -> Row:
    """Poll /stats until the extractor has folded everything, `size` learnings exist
    and the in-memory index holds them all (it is applied after the fold commits)."""
    start = time.perf_counter()
    seen, since = -1, start
    while True:
        now_stats = await stats(session)
        extractor, learnings = now_stats["extractor"], now_stats["counts"]["learnings"]
        indexed = now_stats["learning"]["indexed"] >= learnings
        idle = extractor["backlog"] == 0 and extractor["cursor"] >= last_id and indexed
        if idle and learnings >= size:
            return {"learnings": learnings, "caught_up": True, "wait_s": _since(start)}
        if learnings != seen or not idle:
            seen, since = learnings, time.perf_counter()
        if _since(start) > timeout or _since(since) > STALL_S:
            return {"learnings": learnings, "caught_up": False, "wait_s": _since(start)}
        await asyncio.sleep(STATS_EVERY_S)


def _since(start: float) -> float:
    return time.perf_counter() - start


async def load_corpus(server: LocalServer, corpus: Corpus, size: int, seed: int) -> Row:
    bodies = encode_corpus(corpus, seed)
    cpu0 = cpu_seconds(server.pid)
    async with aiohttp.ClientSession(server.url, timeout=TIMEOUT) as session:
        start = time.perf_counter()
        row = await ingest(session, corpus, bodies)
        timeout = max(120.0, size / 50)
        row |= await wait_extracted(session, size, row.pop("last_id"), timeout)
        row["extracted_s"] = _since(start)
    row["server_cpu_s"] = cpu_seconds(server.pid) - cpu0
    row["server_rss_mb"] = rss_mb(server.pid)
    return row


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


# -- 2. query latency -------------------------------------------------------------


def agent_for(n: int) -> str | None:
    """Agent types in turn, and every sixth query without one."""
    return (None, *AGENT_TYPES)[n % (len(AGENT_TYPES) + 1)]


def query_params(text: str, n: int, limit: int = 10) -> dict[str, str]:
    params = {"task": text, "limit": str(limit)}
    if agent := agent_for(n):
        params["agent_type"] = agent
    return params


async def query_latency(server: LocalServer, texts: list[str], concurrency: int) -> Row:
    """Each text once, `concurrency` in flight on as many keep-alive connections."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    pending = iter(enumerate(texts))
    latencies: list[float] = []
    empty = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal empty
        for n, text in pending:
            sent = time.perf_counter()
            async with session.get("/learnings", params=query_params(text, n)) as resp:
                body = await resp.read()
            latencies.append(time.perf_counter() - sent)
            if resp.status != 200:
                raise RuntimeError(f"GET /learnings: {resp.status} {body[:200]!r}")
            empty += not orjson.loads(body)["items"]

    async with aiohttp.ClientSession(server.url, connector=connector, timeout=TIMEOUT) as session:
        cpu0, start = cpu_seconds(server.pid), time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed, cpu = _since(start), cpu_seconds(server.pid) - cpu0
    ms = [x * 1000 for x in latencies]
    return {
        "concurrency": concurrency,
        "queries": len(texts),
        "per_s": len(texts) / elapsed,
        "p50_ms": percentile(ms, 0.50),
        "p95_ms": percentile(ms, 0.95),
        "p99_ms": percentile(ms, 0.99),
        "cpu_ms_per_query": cpu / len(texts) * 1000,
        "empty": empty,
    }


async def query_phase(
    server: LocalServer, corpus: Corpus, queries: int, levels: list[int], rng: random.Random
) -> list[Row]:
    await query_latency(server, fresh_texts(corpus, 20, rng), 1)  # warm-up, distinct too
    return [await query_latency(server, fresh_texts(corpus, queries, rng), c) for c in levels]


# -- 3. freshness under load ------------------------------------------------------


@dataclass
class LiveLoad:
    """Open-loop background ingest: a batch of LIVE_BATCH due every LIVE_BATCH/rate s.
    Mostly repeats of stored patterns, some new sequences, a few new tasks."""

    corpus: Corpus
    rate: float
    rng: random.Random
    acked: int = 0
    errors: int = 0
    elapsed: float = 0.0

    def item(self) -> Row:
        base = self.rng.choice(self.corpus.patterns)
        actions, task = base.actions, base.task
        if self.rng.random() < 0.10:
            actions = draw_actions(DOMAINS[task.domain].actions, self.rng)
        if self.rng.random() < 0.02:
            task = Task(probe_task(self.corpus, self.rng), task.domain, "", "", "")
        success = base.wins if self.rng.random() < 0.85 else not base.wins
        return interaction(Pattern(task, base.agent, actions, base.wins), success, self.rng)

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        gate = asyncio.Semaphore(LIVE_IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()
        start, interval = time.perf_counter(), LIVE_BATCH / self.rate
        for n in itertools.count():
            if await pause(stop, start + n * interval - time.perf_counter()):
                break
            await gate.acquire()
            task = asyncio.create_task(self.send(session, gate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        # Each batch stands for one interval; late dispatches (a full gate) stretch the run.
        self.elapsed = max(_since(start), n * interval)
        await asyncio.gather(*tasks)

    async def send(self, session: aiohttp.ClientSession, gate: asyncio.Semaphore) -> None:
        try:
            await post(session, batch_body([self.item() for _ in range(LIVE_BATCH)]))
            self.acked += LIVE_BATCH
        except (aiohttp.ClientError, RuntimeError):
            self.errors += 1
        finally:
            gate.release()


async def sample_stats(
    session: aiohttp.ClientSession, stop: asyncio.Event, into: list[Row]
) -> None:
    while not stop.is_set():
        extractor = (await stats(session))["extractor"]
        into.append({"backlog": extractor["backlog"], "lag_s": extractor["lag_s"]})
        await pause(stop, STATS_EVERY_S)


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`, less if `stop` is set; whether it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
    return stop.is_set()


async def probe(
    session: aiohttp.ClientSession, corpus: Corpus, rng: random.Random, used: set[tuple[str, ...]]
) -> float | None:
    """Record a new pattern's 3 successes in one POST; ms from the ack until
    GET /learnings shows a learning with its action sequence (None: not within the timeout)."""
    task, agent = probe_task(corpus, rng), rng.choice(AGENT_TYPES)
    while (actions := tuple(rng.choices(ACTIONS, k=PROBE_LENGTH))) in used:
        pass
    used.add(actions)
    pattern = Pattern(Task(task, 0, "", "", ""), agent, actions, True)
    await post(session, batch_body([interaction(pattern, True, rng) for _ in range(3)]))
    acked = time.perf_counter()
    # The largest page: freshness asks whether the learning is served, and at 100k
    # learnings a new 3-of-3 pattern ranks around 50th for its task, behind its
    # cluster's sequences with more evidence (the live load adds to them).
    params = {"task": task, "agent_type": agent, "limit": "100"}
    while _since(acked) < PROBE_TIMEOUT_S:
        async with session.get("/learnings", params=params) as resp:
            items = orjson.loads(await resp.read())["items"]
        if any(tuple(x["actions"]) == actions and x["agent_type"] == agent for x in items):
            return _since(acked) * 1000
        await asyncio.sleep(POLL_S)
    return None


async def freshness(
    server: LocalServer, corpus: Corpus, rate: float, probes: int, warmup_s: float, seed: int
) -> Row:
    rng = random.Random(seed)
    load, stop = LiveLoad(corpus, rate, random.Random(seed + 1)), asyncio.Event()
    samples: list[Row] = []
    lags: list[float | None] = []
    async with (
        aiohttp.ClientSession(server.url, timeout=TIMEOUT) as load_session,
        aiohttp.ClientSession(server.url, timeout=TIMEOUT) as probe_session,
    ):
        cpu0 = cpu_seconds(server.pid)
        background = [
            asyncio.create_task(load.run(load_session, stop)),
            asyncio.create_task(sample_stats(probe_session, stop, samples)),
        ]
        await asyncio.sleep(warmup_s)
        used: set[tuple[str, ...]] = set()
        for _ in range(probes):
            lags.append(await probe(probe_session, corpus, rng, used))
            await asyncio.sleep(rng.uniform(0.2, 0.4))
        stop.set()
        await asyncio.gather(*background)
        cpu = cpu_seconds(server.pid) - cpu0
    return summarize_freshness(load, lags, samples, cpu)


def summarize_freshness(
    load: LiveLoad, lags: list[float | None], samples: list[Row], cpu: float
) -> Row:
    seen = [x for x in lags if x is not None]
    lag_s = [s["lag_s"] for s in samples]
    achieved = load.acked / load.elapsed if load.elapsed else 0.0
    return {
        "offered_per_s": load.rate,
        "achieved_per_s": achieved,
        "load_errors": load.errors,
        "probes": len(lags),
        "seen": len(seen),
        "p50_ms": percentile(seen, 0.50),
        "p95_ms": percentile(seen, 0.95),
        "max_ms": max(seen, default=float("nan")),
        "backlog_max": max((s["backlog"] for s in samples), default=None),
        "backlog_end": samples[-1]["backlog"] if samples else None,
        "lag_s_p95": percentile(lag_s, 0.95),
        "lag_s_max": max(lag_s, default=float("nan")),
        "stats_samples": len(samples),
        "kept_up": achieved >= 0.95 * load.rate
        and max(lag_s, default=0.0) <= TARGETS["fresh_ms"] / 1000,
        "server_cpu_s_per_s": cpu / load.elapsed if load.elapsed else None,
    }


# -- orchestration ------------------------------------------------------------------


async def run_size(size: int, args: argparse.Namespace) -> Row:
    corpus = build_corpus(size, args.seed)
    print(f"\n[{size:,}] {corpus.interactions:,} interactions, {len(corpus.tasks):,} tasks")
    with tempfile.TemporaryDirectory(prefix="kaizen-bench-learnings-") as data:
        # start_server makes a temp dir of its own; the last --data-dir wins, so this
        # one (removed on the way out) is used and that one stays empty.
        server = await start_server("--data-dir", data)
        try:
            return await measure(server, corpus, size, args)
        finally:
            await server.stop()


async def measure(server: LocalServer, corpus: Corpus, size: int, args: argparse.Namespace) -> Row:
    loaded = await load_corpus(server, corpus, size, args.seed)
    print(table([{"size": size, **loaded}], LOAD_COLUMNS))
    rng = random.Random(args.seed + size)
    queries = await query_phase(server, corpus, args.queries, args.concurrency, rng)
    print(table([{"size": size, **q} for q in queries], QUERY_COLUMNS))
    fresh = await freshness(server, corpus, args.rate, args.probes, args.warmup, args.seed)
    print(table([{"size": size, **fresh}], FRESH_COLUMNS))
    return {
        "size": size,
        "corpus": {"interactions": corpus.interactions, "tasks": len(corpus.tasks)},
        "load": loaded,
        "queries": queries,
        "freshness": fresh,
    }


LOAD_COLUMNS = [
    "size",
    "interactions",
    "posted_per_s",
    "batch_p50_ms",
    "ingest_s",
    "extracted_s",
    "learnings",
    "caught_up",
    "server_cpu_s",
    "server_rss_mb",
]
QUERY_COLUMNS = [
    "size",
    "concurrency",
    "queries",
    "per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "cpu_ms_per_query",
    "empty",
]
FRESH_COLUMNS = [
    "size",
    "offered_per_s",
    "achieved_per_s",
    "seen",
    "p50_ms",
    "p95_ms",
    "max_ms",
    "backlog_max",
    "lag_s_max",
    "kept_up",
]


def verdicts(results: list[Row]) -> list[Row]:
    """The targets, judged at 100,000 learnings (else at the largest size run), with
    query latency at the lowest concurrency (one client: latency, not queueing)."""
    at = next((r for r in results if r["size"] == TARGET_SIZE), max(results, key=_size))
    query = min(at["queries"], key=lambda q: q["concurrency"])
    fresh = at["freshness"]
    all_seen = fresh["seen"] == fresh["probes"]
    rows = [
        ("GET /learnings p50 (ms)", query["p50_ms"], TARGETS["p50_ms"]),
        ("GET /learnings p95 (ms)", query["p95_ms"], TARGETS["p95_ms"]),
        ("freshness max (ms)", fresh["max_ms"] if all_seen else float("inf"), TARGETS["fresh_ms"]),
        ("extractor lag_s max (s)", fresh["lag_s_max"], TARGETS["fresh_ms"] / 1000),
    ]
    out = [
        {"target": name, "at_size": at["size"], "value": value, "limit": limit}
        | {"pass": value <= limit}
        for name, value, limit in rows
    ]
    out.append(
        {
            "target": "load achieved (interactions/s)",
            "at_size": at["size"],
            "value": fresh["achieved_per_s"],
            "limit": 0.95 * TARGETS["rate"],
            "pass": fresh["achieved_per_s"] >= 0.95 * TARGETS["rate"],
        }
    )
    return out


def _size(result: Row) -> int:
    size: int = result["size"]
    return size


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=_ints, default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=500, help="distinct queries per level")
    parser.add_argument("--concurrency", type=_ints, default=[1, 8])
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--rate", type=float, default=TARGETS["rate"], help="background load/s")
    parser.add_argument("--warmup", type=float, default=3.0, help="s of load before probing")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2,000 learnings, smoke test")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries, args.probes, args.warmup = [2_000], 100, 5, 1.0
    return args


async def main() -> None:
    args = parse_args()
    results = [await run_size(size, args) for size in args.sizes]
    judged = verdicts(results)
    print("\ntargets (queries at the lowest concurrency; distinct query texts):")
    if judged[0]["at_size"] != TARGET_SIZE:
        print(
            f"(judged at {judged[0]['at_size']:,} learnings, not {TARGET_SIZE:,}: indicative only)"
        )
    print(table(judged, ["target", "at_size", "value", "limit", "pass"]))
    params = vars(args) | {"batch": BATCH, "posters": POSTERS, "client": "aiohttp, keep-alive"}
    payload = {"params": params, "results": results, "targets": judged}
    print(f"\nwrote {write_results('learnings', payload)}")


if __name__ == "__main__":
    uvloop.run(main())
