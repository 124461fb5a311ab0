"""Learning quality: do agents that ask Kaizen get better at their tasks, and are the
learnings they are handed true?

    python -m bench.learning_quality [--episodes 300] [--seed 1] [--quick]

A simulated world. Eight task families in different domains (parse CSV, deploy to
Kubernetes, fix a database migration, train an image classifier, nightly backups,
a dark-mode toggle, TLS certificate renewal, a slow search endpoint), each written
as 8 training paraphrases and 3 held-out phrasings that training never uses. Each
family has hidden rules:

- one 3-step sequence of work actions (from a shared vocabulary of 10) succeeds
  with p = 0.95; every other sequence succeeds with p = 0.05. An agent chooses
  among CANDIDATES sequences per family (the right one and random distractors);
- one error rule: one action of the right sequence fails with a realistic error in
  ERROR_RATE of the episodes (wherever a plan uses it), and only one remediation
  (from a vocabulary of 6), done right after, recovers it; the agent considers
  REMEDIES remediations for it, and one that does not recover aborts the attempt.

One episode is one agent (3 of each of 2 agent types) attempting a task phrased by
a random training paraphrase. Every policy meets the same episodes (same tasks,
same draws of whether the error fires and of the noise):

- baseline: no Kaizen; a random candidate and a random remediation (chance);
- kaizen: asks `get_relevant_learnings(phrasing, agent_type=…)` before acting and
  follows the best success-type learning whose actions (remediations aside) are
  one of its candidates, unless a better-ranked FAILURE_PATTERN names them, else
  explores a candidate no FAILURE_PATTERN names; when a step fails it asks again
  for ERROR_RECOVERY learnings and applies one whose trigger matches the failed
  action and the error, else a random remediation; then records the attempt with
  the SDK. It sees only what the server returns;
- ideal: the same agent over an in-process Kaizen that clusters tasks perfectly
  and mines exactly as the contract says (min_support 3, per cluster and agent
  type, Wilson confidence, other agent types' learnings at half weight): what the
  targets allow in this world, not a policy under test;
- oracle: knows the rules.

Reported: success rate per window of 50 episodes; the episode at which kaizen's
rolling 50-episode rate first reaches 90% of the oracle's (overall) rate; and
precision@5 after training: each held-out phrasing queries `limit=5`, and a
learning is correct when its claim holds under that phrasing's family's rules.
Targets: kaizen ≥ 90% of oracle within 300 episodes, baseline at chance (within 3
standard errors), precision@5 ≥ 0.8. Writes bench/results/learning_quality.json.
"""

import argparse
import asyncio
import math
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.common import start_server, table, write_results
from client import KaizenClient

WORK = (
    "READ_DOCS",
    "SEARCH_CODE",
    "INSPECT_LOGS",
    "EDIT_CODE",
    "EDIT_CONFIG",
    "RUN_TESTS",
    "RUN_SCRIPT",
    "BUILD",
    "DEPLOY",
    "QUERY_DB",
)
REMEDIATIONS = (
    "INSTALL_PACKAGE",
    "REFRESH_CREDENTIALS",
    "RETRY_WITH_BACKOFF",
    "FREE_MEMORY",
    "FREE_DISK_SPACE",
    "CLEAR_CACHE",
)
CANDIDATES = 4
"""Sequences an agent considers for a family: the right one and 3 distractors."""
REMEDIES = 2
"""Remediations an agent considers for a family's error: the right one and a decoy."""
ERROR_RATE = 0.25
P_RIGHT = 0.95
P_WRONG = 0.05
WINDOW = 50
POLICIES = ("baseline", "kaizen", "ideal", "oracle")
RECALL_LIMIT = 20
AGENTS = tuple((f"{kind}-{n}", kind) for kind in ("coder", "devops") for n in (1, 2, 3))
SUCCESS_TYPES = frozenset({"SUCCESS_PATTERN", "TASK_STRATEGY", "BEST_PRACTICE", "OPTIMIZATION"})
TARGET_RATIO = 0.9
TARGET_EPISODES = 300
TARGET_PRECISION = 0.8
OK: dict[str, Any] = {"success": True}


# -- the world ----------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str
    plan: tuple[str, ...]
    error_action: str
    error: str
    recovery: str
    train: tuple[str, ...]
    held_out: tuple[str, ...]


FAMILIES = (
    Family(
        "csv",
        ("SEARCH_CODE", "EDIT_CODE", "RUN_TESTS"),
        "RUN_TESTS",
        "ModuleNotFoundError: No module named 'pandas'",
        "INSTALL_PACKAGE",
        (
            "Parse the CSV files into records",
            "Read the CSV export and turn every row into a record",
            "Convert the comma-separated data files into structured records",
            "Load the customer CSV and build one record per line",
            "Parse CSV input into typed row objects",
            "Turn the uploaded CSV file into a list of records",
            "Ingest the CSV dump and map each of its rows to a record",
            "Split each line of the CSV file into fields and make records from them",
        ),
        (
            "Import the spreadsheet finance exported as comma-delimited text so every line becomes a data entry",
            "Read a delimited text table and produce a dictionary for each of its lines",
            "We received a tabular export with values separated by commas; load it as structured objects",
        ),
    ),
    Family(
        "kubernetes",
        ("BUILD", "EDIT_CONFIG", "DEPLOY"),
        "DEPLOY",
        "ErrImagePull: pull access denied, authentication required",
        "REFRESH_CREDENTIALS",
        (
            "Deploy the web service to Kubernetes",
            "Roll out the new version of the web service on the Kubernetes cluster",
            "Ship the web API to the k8s cluster",
            "Release the web service container to Kubernetes",
            "Push the latest web server build to the Kubernetes deployment",
            "Deploy the frontend web service onto the Kubernetes cluster",
            "Update the Kubernetes deployment with the new web service image",
            "Get the web service running in Kubernetes",
        ),
        (
            "Put the HTTP backend live on our container orchestration platform",
            "Make the newest release of the site available as pods via kubectl apply",
            "Launch the latest image of the website onto the cluster",
        ),
    ),
    Family(
        "migration",
        ("INSPECT_LOGS", "EDIT_CODE", "RUN_SCRIPT"),
        "RUN_SCRIPT",
        'LockNotAvailable: could not obtain lock on relation "orders"',
        "RETRY_WITH_BACKOFF",
        (
            "Fix the failing database migration",
            "Repair the broken database schema migration",
            "The database migration fails, make it pass",
            "Debug why the database migration errors out and fix it",
            "Fix the migration that breaks when altering the orders table",
            "Resolve the error in the latest database schema migration",
            "Make the failing SQL migration apply cleanly",
            "Get the stuck database migration working again",
        ),
        (
            "Our schema upgrade script crashes halfway through; sort it out",
            "The ALTER TABLE step of the upgrade blows up in production, repair it",
            "Applying the new DB revision aborts with an error, make it go through",
        ),
    ),
    Family(
        "classifier",
        ("READ_DOCS", "EDIT_CONFIG", "RUN_SCRIPT"),
        "RUN_SCRIPT",
        "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "FREE_MEMORY",
        (
            "Train the image classification model on the labeled photos",
            "Train an image classifier on the labeled dataset",
            "Fit the image classification network to the training photos",
            "Run training for the photo classifier model",
            "Train a convolutional model to classify the product images",
            "Retrain the image classifier with the new labeled pictures",
            "Train the model that classifies images into categories",
            "Start a training run for the image classification model",
        ),
        (
            "Teach a neural network to recognise which object appears in each picture",
            "Fit a CNN so it can tell cats from dogs in photographs",
            "Learn weights for a vision model that tags pictures by their content",
        ),
    ),
    Family(
        "backup",
        ("QUERY_DB", "RUN_SCRIPT", "INSPECT_LOGS"),
        "RUN_SCRIPT",
        "OSError: [Errno 28] No space left on device",
        "FREE_DISK_SPACE",
        (
            "Back up the production database every night",
            "Set up nightly backups of the production database",
            "Schedule a nightly dump of the production database",
            "Create an automated nightly database backup",
            "Make sure the production database is backed up each night",
            "Configure a daily backup job for the production database",
            "Back up the prod database on a nightly schedule",
            "Add a nightly backup for the main production database",
        ),
        (
            "Arrange for a copy of the prod data store to be saved somewhere safe after midnight, daily",
            "Ensure we can restore yesterday's customer data if the primary server dies",
            "Snapshot the live Postgres instance on a cron so nothing is lost",
        ),
    ),
    Family(
        "dark-mode",
        ("SEARCH_CODE", "EDIT_CODE", "BUILD"),
        "BUILD",
        "ChunkLoadError: Loading chunk 7 failed (stale build cache)",
        "CLEAR_CACHE",
        (
            "Add a dark mode toggle to the settings page",
            "Implement a dark theme switch on the settings page",
            "Let users turn on dark mode from the settings page",
            "Add a dark mode option to the app settings",
            "Build a dark mode toggle for the settings screen",
            "Support a dark theme that users can enable in settings",
            "Put a dark mode switch in the settings page UI",
            "Create a toggle in settings that switches the app to dark mode",
        ),
        (
            "Give people a night-friendly colour scheme they can pick in their preferences",
            "Users want light text on a black background; add a preference control for it",
            "Offer a low-light appearance that can be switched on from the options screen",
        ),
    ),
    Family(
        "tls",
        ("READ_DOCS", "EDIT_CONFIG", "RUN_TESTS"),
        "RUN_TESTS",
        "SSLCertVerificationError: certificate verify failed: certificate has expired",
        "REFRESH_CREDENTIALS",
        (
            "Renew the expired TLS certificates",
            "Rotate the TLS certificates before they expire",
            "Replace the expiring TLS certificates on the servers",
            "Renew the SSL certificates for the domain",
            "Update the expired TLS certificate on the load balancer",
            "Issue fresh TLS certificates and install them",
            "Fix the expired SSL certificate on the website",
            "Rotate the HTTPS certificates for our services",
        ),
        (
            "Browsers warn that our site's security certificate is out of date; get a new one in place",
            "Swap in a newly issued X.509 cert so encrypted connections stop failing",
            "Secure connections break because the cert lapsed yesterday, sort out a replacement",
        ),
    ),
    Family(
        "search-latency",
        ("INSPECT_LOGS", "QUERY_DB", "EDIT_CODE"),
        "QUERY_DB",
        "QueryCanceled: canceling statement due to statement timeout",
        "RETRY_WITH_BACKOFF",
        (
            "Speed up the slow search endpoint",
            "Make the search API endpoint faster",
            "Reduce the latency of the search endpoint",
            "Optimize the slow search API",
            "Fix the performance of the search endpoint",
            "The search endpoint is too slow, make it faster",
            "Improve the response time of the search API endpoint",
            "Cut the search endpoint's response time",
        ),
        (
            "Lookups through /search take several seconds; bring that down",
            "Users complain that finding products on the site is sluggish, tune the query path",
            "Shave time off the request handler behind the query box",
        ),
    ),
)


@dataclass(frozen=True)
class Task:
    """A family as one run's agents meet it: the options they choose among."""

    family: Family
    candidates: tuple[tuple[str, ...], ...]
    remedies: tuple[str, ...]


@dataclass(frozen=True)
class Episode:
    number: int
    agent: str
    agent_type: str
    task: Task
    phrasing: str
    error_fires: bool
    luck: float


def build_world(families: Sequence[Family], rng: random.Random) -> list[Task]:
    tasks = []
    for family in families:
        candidates = [family.plan]
        while len(candidates) < CANDIDATES:
            sequence = tuple(rng.sample(WORK, 3))
            if sequence not in candidates:
                candidates.append(sequence)
        decoys = [r for r in REMEDIATIONS if r != family.recovery]
        remedies = [family.recovery, *rng.sample(decoys, REMEDIES - 1)]
        rng.shuffle(candidates)
        rng.shuffle(remedies)
        tasks.append(Task(family, tuple(candidates), tuple(remedies)))
    return tasks


def schedule(tasks: Sequence[Task], n: int, rng: random.Random) -> list[Episode]:
    """The episodes every policy meets, with their random draws fixed up front."""
    episodes = []
    for number in range(1, n + 1):
        agent, agent_type = rng.choice(AGENTS)
        task = rng.choice(tasks)
        phrasing = rng.choice(task.family.train)
        fires = rng.random() < ERROR_RATE
        episodes.append(Episode(number, agent, agent_type, task, phrasing, fires, rng.random()))
    return episodes


def work(actions: Sequence[str]) -> tuple[str, ...]:
    """The work steps of a sequence, remediations left out."""
    return tuple(a for a in actions if a not in REMEDIATIONS)


def error_kind(message: str) -> str:
    """`OSError: [Errno 28] …` → `oserror`: the name an error goes by."""
    return message.strip().split(":", 1)[0].split(" ", 1)[0].lower()


def same_error(a: str, b: str) -> bool:
    return error_kind(a) == error_kind(b)


# -- attempts ----------------------------------------------------------------------


@dataclass
class Trace:
    actions: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    remedies: int = 0
    success: bool = False

    def add(self, action: str, result: dict[str, Any], rng: random.Random) -> None:
        self.actions.append(action)
        self.results.append(dict(result))
        self.seconds += rng.uniform(1.0, 4.0)

    @property
    def errors(self) -> int:
        return sum(1 for r in self.results if not r["success"])


class Policy(Protocol):
    name: str

    async def plan(self, ep: Episode) -> Sequence[str]: ...
    async def remedy(self, ep: Episode, action: str, error: str) -> Sequence[str]: ...
    async def learn(self, ep: Episode, trace: Trace) -> None: ...


async def attempt(policy: Policy, ep: Episode, rng: random.Random) -> Trace:
    """Run the policy's plan in the world. A failing step asks the policy for a fix,
    unless the plan itself does a remediation next."""
    family = ep.task.family
    plan = list(await policy.plan(ep))
    trace = Trace()
    while plan:
        step = plan.pop(0)
        if step != family.error_action or not ep.error_fires:
            trace.add(step, OK, rng)
            continue
        trace.add(step, {"success": False, "error": family.error}, rng)
        if plan and plan[0] in REMEDIATIONS:
            fix: Sequence[str] = (plan.pop(0),)
        else:
            fix = await policy.remedy(ep, step, family.error)
        if not recover(trace, fix, family, rng):
            return trace
    trace.success = ep.luck < (P_RIGHT if work(trace.actions) == family.plan else P_WRONG)
    return trace


def recover(trace: Trace, fix: Sequence[str], family: Family, rng: random.Random) -> bool:
    trace.remedies += 1
    for action in fix[:3]:
        if action == family.recovery:
            trace.add(action, OK, rng)
            return True
        trace.add(action, {"success": False, "error": family.error}, rng)
    return False


async def run_policy(policy: Policy, episodes: Sequence[Episode], rng: random.Random) -> list[bool]:
    outcomes = []
    for ep in episodes:
        trace = await attempt(policy, ep, rng)
        await policy.learn(ep, trace)
        outcomes.append(trace.success)
    return outcomes


# -- policies ----------------------------------------------------------------------


class Baseline:
    name = "baseline"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    async def plan(self, ep: Episode) -> Sequence[str]:
        return self.rng.choice(ep.task.candidates)

    async def remedy(self, ep: Episode, action: str, error: str) -> Sequence[str]:
        return (self.rng.choice(ep.task.remedies),)

    async def learn(self, ep: Episode, trace: Trace) -> None:
        pass


class Oracle:
    name = "oracle"

    async def plan(self, ep: Episode) -> Sequence[str]:
        return ep.task.family.plan

    async def remedy(self, ep: Episode, action: str, error: str) -> Sequence[str]:
        return (ep.task.family.recovery,)

    async def learn(self, ep: Episode, trace: Trace) -> None:
        pass


@dataclass(frozen=True)
class Seen:
    """A learning as the agent reads it."""

    type: str
    actions: tuple[str, ...]
    trigger: tuple[str, str] | None
    agent_type: str
    confidence: float
    score: float

    def recovers(self, action: str, error: str) -> bool:
        return (
            self.type == "ERROR_RECOVERY"
            and self.trigger is not None
            and self.trigger[0] == action
            and same_error(self.trigger[1], error)
        )

    def brief(self) -> dict[str, Any]:
        return {"type": self.type, "actions": list(self.actions), "trigger": self.trigger}


def seen_from(learning: Any) -> Seen:
    """Read an SDK learning; `trigger` may not exist yet on an older server."""
    trigger = getattr(learning, "trigger", None)
    pair = None
    if trigger is not None:
        pair = (str(_field(trigger, "action")).upper(), str(_field(trigger, "error")))
    return Seen(
        str(learning.type),
        tuple(learning.actions),
        pair,
        learning.agent_type,
        learning.confidence,
        learning.score,
    )


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


class Memory(Protocol):
    async def recall(
        self, task: str, agent_type: str | None, kind: str | None, limit: int
    ) -> list[Seen]: ...
    async def record(self, ep: Episode, trace: Trace) -> None: ...


class Learner:
    """An agent that acts on what its memory returns, and nothing else."""

    def __init__(self, name: str, memory: Memory, rng: random.Random) -> None:
        self.name = name
        self.memory = memory
        self.rng = rng

    async def plan(self, ep: Episode) -> Sequence[str]:
        seen = await self.memory.recall(ep.phrasing, ep.agent_type, None, RECALL_LIMIT)
        return choose(seen, ep.task.candidates, self.rng)

    async def remedy(self, ep: Episode, action: str, error: str) -> Sequence[str]:
        kind = "ERROR_RECOVERY"
        seen = await self.memory.recall(ep.phrasing, ep.agent_type, kind, RECALL_LIMIT)
        known = next((s.actions for s in seen if s.recovers(action, error)), None)
        return known or (self.rng.choice(ep.task.remedies),)

    async def learn(self, ep: Episode, trace: Trace) -> None:
        await self.memory.record(ep, trace)


def choose(
    seen: Sequence[Seen], candidates: Sequence[tuple[str, ...]], rng: random.Random
) -> Sequence[str]:
    """The best-ranked success-type learning that is one of the candidates and that no
    better-ranked FAILURE_PATTERN contradicts, as it was done (remediations included);
    else a random candidate that no failure pattern names. A failure pattern names
    exactly its sequence: "A, B, C, then the wrong fix" says nothing of "A, B, C"."""
    failing: set[tuple[str, ...]] = set()
    for learning in seen:
        if learning.type == "FAILURE_PATTERN":
            failing.add(learning.actions)
        elif (
            learning.type in SUCCESS_TYPES
            and work(learning.actions) in candidates
            and learning.actions not in failing
        ):
            return learning.actions
    options = [c for c in candidates if c not in failing] or list(candidates)
    return rng.choice(options)


# -- memories: Kaizen over the SDK, and the ideal in process -------------------------


class KaizenMemory:
    def __init__(self, kz: KaizenClient) -> None:
        self.kz = kz

    async def recall(
        self, task: str, agent_type: str | None, kind: str | None, limit: int
    ) -> list[Seen]:
        found = await self.kz.get_relevant_learnings(
            task, agent_type=agent_type, type=kind, limit=limit
        )
        return [seen_from(x) for x in found]

    async def record(self, ep: Episode, trace: Trace) -> None:
        await self.kz.record_interaction(
            agent_type=ep.agent_type,
            task_description=ep.phrasing,
            actions_taken=[{"type": a} for a in trace.actions],
            results=trace.results,
            success=trace.success,
            completion_time=round(trace.seconds, 2),
            iterations=1 + trace.remedies,
            errors_encountered=trace.errors,
            metadata={"agent": ep.agent, "bench": "learning_quality"},
        )
        await settled(self.kz)


async def settled(kz: KaizenClient, timeout: float = 2.0) -> None:
    """Wait until the extractor has folded everything recorded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await kz.stats()).extractor.backlog == 0:
            return
        await asyncio.sleep(0.005)


def wilson(k: int, n: int, z: float = 1.96) -> float:
    if n == 0:
        return 0.0
    p = k / n
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (p + z * z / (2 * n) - margin) / (1 + z * z / n))


class IdealMemory:
    """Kaizen as the contract states it, with perfect task clusters: patterns per
    (family, agent type, sequence) become learnings at 3 successes (failures) that
    are the majority; recoveries per (family, agent type, trigger, fix) at 3
    successful interactions; score = Wilson confidence × agent weight."""

    MIN_SUPPORT = 3
    CROSS_AGENT_WEIGHT = 0.5

    def __init__(self, tasks: Sequence[Task]) -> None:
        self.family = {p: t.family.name for t in tasks for p in t.family.train}
        self.patterns: dict[tuple[str, str, tuple[str, ...]], list[int]] = {}
        self.fixes: dict[tuple[str, str, str, str, tuple[str, ...]], int] = {}

    async def recall(
        self, task: str, agent_type: str | None, kind: str | None, limit: int
    ) -> list[Seen]:
        family = self.family[task]
        found = [*self._patterns(family, agent_type), *self._fixes(family, agent_type)]
        found = [s for s in found if kind is None or s.type == kind]
        return sorted(found, key=lambda s: -s.score)[:limit]

    def _weight(self, owner: str, asker: str | None) -> float:
        return 1.0 if asker in (None, owner) else self.CROSS_AGENT_WEIGHT

    def _patterns(self, family: str, asker: str | None) -> list[Seen]:
        out = []
        for (fam, owner, actions), (n, k) in self.patterns.items():
            weight = self._weight(owner, asker)
            for kind, hits in (("SUCCESS_PATTERN", k), ("FAILURE_PATTERN", n - k)):
                if fam == family and hits >= self.MIN_SUPPORT and 2 * hits > n:
                    conf = wilson(hits, n)
                    out.append(Seen(kind, actions, None, owner, conf, conf * weight))
        return out

    def _fixes(self, family: str, asker: str | None) -> list[Seen]:
        out = []
        for (fam, owner, action, error, fix), k in self.fixes.items():
            if fam == family and k >= self.MIN_SUPPORT:
                conf = wilson(k, k)
                weight = self._weight(owner, asker)
                out.append(Seen("ERROR_RECOVERY", fix, (action, error), owner, conf, conf * weight))
        return out

    async def record(self, ep: Episode, trace: Trace) -> None:
        family = self.family[ep.phrasing]
        counts = self.patterns.setdefault((family, ep.agent_type, tuple(trace.actions)), [0, 0])
        counts[0] += 1
        counts[1] += trace.success
        if trace.success:
            for action, error, fix in recoveries(trace):
                key = (family, ep.agent_type, action, error, fix)
                self.fixes[key] = self.fixes.get(key, 0) + 1


def recoveries(trace: Trace) -> list[tuple[str, str, tuple[str, ...]]]:
    """(failed action, error, the actions up to the next step that worked, ≤ 3)."""
    found = []
    for i, result in enumerate(trace.results):
        if result["success"]:
            continue
        for j in range(i + 1, min(i + 4, len(trace.results))):
            if trace.results[j]["success"]:
                found.append(
                    (trace.actions[i], result["error"], tuple(trace.actions[i + 1 : j + 1]))
                )
                break
    return found


# -- judging -----------------------------------------------------------------------


def claim_holds(family: Family, learning: Seen) -> bool:
    """Whether what the learning claims is true under the family's hidden rules."""
    if learning.type == "ERROR_RECOVERY":
        return (
            learning.trigger is not None
            and learning.trigger[0] == family.error_action
            and same_error(learning.trigger[1], family.error)
            and family.recovery in learning.actions
        )
    fixes = {a for a in learning.actions if a in REMEDIATIONS}
    succeeds = work(learning.actions) == family.plan and fixes <= {family.recovery}
    return not succeeds if learning.type == "FAILURE_PATTERN" else succeeds


async def held_out_precision(kz: KaizenClient, tasks: Sequence[Task]) -> dict[str, Any]:
    queries: list[dict[str, Any]] = []
    by_type: dict[str, list[int]] = {}
    for task in tasks:
        for phrasing in task.family.held_out:
            found = [seen_from(x) for x in await kz.get_relevant_learnings(phrasing, limit=5)]
            verdicts = [claim_holds(task.family, s) for s in found]
            for learning, ok in zip(found, verdicts, strict=True):
                tally = by_type.setdefault(learning.type, [0, 0])
                tally[0] += ok
                tally[1] += 1
            queries.append(
                {
                    "family": task.family.name,
                    "phrasing": phrasing,
                    "precision": sum(verdicts) / len(found) if found else 0.0,
                    "retrieved": [
                        {**s.brief(), "correct": ok} for s, ok in zip(found, verdicts, strict=True)
                    ],
                }
            )
    return {
        "precision_at_5": mean([q["precision"] for q in queries]),
        "mean_retrieved": mean([len(q["retrieved"]) for q in queries]),
        "by_type": {k: {"correct": c, "retrieved": n} for k, (c, n) in sorted(by_type.items())},
        "queries": queries,
    }


# -- metrics -----------------------------------------------------------------------


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def windows(outcomes: dict[str, list[bool]], n: int) -> list[dict[str, Any]]:
    rows = []
    for start in range(0, n, WINDOW):
        end = min(start + WINDOW, n)
        row: dict[str, Any] = {"episodes": f"{start + 1}-{end}"}
        for name, results in outcomes.items():
            row[name] = mean(results[start:end])
        rows.append(row)
    return rows


def reached_at(results: Sequence[bool], threshold: float) -> int | None:
    """The first episode whose trailing 50-episode success rate is ≥ threshold."""
    for end in range(WINDOW, len(results) + 1):
        if mean(results[end - WINDOW : end]) >= threshold:
            return end
    return None


def chance(tasks: Sequence[Task]) -> float:
    """Expected success rate of a random candidate with a random remediation."""
    per_task = []
    for task in tasks:
        family = task.family
        recovered = 1 - ERROR_RATE * (1 - 1 / len(task.remedies))
        rates = [
            (recovered if family.error_action in c else 1.0)
            * (P_RIGHT if c == family.plan else P_WRONG)
            for c in task.candidates
        ]
        per_task.append(mean(rates))
    return mean(per_task)


# -- orchestration ---------------------------------------------------------------------


async def run_kaizen(
    tasks: Sequence[Task], episodes: Sequence[Episode], rng: random.Random
) -> tuple[list[bool], dict[str, Any], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="kaizen-quality-") as data:
        server = await start_server("--data-dir", data, "--extractor-interval-s", "0.01")
        try:
            async with KaizenClient(server.url) as kz:
                started = time.perf_counter()
                outcomes = await run_policy(Learner("kaizen", KaizenMemory(kz), rng), episodes, rng)
                elapsed = time.perf_counter() - started
                precision = await held_out_precision(kz, tasks)
                stats = await kz.stats()
        finally:
            await server.stop()
    timing = {
        "episodes_s": elapsed,
        "ms_per_episode": 1000 * elapsed / len(episodes),
        "learnings": stats.counts.learnings,
    }
    return outcomes, precision, timing


def targets(
    outcomes: dict[str, list[bool]], tasks: Sequence[Task], precision: dict[str, Any]
) -> dict[str, Any]:
    oracle = mean(outcomes["oracle"])
    threshold = TARGET_RATIO * oracle
    reach = reached_at(outcomes["kaizen"], threshold)
    expected = chance(tasks)
    n = len(outcomes["baseline"])
    tolerance = 3 * math.sqrt(expected * (1 - expected) / n)
    observed = mean(outcomes["baseline"])
    return {
        "kaizen_vs_oracle": {
            "target": f"rolling {WINDOW}-episode rate ≥ {TARGET_RATIO} x oracle's within {TARGET_EPISODES} episodes",
            "oracle_rate": oracle,
            "threshold": threshold,
            "reached_at": reach,
            "ideal_reached_at": reached_at(outcomes["ideal"], threshold),
            "last_window_ratio": mean(outcomes["kaizen"][-WINDOW:]) / oracle if oracle else 0.0,
            "met": reach is not None and reach <= TARGET_EPISODES,
        },
        "baseline_at_chance": {
            "target": "baseline within 3 standard errors of chance",
            "chance": expected,
            "observed": observed,
            "tolerance": tolerance,
            "met": abs(observed - expected) <= tolerance,
        },
        "precision_at_5": {
            "target": TARGET_PRECISION,
            "value": precision["precision_at_5"],
            "mean_retrieved": precision["mean_retrieved"],
            "met": precision["precision_at_5"] >= TARGET_PRECISION,
        },
    }


def world_info(tasks: Sequence[Task]) -> list[dict[str, Any]]:
    return [
        {
            "family": t.family.name,
            "plan": list(t.family.plan),
            "error_rule": [t.family.error_action, t.family.error, t.family.recovery],
            "candidates": [list(c) for c in t.candidates],
            "remedies": list(t.remedies),
        }
        for t in tasks
    ]


def report(
    rows: list[dict[str, Any]],
    goals: dict[str, Any],
    precision: dict[str, Any],
    timing: dict[str, Any],
) -> None:
    print(table(rows, ["episodes", *POLICIES]))
    vs, base, prec = goals["kaizen_vs_oracle"], goals["baseline_at_chance"], goals["precision_at_5"]
    print(
        f"\nkaizen rolling-{WINDOW} ≥ {vs['threshold']:.2f} (0.9 x oracle {vs['oracle_rate']:.2f}): "
        f"episode {vs['reached_at']} (ideal memory: {vs['ideal_reached_at']}); "
        f"last window {vs['last_window_ratio']:.2f} x oracle; met: {vs['met']}"
    )
    print(
        f"baseline {base['observed']:.3f} vs chance {base['chance']:.3f} "
        f"(± {base['tolerance']:.3f}); met: {base['met']}"
    )
    print(
        f"precision@5 on held-out phrasings: {prec['value']:.2f} "
        f"({prec['mean_retrieved']:.1f} retrieved per query); met: {prec['met']}"
    )
    for kind, tally in precision["by_type"].items():
        print(f"  {kind:<16} {tally['correct']}/{tally['retrieved']} correct")
    print(
        f"kaizen: {timing['ms_per_episode']:.0f} ms per episode, "
        f"{timing['learnings']} learnings at the end"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, help="per policy (default 300; 120 with --quick)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="120 episodes over 4 families")
    args = parser.parse_args()
    n = args.episodes or (120 if args.quick else 300)
    families = FAMILIES[:4] if args.quick else FAMILIES
    rng = random.Random(args.seed)
    tasks = build_world(families, rng)
    episodes = schedule(tasks, n, rng)
    streams = {name: random.Random(f"{args.seed}:{name}") for name in POLICIES}
    outcomes = {
        "baseline": await run_policy(Baseline(streams["baseline"]), episodes, streams["baseline"]),
        "oracle": await run_policy(Oracle(), episodes, streams["oracle"]),
        "ideal": await run_policy(
            Learner("ideal", IdealMemory(tasks), streams["ideal"]), episodes, streams["ideal"]
        ),
    }
    outcomes["kaizen"], precision, timing = await run_kaizen(tasks, episodes, streams["kaizen"])
    rows = windows(outcomes, n)
    goals = targets(outcomes, tasks, precision)
    report(rows, goals, precision, timing)
    params = {
        "episodes": n,
        "seed": args.seed,
        "quick": args.quick,
        "families": len(families),
        "candidates": CANDIDATES,
        "remedies": REMEDIES,
        "error_rate": ERROR_RATE,
        "p_right": P_RIGHT,
        "p_wrong": P_WRONG,
        "window": WINDOW,
        "agents": [list(a) for a in AGENTS],
    }
    payload = {
        "params": params,
        "world": world_info(tasks),
        "windows": rows,
        "targets": goals,
        "precision": precision,
        "timing": timing,
    }
    print(f"\nwrote {write_results('learning_quality', payload)}")


if __name__ == "__main__":
    asyncio.run(main())
