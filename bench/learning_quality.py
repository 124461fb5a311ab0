"""Learning quality: do agents that ask Kaizen get better at their tasks, and are the
learnings they are handed true?

    python -m bench.learning_quality [--episodes 300] [--seed 1] [--quick]
        [--parts classic,holdout,slots,second-try,paraphrase,liar]

Six parts, each against fresh Kaizen servers and each reported against the same
agents without Kaizen (baseline) and an oracle that knows the rules; `--parts`
runs some of them (default: all). `--episodes` is the training length of every
part; `--quick` is 120 episodes, 4 families and half the scoring episodes.

Classic. A simulated world. Eight task families in different domains (parse CSV,
deploy to Kubernetes, fix a database migration, train an image classifier,
nightly backups, a dark-mode toggle, TLS certificate renewal, a slow search
endpoint), each written as 8 training paraphrases and 3 held-out phrasings that
training never uses. Each family has hidden rules:

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
  the SDK, with its own `metadata.agent_id`, the ids its queries returned
  (`offered_learnings`) and those it followed (`applied_learnings`). It sees only
  what the server returns;
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
standard errors), precision@5 ≥ 0.8.

Hold-out. The classic kaizen agent once more, against a server started with
`--learning-holdout-fraction 0.2`: an attempt whose first query comes back
`held_out` gets no learnings (it explores, and asks nothing more) and is recorded
with `learnings_held_out`. Reported: the tenant's lift from `learning_effect()`
(offered against held out, with its 95% interval) next to the bench's own count
of both arms. Targets: the interval is above 0; the server's arm sizes are the
bench's.

Slots. Three families whose right actions carry arguments in fields of their own
(rename a module, upgrade a dependency, restart a service): one value (the
module, package or service) varies per episode and appears verbatim in the task
("Rename the cart_views module to cart_views_v2" → `OPEN_FILE module=cart_views`,
`RENAME old=cart_views new=cart_views_v2`, `RUN_TESTS runner=pytest`), and others
must stay concrete (`runner=pytest`; `unittest` fails). A step of a type the
right plan guards, done with other arguments, fails at once with a realistic
error. A third of each family's values is kept for scoring. Agents choose among
the right plan and 3 decoys, in one try; kaizen executes the `steps` of the best
success-type learning it can (no slot left unfilled, none of its steps forbidden
by a better-ranked "don't", an `avoid` learning), else explores a candidate no
"don't" forbids. After training, kaizen (asking, recording nothing) meets unseen
values with the training phrasings and with held-out ones. Targets: on unseen
values with training phrasings, kaizen ≥ 0.9 x oracle; baseline at chance.

Second try. The classic families, as set-up → key step → finish among 8 key
steps, where every key step but the right one fails at once with its error. A try
runs a candidate from the set-up on and ends at its first failed step; agents get
2 tries, so an exploring success reads "set-up, wrong key (error), set-up, right
key, finish", recorded whole with per-step results. Kaizen credits the successful
tail after the last failed step and makes a "don't" (FAILURE_PATTERN, `avoid`) of
the failed step. kaizen-first-tries is the same agent recording only each
attempt's first try (a failure when another followed): what the classic world's
first-try-only mining would see. The part runs 3 worlds (1 with --quick) and
averages them, as one world's figures move by tens of episodes with the server's
timing. Targets: kaizen's rolling rate reaches 0.9 x oracle sooner than
kaizen-first-tries' (mean episode over the worlds); in the last window kaizen's
first try hits a failing step in at most 10% of the episodes; baseline at chance.

Paraphrase. The classic world's training, then 3 hard phrasings per family
(German, Spanish and French, with no words and little meaning in common with
training) that similarity alone cannot place. Retrieval@1 (the top learning of
a `limit=5` query is success-type and right for the family) is measured before
and after 2 feedback attempts per hard phrasing, made by a kaizen agent whose
integrator, when the hard phrasing gives nothing to follow, asks again with its
plain query for the family (the family's first training phrasing) and records
the attempt under the hard phrasing with `applied_learnings`. A control run
records the same attempts without the feedback fields. Reported too: whether the
first success-type learning of the 5 (the one an agent follows) is right, whether
the top one is the learning the feedback applied, and success on hard phrasings
(kaizen asks only the hard phrasing, records nothing) before and after. Target:
retrieval@1 after feedback ≥ 0.8.

Liar. The classic training once clean and once with an agent (`agent_id`
liar-1) that, before a quarter of the honest episodes (20% of all interactions),
reports a made-up attempt at a training phrasing as a success: a random
candidate of the family or a random sequence. Honest episodes and draws are the
same in both runs. Reported: precision@5 on held-out phrasings in both runs, and
how many of the top 5 (and of all active learnings) the liar's evidence mostly
backs. Target: precision@5 with the liar within 0.05 of the clean run.

Writes bench/results/learning_quality.json: the classic part's figures at the top
level, the other parts under `parts`, every target under `summary`.
"""

import argparse
import asyncio
import contextlib
import json
import math
import random
import re
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.common import start_server, table, write_results
from client import KaizenClient, KaizenError
from schemas import Interaction, ScoredLearning

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
BENCH = "learning_quality"
PARTS = ("classic", "holdout", "slots", "second-try", "paraphrase", "liar")


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
    tries: list[int] = field(default_factory=list)
    """Where each try starts in `actions` (worlds of structured actions)."""

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


Hook = Callable[[Episode], Awaitable[None]]


async def run_policy(
    policy: Policy, episodes: Sequence[Episode], rng: random.Random, before: Hook | None = None
) -> list[bool]:
    """Each episode's outcome; `before` runs ahead of each (the liar's turn)."""
    outcomes = []
    for ep in episodes:
        if before is not None:
            await before(ep)
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
    id: int = 0
    steps: tuple[str, ...] = ()
    """Its steps as canonical JSON (`step`), slots filled for the query."""
    avoid: bool = False
    slotted: bool = False
    evidence: tuple[int, ...] = ()

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
        id=learning.id,
        steps=tuple(step(s) for s in learning.steps),
        avoid=learning.avoid,
        slotted=bool(learning.task_templates),
        evidence=tuple(learning.evidence),
    )


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


@dataclass(frozen=True)
class Recalled:
    """What one query returned; `held_out`: withheld for the tenant's hold-out."""

    seen: list[Seen]
    held_out: bool = False


@dataclass
class Used:
    """What one attempt asked and acted on, as its record reports it: the ids its
    queries returned, those it followed, and whether its first query was held out."""

    offered: list[int] = field(default_factory=list)
    applied: list[int] = field(default_factory=list)
    held_out: bool = False
    asked: int = 0

    def saw(self, recalled: Recalled) -> None:
        # the first query decides the arm: one held out later leaves it offered
        self.held_out = self.held_out or (recalled.held_out and not self.asked)
        self.asked += 1
        self.offered += [s.id for s in recalled.seen if s.id not in self.offered]

    def follow(self, learning: Seen | None) -> None:
        if learning is not None and learning.id not in self.applied:
            self.applied.append(learning.id)


class Memory(Protocol):
    async def recall(
        self, task: str, agent_type: str | None, kind: str | None, limit: int
    ) -> Recalled: ...
    async def record(self, ep: Episode, trace: Trace, used: Used) -> None: ...


class Learner:
    """An agent that acts on what its memory returns, and nothing else."""

    def __init__(self, name: str, memory: Memory, rng: random.Random) -> None:
        self.name = name
        self.memory = memory
        self.rng = rng
        self.used = Used()
        self.history: list[Used] = []

    def queries(self, ep: Episode) -> list[str]:
        """What it asks, in order, until an answer gives it something to follow."""
        return [ep.phrasing]

    async def plan(self, ep: Episode) -> Sequence[str]:
        self.used = Used()
        seen: list[Seen] = []
        chosen: Seen | None = None
        for query in self.queries(ep):
            recalled = await self._recall(query, ep, None)
            seen += recalled.seen
            chosen = pick(recalled.seen, ep.task.candidates)
            if chosen is not None or self.used.held_out:
                break
        self.used.follow(chosen)
        return chosen.actions if chosen else explore(seen, ep.task.candidates, self.rng)

    async def remedy(self, ep: Episode, action: str, error: str) -> Sequence[str]:
        known: Seen | None = None
        for query in [] if self.used.held_out else self.queries(ep):
            recalled = await self._recall(query, ep, "ERROR_RECOVERY")
            known = next((s for s in recalled.seen if s.recovers(action, error)), None)
            if known is not None:
                break
        self.used.follow(known)
        return known.actions if known else (self.rng.choice(ep.task.remedies),)

    async def _recall(self, query: str, ep: Episode, kind: str | None) -> Recalled:
        recalled = await self.memory.recall(query, ep.agent_type, kind, RECALL_LIMIT)
        self.used.saw(recalled)
        return recalled

    async def learn(self, ep: Episode, trace: Trace) -> None:
        self.history.append(self.used)
        await self.memory.record(ep, trace, self.used)


class FallbackLearner(Learner):
    """A Learner whose integrator keeps a plain query per task family (the family's
    first training phrasing) and asks it when the task's own query gives nothing
    to follow."""

    def queries(self, ep: Episode) -> list[str]:
        return [ep.phrasing, ep.task.family.train[0]]


def pick(seen: Sequence[Seen], candidates: Sequence[tuple[str, ...]]) -> Seen | None:
    """The best-ranked success-type learning that is one of the candidates and that no
    better-ranked FAILURE_PATTERN contradicts (it is followed as it was done,
    remediations included). A failure pattern names exactly its sequence: "A, B, C,
    then the wrong fix" says nothing of "A, B, C"."""
    failing: set[tuple[str, ...]] = set()
    for learning in seen:
        if learning.type == "FAILURE_PATTERN":
            failing.add(learning.actions)
        elif (
            learning.type in SUCCESS_TYPES
            and work(learning.actions) in candidates
            and learning.actions not in failing
        ):
            return learning
    return None


def explore(
    seen: Sequence[Seen], candidates: Sequence[tuple[str, ...]], rng: random.Random
) -> Sequence[str]:
    """A random candidate that no failure pattern names (any, if they all are)."""
    failing = {s.actions for s in seen if s.type == "FAILURE_PATTERN"}
    options = [c for c in candidates if c not in failing] or list(candidates)
    return rng.choice(options)


# -- memories: Kaizen over the SDK, and the ideal in process -------------------------


class KaizenMemory:
    """Kaizen over the SDK. `records=False` asks but records nothing (to score what
    was learned); `feedback=False` records without the offered and applied ids."""

    def __init__(self, kz: KaizenClient, *, records: bool = True, feedback: bool = True) -> None:
        self.kz = kz
        self.records = records
        self.feedback = feedback

    async def recall(
        self, task: str, agent_type: str | None, kind: str | None, limit: int
    ) -> Recalled:
        return await recall(self.kz, task, agent_type, kind, limit)

    async def record(self, ep: Episode, trace: Trace, used: Used) -> None:
        if self.records:
            actions = [{"type": a} for a in trace.actions]
            reported = used if self.feedback else Used()
            await record(
                self.kz, Who(ep.agent, ep.agent_type), ep.phrasing, actions, trace, reported
            )


@dataclass(frozen=True)
class Who:
    agent: str
    agent_type: str


async def recall(
    kz: KaizenClient, task: str | None, agent_type: str | None, kind: str | None, limit: int
) -> Recalled:
    page = await kz.learnings(task=task, agent_type=agent_type, type=kind, limit=limit)
    return Recalled([seen_from(x) for x in page.items], page.held_out)


async def record(
    kz: KaizenClient,
    who: Who,
    task: str,
    actions: list[dict[str, Any]],
    trace: Trace,
    used: Used,
) -> int:
    """Record one attempt, then wait until it is mined; its id."""
    item = Interaction(
        agent_type=who.agent_type,
        task_description=task,
        actions_taken=actions,
        results=trace.results,
        success=trace.success,
        completion_time=round(trace.seconds, 2),
        iterations=1 + trace.remedies,
        errors_encountered=trace.errors,
        metadata={"agent_id": who.agent, "bench": BENCH},
        offered_learnings=used.offered,
        applied_learnings=used.applied,
        learnings_held_out=used.held_out,
    )
    [recorded] = await kz.record_interactions([item])
    await settled(kz)
    return recorded


async def settled(kz: KaizenClient, timeout: float = 2.0) -> None:
    """Wait until the extractor has folded everything recorded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await kz.stats()).extractor.backlog == 0:
            return
        await asyncio.sleep(0.005)


async def all_learnings(kz: KaizenClient) -> list[ScoredLearning]:
    """Every active learning, unranked."""
    found: list[ScoredLearning] = []
    cursor = None
    while True:
        page = await kz.learnings(limit=100, cursor=cursor)
        found += page.items
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


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
    ) -> Recalled:
        family = self.family[task]
        found = [*self._patterns(family, agent_type), *self._fixes(family, agent_type)]
        found = [s for s in found if kind is None or s.type == kind]
        return Recalled(sorted(found, key=lambda s: -s.score)[:limit])

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

    async def record(self, ep: Episode, trace: Trace, used: Used) -> None:
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


def windows(outcomes: Mapping[str, Sequence[bool]], n: int) -> list[dict[str, Any]]:
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


def at_chance(observed: Sequence[bool], expected: float) -> dict[str, Any]:
    tolerance = 3 * math.sqrt(expected * (1 - expected) / len(observed))
    rate = mean(observed)
    return {
        "target": "baseline within 3 standard errors of chance",
        "chance": expected,
        "observed": rate,
        "tolerance": tolerance,
        "met": abs(rate - expected) <= tolerance,
    }


def vs_oracle(rate: float, oracle: float) -> dict[str, Any]:
    return {
        "target": f"kaizen ≥ {TARGET_RATIO} x oracle",
        "kaizen": rate,
        "oracle": oracle,
        "ratio": rate / oracle if oracle else 0.0,
        "met": rate >= TARGET_RATIO * oracle,
    }


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - margin), min(1.0, centre + margin)


def newcombe(a: Sequence[bool], b: Sequence[bool]) -> dict[str, float]:
    """Rate of a minus rate of b, with Newcombe's 95% interval (the server's method)."""
    p1, p2 = mean(a), mean(b)
    l1, u1 = wilson_interval(sum(a), len(a))
    l2, u2 = wilson_interval(sum(b), len(b))
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    return {"lift": diff, "low": low, "high": diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)}


# -- orchestration ---------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    episodes: int
    seed: int
    quick: bool

    @property
    def families(self) -> tuple[Family, ...]:
        return FAMILIES[:4] if self.quick else FAMILIES

    def stream(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    def scoring(self, full: int) -> int:
        """Episodes of a scoring phase: `full`, half of it with --quick."""
        return full // 2 if self.quick else full


@contextlib.asynccontextmanager
async def kaizen(*flags: str) -> AsyncIterator[KaizenClient]:
    """A client of a fresh Kaizen server."""
    with tempfile.TemporaryDirectory(prefix="kaizen-quality-") as data:
        server = await start_server("--data-dir", data, "--extractor-interval-s", "0.01", *flags)
        try:
            async with KaizenClient(server.url) as kz:
                yield kz
        finally:
            await server.stop()


def classic_world(cfg: Config) -> tuple[list[Task], list[Episode]]:
    rng = random.Random(cfg.seed)
    tasks = build_world(cfg.families, rng)
    return tasks, schedule(tasks, cfg.episodes, rng)


async def reference(cfg: Config, episodes: Sequence[Episode]) -> dict[str, list[bool]]:
    """The outcomes of the baseline and the oracle."""
    base, oracle = cfg.stream("baseline"), cfg.stream("oracle")
    return {
        "baseline": await run_policy(Baseline(base), episodes, base),
        "oracle": await run_policy(Oracle(), episodes, oracle),
    }


async def run_kaizen(
    tasks: Sequence[Task], episodes: Sequence[Episode], rng: random.Random
) -> tuple[list[bool], dict[str, Any], dict[str, Any]]:
    async with kaizen() as kz:
        started = time.perf_counter()
        outcomes = await run_policy(Learner("kaizen", KaizenMemory(kz), rng), episodes, rng)
        elapsed = time.perf_counter() - started
        precision = await held_out_precision(kz, tasks)
        stats = await kz.stats()
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
        "baseline_at_chance": at_chance(outcomes["baseline"], chance(tasks)),
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


async def classic_part(cfg: Config) -> dict[str, Any]:
    tasks, episodes = classic_world(cfg)
    ideal = cfg.stream("ideal")
    outcomes = await reference(cfg, episodes)
    outcomes["ideal"] = await run_policy(
        Learner("ideal", IdealMemory(tasks), ideal), episodes, ideal
    )
    outcomes["kaizen"], precision, timing = await run_kaizen(tasks, episodes, cfg.stream("kaizen"))
    rows = windows(outcomes, len(episodes))
    goals = targets(outcomes, tasks, precision)
    report(rows, goals, precision, timing)
    return {
        "params": classic_params(cfg),
        "world": world_info(tasks),
        "windows": rows,
        "targets": goals,
        "precision": precision,
        "timing": timing,
    }


def classic_params(cfg: Config) -> dict[str, Any]:
    return {
        "episodes": cfg.episodes,
        "seed": cfg.seed,
        "quick": cfg.quick,
        "families": len(cfg.families),
        "candidates": CANDIDATES,
        "remedies": REMEDIES,
        "error_rate": ERROR_RATE,
        "p_right": P_RIGHT,
        "p_wrong": P_WRONG,
        "window": WINDOW,
        "agents": [list(a) for a in AGENTS],
    }


# -- hold-out: the tenant's lift against a randomised control --------------------------

HOLDOUT = 0.2


async def holdout_part(cfg: Config) -> dict[str, Any]:
    _, episodes = classic_world(cfg)
    outcomes = await reference(cfg, episodes)
    rng = cfg.stream("kaizen")
    async with kaizen("--learning-holdout-fraction", str(HOLDOUT)) as kz:
        learner = Learner("kaizen", KaizenMemory(kz), rng)
        outcomes["kaizen"] = await run_policy(learner, episodes, rng)
        arms = holdout_arms(outcomes["kaizen"], learner.history)
        effect = await counted_effect(kz, arms["offered"]["n"] + arms["held_out"]["n"])
    goals = holdout_targets(effect, arms)
    report_holdout(outcomes, effect, arms, goals)
    return {"holdout_fraction": HOLDOUT, "server": effect, "bench": arms, "targets": goals}


async def counted_effect(kz: KaizenClient, attempts: int, timeout: float = 3.0) -> dict[str, Any]:
    """The tenant's effect once it counts `attempts` (or at the timeout): its tallies
    commit after the miner folds, which can trail the extractor's empty backlog."""
    deadline = time.monotonic() + timeout
    while True:
        effect = (await kz.learning_effect()).model_dump()
        if effect["offered"] + effect["held_out"] >= attempts or time.monotonic() > deadline:
            return effect
        await asyncio.sleep(0.05)


def holdout_arms(outcomes: Sequence[bool], history: Sequence[Used]) -> dict[str, Any]:
    """The bench's own arms: held out; offered something (the server's treatment
    arm); and every attempt not held out (offered learnings or not)."""
    pairs = list(zip(outcomes, history, strict=True))
    held = [o for o, u in pairs if u.held_out]
    offered = [o for o, u in pairs if not u.held_out and u.offered]
    asked = [o for o, u in pairs if not u.held_out]
    arms: dict[str, Any] = {
        name: {"n": len(xs), "rate": mean(xs)}
        for name, xs in (("held_out", held), ("offered", offered), ("not_held_out", asked))
    }
    arms["lift_offered"] = newcombe(offered, held)
    arms["lift_not_held_out"] = newcombe(asked, held)
    return arms


def holdout_targets(effect: dict[str, Any], arms: dict[str, Any]) -> dict[str, Any]:
    low = effect["low"]
    agree = (
        effect["offered"] == arms["offered"]["n"] and effect["held_out"] == arms["held_out"]["n"]
    )
    return {
        "tenant_lift": {
            "target": "the 95% interval of the tenant's lift is above 0",
            "lift": effect["lift"],
            "low": low,
            "high": effect["high"],
            "met": low is not None and low > 0,
        },
        "arms_agree": {
            "target": "the server's arm sizes are the bench's",
            "server": [effect["offered"], effect["held_out"]],
            "bench": [arms["offered"]["n"], arms["held_out"]["n"]],
            "met": agree,
        },
    }


def report_holdout(
    outcomes: Mapping[str, Sequence[bool]],
    effect: dict[str, Any],
    arms: dict[str, Any],
    goals: dict[str, Any],
) -> None:
    print(table(windows(outcomes, len(outcomes["kaizen"])), ["episodes", *outcomes]))
    print(
        f"\nserver learning_effect(): offered {effect['offered']} ({effect['offered_successes']} "
        f"successes), held out {effect['held_out']} ({effect['held_out_successes']}); "
        f"lift {_num(effect['lift'])} [{_num(effect['low'])}, {_num(effect['high'])}]; "
        f"met: {goals['tenant_lift']['met']}"
    )
    for name in ("held_out", "offered", "not_held_out"):
        print(f"  bench {name:<13} n = {arms[name]['n']:>3}, success {arms[name]['rate']:.2f}")
    for name in ("lift_offered", "lift_not_held_out"):
        lift = arms[name]
        print(f"  bench {name}: {lift['lift']:.2f} [{lift['low']:.2f}, {lift['high']:.2f}]")
    print(f"arm sizes agree with the server: {goals['arms_agree']['met']}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# -- worlds of structured actions (slots, second try) ---------------------------------

Step = str
"""A structured action as canonical JSON (`step`): its type and its arguments."""
Plan = tuple[Step, ...]
STEP_RECALL_LIMIT = 10
UNFILLED = re.compile(r'"\{[A-Za-z_]\w*\}"')
"""A slot Kaizen could not fill from the task: `"{old}"` as a step's value."""


def step(action: Mapping[str, Any]) -> Step:
    return json.dumps(dict(action), sort_keys=True)


def step_type(s: Step) -> str:
    return str(json.loads(s).get("type"))


def render_steps(plan: Sequence[Step]) -> str:
    """`OPEN_FILE module=cart → RUN_TESTS runner=pytest`, for reports."""
    return " → ".join(_render(json.loads(s)) for s in plan)


def _render(action: Mapping[str, Any]) -> str:
    args = (f"{k}={v}" for k, v in sorted(action.items()) if k != "type")
    return " ".join([str(action.get("type")), *args])


@dataclass(frozen=True)
class StepEpisode:
    """One attempt in a world of structured actions. A step fails at once, with the
    error of its type, when the rules guard its type (`errors`) and the right plan
    does not do it so; a plan that runs through succeeds with P_RIGHT if it is the
    right one, else with P_WRONG."""

    number: int
    agent: str
    agent_type: str
    family: str
    phrasing: str
    right: Plan
    candidates: tuple[Plan, ...]
    errors: Mapping[str, str]
    luck: float

    def error(self, s: Step) -> str | None:
        return None if s in self.right else self.errors.get(step_type(s))


def run_try(trace: Trace, plan: Plan, ep: StepEpisode, rng: random.Random) -> bool:
    """Run one try from its first step; False at the first step that fails."""
    for s in plan:
        error = ep.error(s)
        trace.add(s, {"success": False, "error": error} if error else OK, rng)
        if error:
            return False
    return True


class StepPolicy(Protocol):
    async def next_try(self, ep: StepEpisode, tried: Sequence[Plan]) -> Plan: ...
    async def learn(self, ep: StepEpisode, trace: Trace) -> None: ...


async def attempt_tries(
    policy: StepPolicy, ep: StepEpisode, tries: int, rng: random.Random
) -> Trace:
    """Up to `tries` tries, each from its first step on; the first that runs through
    decides the outcome."""
    trace = Trace()
    tried: list[Plan] = []
    while len(tried) < tries:
        plan = await policy.next_try(ep, tried)
        tried.append(plan)
        trace.tries.append(len(trace.actions))
        if run_try(trace, plan, ep, rng):
            trace.success = ep.luck < (P_RIGHT if plan == ep.right else P_WRONG)
            break
    trace.remedies = len(tried) - 1
    return trace


async def run_steps(
    policy: StepPolicy, episodes: Sequence[StepEpisode], tries: int, rng: random.Random
) -> list[Trace]:
    traces = []
    for ep in episodes:
        trace = await attempt_tries(policy, ep, tries, rng)
        await policy.learn(ep, trace)
        traces.append(trace)
    return traces


def first_try(trace: Trace) -> Trace:
    """The attempt as a miner of first tries only sees it: its first try, a failure
    when another try followed."""
    if len(trace.tries) < 2:
        return trace
    end = trace.tries[1]
    seconds = trace.seconds * end / len(trace.actions)
    return Trace(trace.actions[:end], trace.results[:end], seconds)


def successes(traces: Sequence[Trace]) -> list[bool]:
    return [t.success for t in traces]


def untried(candidates: Sequence[Plan], tried: Sequence[Plan]) -> list[Plan]:
    return [c for c in candidates if c not in tried] or list(candidates)


class StepBaseline:
    """No Kaizen: a random candidate it has not tried yet."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    async def next_try(self, ep: StepEpisode, tried: Sequence[Plan]) -> Plan:
        return self.rng.choice(untried(ep.candidates, tried))

    async def learn(self, ep: StepEpisode, trace: Trace) -> None:
        pass


class StepOracle:
    async def next_try(self, ep: StepEpisode, tried: Sequence[Plan]) -> Plan:
        return ep.right

    async def learn(self, ep: StepEpisode, trace: Trace) -> None:
        pass


@dataclass(frozen=True)
class Choice:
    """What a step learner was offered for an attempt, and what it followed."""

    top: list[Seen]
    followed: Seen | None

    def brief(self) -> dict[str, Any]:
        followed = step_brief(self.followed) if self.followed else None
        return {"followed": followed, "top": [step_brief(s) for s in self.top]}


def step_brief(s: Seen) -> dict[str, Any]:
    return {
        "id": s.id,
        "type": s.type,
        "steps": render_steps(s.steps) if s.steps else " → ".join(s.actions),
        "avoid": s.avoid,
        "slotted": s.slotted,
        "score": round(s.score, 4),
    }


class StepLearner:
    """A Kaizen agent for structured actions. One query per attempt; its first try
    executes the steps of the best learning it can (`follow`), else explores a
    candidate no "don't" forbids; later tries explore the candidates not tried.
    `records=False` records nothing (scoring); `first_tries` records only the first
    try of each attempt."""

    def __init__(
        self,
        kz: KaizenClient,
        rng: random.Random,
        *,
        records: bool = True,
        first_tries: bool = False,
    ) -> None:
        self.kz = kz
        self.rng = rng
        self.records = records
        self.first_tries = first_tries
        self.used = Used()
        self.seen: list[Seen] = []
        self.log: list[Choice] = []

    async def next_try(self, ep: StepEpisode, tried: Sequence[Plan]) -> Plan:
        if tried:
            return explore_steps(self.seen, untried(ep.candidates, tried), self.rng)
        recalled = await recall(self.kz, ep.phrasing, ep.agent_type, None, STEP_RECALL_LIMIT)
        self.used, self.seen = Used(), recalled.seen
        self.used.saw(recalled)
        chosen = follow(recalled.seen)
        self.used.follow(chosen)
        self.log.append(Choice(recalled.seen[:3], chosen))
        return chosen.steps if chosen else explore_steps(recalled.seen, ep.candidates, self.rng)

    async def learn(self, ep: StepEpisode, trace: Trace) -> None:
        if self.records:
            told = first_try(trace) if self.first_tries else trace
            actions = [json.loads(a) for a in told.actions]
            who = Who(ep.agent, ep.agent_type)
            await record(self.kz, who, ep.phrasing, actions, told, self.used)


def follow(seen: Sequence[Seen]) -> Seen | None:
    """The best-ranked success-type learning with steps to execute (no slot left
    unfilled) that no better-ranked "don't" forbids."""
    donts: list[Plan] = []
    for learning in seen:
        if learning.avoid:
            donts.append(learning.steps)
        elif (
            learning.type in SUCCESS_TYPES
            and executable(learning.steps)
            and not forbidden(learning.steps, donts)
        ):
            return learning
    return None


def executable(steps: Plan) -> bool:
    return bool(steps) and not any(UNFILLED.search(s) for s in steps)


def forbidden(plan: Sequence[Step], donts: Sequence[Plan]) -> bool:
    """Whether the plan does what a "don't" says not to: its steps, in a row."""
    return any(contains(plan, dont) for dont in donts if dont)


def contains(plan: Sequence[Step], run: Sequence[Step]) -> bool:
    n = len(run)
    return any(tuple(plan[i : i + n]) == tuple(run) for i in range(len(plan) - n + 1))


def explore_steps(seen: Sequence[Seen], options: Sequence[Plan], rng: random.Random) -> Plan:
    """A random option that no "don't" forbids (any, if they all are)."""
    donts = [s.steps for s in seen if s.avoid]
    allowed = [c for c in options if not forbidden(c, donts)] or list(options)
    return rng.choice(allowed)


def step_chance(episodes: Sequence[StepEpisode], tries: int) -> float:
    """Expected success rate of trying random untried candidates, up to `tries`."""
    return mean([episode_chance(ep, tries) for ep in episodes])


def episode_chance(ep: StepEpisode, tries: int) -> float:
    """P(some pick among the first `tries` runs through) x the mean success of the
    candidates that run through: the first of them is any one of them alike."""
    through = [c for c in ep.candidates if not any(ep.error(s) for s in c)]
    n, failing = len(ep.candidates), len(ep.candidates) - len(through)
    stuck = math.prod(max(0, failing - i) / (n - i) for i in range(min(tries, n)))
    rates = [P_RIGHT if c == ep.right else P_WRONG for c in through]
    return (1 - stuck) * mean(rates)


def failed_examples(
    episodes: Sequence[StepEpisode], traces: Sequence[Trace], log: Sequence[Choice], most: int
) -> list[dict[str, Any]]:
    """Attempts whose first try was not the right plan: what kaizen was offered."""
    found = []
    for ep, trace, choice in zip(episodes, traces, log, strict=True):
        if tuple(first_try(trace).actions) != ep.right:
            found.append({"task": ep.phrasing, "right": render_steps(ep.right), **choice.brief()})
    return found[:most]


def print_examples(title: str, examples: Sequence[dict[str, Any]], most: int = 2) -> None:
    for example in examples[:most]:
        followed = example["followed"]
        print(f"  {title}: {example['task']!r}\n    right:    {example['right']}")
        print(f"    followed: {followed['steps'] if followed else None}")
        for s in example["top"]:
            print(f"    offered:  {s['type']}{' (avoid)' if s['avoid'] else ''} {s['steps']}")


# -- slots: arguments that follow the task -----------------------------------------

MARK = "<v>"
"""Where a slot family's value goes in its plans and phrasings."""
SLOT_TESTS = 60
"""Scoring episodes per phase (half with --quick)."""
DOMAINS = tuple(
    "billing auth search report invoice cart payment profile session export audit catalog".split()
)
PACKAGES = tuple(
    """requests numpy flask django sqlalchemy celery pydantic httpx redis boto3 jinja2 pyyaml
    structlog tenacity lxml pillow scipy uvicorn fastapi gunicorn psycopg2 alembic marshmallow
    pendulum orjson msgpack cryptography paramiko tornado gevent aiohttp websockets grpcio
    protobuf pyarrow polars dask numba matplotlib seaborn networkx sympy beautifulsoup4 scrapy
    loguru""".split()
)


@dataclass(frozen=True)
class SlotFamily:
    """Tasks with a value in their text that the right plan's arguments carry."""

    name: str
    plan: tuple[dict[str, str], ...]
    decoys: tuple[tuple[dict[str, str], ...], ...]
    errors: Mapping[str, str]
    """Action type → the error a step of it fails with, done otherwise than the plan."""
    train: tuple[str, ...]
    held_out: tuple[str, ...]
    values: tuple[str, ...]


def act(kind: str, **args: str) -> dict[str, str]:
    return {"type": kind, **args}


V, V2 = MARK, f"{MARK}_v2"
PYTEST, UNITTEST = act("RUN_TESTS", runner="pytest"), act("RUN_TESTS", runner="unittest")
NO_TESTS = "NoTestsRan: the runner collected 0 tests"
OPEN, RENAME = act("OPEN_FILE", module=V), act("RENAME", old=V, new=V2)
REQUIREMENTS = act("EDIT_CONFIG", file="requirements.txt", package=V)
INTERNAL = act("INSTALL_PACKAGE", package=V, index="internal")
BASTION, HEALTH = act("SSH", host="bastion"), act("CHECK_HEALTH", service=V)
SIGTERM = act("RESTART", service=V, signal="SIGTERM")
SLOT_FAMILIES = (
    SlotFamily(
        "rename",
        (OPEN, RENAME, PYTEST),
        (
            (OPEN, RENAME, UNITTEST),
            (OPEN, act("RENAME", old=V2, new=V), PYTEST),
            (OPEN, act("EDIT_CODE", module=V), PYTEST),
            (RENAME, act("OPEN_FILE", module=V2), PYTEST),
        ),
        {
            "RENAME": "FileNotFoundError: [Errno 2] No such file or directory (nothing to rename)",
            "RUN_TESTS": NO_TESTS,
        },
        (
            "Rename the <v> module to <v>_v2",
            "Rename module <v> to <v>_v2 and fix its imports",
            "Give the <v> module its new name <v>_v2 everywhere",
            "Change the name of the <v> module to <v>_v2",
            "The <v> module must be renamed to <v>_v2 today",
            "Refactor the code base so that <v> is called <v>_v2 from now on",
            "Please rename <v> to <v>_v2 in the repository",
            "Rename the python module <v> as <v>_v2",
        ),
        (
            "We are retiring the name <v>; from today the package is <v>_v2",
            "Move everything that imports <v> over to <v>_v2 by renaming it",
            "<v> needs a fresh identifier, <v>_v2, across the project",
        ),
        tuple(f"{d}_{p}" for d in DOMAINS for p in ("utils", "client", "models", "views", "tasks")),
    ),
    SlotFamily(
        "upgrade",
        (REQUIREMENTS, INTERNAL, PYTEST),
        (
            (REQUIREMENTS, act("INSTALL_PACKAGE", package=V, index="pypi"), PYTEST),
            (act("EDIT_CONFIG", file="setup.cfg", package=V), INTERNAL, PYTEST),
            (INTERNAL, REQUIREMENTS, PYTEST),
            (REQUIREMENTS, INTERNAL, UNITTEST),
        ),
        {
            "EDIT_CONFIG": "KeyError: no dependency list in this file",
            "INSTALL_PACKAGE": "ConnectionError: the public index is unreachable from the build network",
            "RUN_TESTS": NO_TESTS,
        },
        (
            "Upgrade the <v> dependency and make sure nothing breaks",
            "Bump <v> to its latest release",
            "Update the <v> package to the newest version",
            "Move the project to a newer <v> release",
            "Upgrade <v>, the current version has a security advisory",
            "Bring the <v> dependency up to date",
            "We need the latest <v> here, upgrade it",
            "Refresh the pinned version of <v> in the project",
        ),
        (
            "Our lock file still has an old <v>; get us onto the current one",
            "A security scan flagged <v>: take the fixed release",
            "Get a more recent <v> into the build",
        ),
        PACKAGES,
    ),
    SlotFamily(
        "restart",
        (BASTION, SIGTERM, HEALTH),
        (
            (BASTION, act("RESTART", service=V, signal="SIGKILL"), HEALTH),
            (act("SSH", host="localhost"), SIGTERM, HEALTH),
            (BASTION, SIGTERM, PYTEST),
            (SIGTERM, BASTION, HEALTH),
        ),
        {
            "SSH": "PermissionDenied: publickey (only the bastion holds the key)",
            "RESTART": "WorkerLost: the service died with its queue unflushed",
            "CHECK_HEALTH": "HealthCheckFailed: unknown service",
        },
        (
            "Restart the <v> service, it stopped answering",
            "Bounce the <v> service",
            "The <v> service hangs; restart it",
            "Restart <v> on production",
            "Please restart the <v> service and check it comes back",
            "Give the <v> service a restart",
            "<v> is stuck, restart the service",
            "Do a clean restart of the <v> service",
        ),
        (
            "Nothing responds from <v> since noon, cycle it",
            "Kick <v> so that requests flow again",
            "Take <v> down and bring it back up",
        ),
        tuple(
            f"{d}-{k}"
            for d in DOMAINS
            for k in ("api", "worker", "gateway", "scheduler", "indexer")
        ),
    ),
)


@dataclass(frozen=True)
class SlotTask:
    """A slot family as one run meets it: its decoys, and its values split."""

    family: SlotFamily
    decoys: tuple[tuple[dict[str, str], ...], ...]
    train_values: tuple[str, ...]
    test_values: tuple[str, ...]


def build_slot_world(rng: random.Random) -> list[SlotTask]:
    tasks = []
    for family in SLOT_FAMILIES:
        values = list(family.values)
        rng.shuffle(values)
        cut = len(values) // 3
        decoys = tuple(rng.sample(family.decoys, CANDIDATES - 1))
        tasks.append(SlotTask(family, decoys, tuple(values[cut:]), tuple(values[:cut])))
    return tasks


def instantiate(plan: Sequence[Mapping[str, str]], value: str) -> Plan:
    return tuple(step({k: v.replace(MARK, value) for k, v in a.items()}) for a in plan)


def slot_episode(
    number: int, task: SlotTask, template: str, value: str, rng: random.Random
) -> StepEpisode:
    agent, agent_type = rng.choice(AGENTS)
    family = task.family
    candidates = [instantiate(p, value) for p in (family.plan, *task.decoys)]
    rng.shuffle(candidates)
    right, phrasing = instantiate(family.plan, value), template.replace(MARK, value)
    return StepEpisode(
        number,
        agent,
        agent_type,
        family.name,
        phrasing,
        right,
        tuple(candidates),
        family.errors,
        rng.random(),
    )


def slot_schedule(
    tasks: Sequence[SlotTask],
    n: int,
    rng: random.Random,
    *,
    unseen: bool = False,
    held_out: bool = False,
) -> list[StepEpisode]:
    episodes = []
    for number in range(1, n + 1):
        task = rng.choice(tasks)
        templates = task.family.held_out if held_out else task.family.train
        values = task.test_values if unseen else task.train_values
        episodes.append(slot_episode(number, task, rng.choice(templates), rng.choice(values), rng))
    return episodes


async def slots_part(cfg: Config) -> dict[str, Any]:
    rng = cfg.stream("slots")
    tasks = build_slot_world(rng)
    phases = {
        "training": slot_schedule(tasks, cfg.episodes, rng),
        "unseen values": slot_schedule(tasks, cfg.scoring(SLOT_TESTS), rng, unseen=True),
        "unseen values, held-out phrasings": slot_schedule(
            tasks, cfg.scoring(SLOT_TESTS), rng, unseen=True, held_out=True
        ),
    }
    outcomes = await step_references(cfg, phases, 1)
    traces, learners, learned = await slots_kaizen(cfg, phases)
    for phase, ts in traces.items():
        outcomes[phase]["kaizen"] = successes(ts)
    return report_slots(phases, outcomes, traces, learners, learned)


async def step_references(
    cfg: Config, phases: Mapping[str, Sequence[StepEpisode]], tries: int
) -> dict[str, dict[str, list[bool]]]:
    """The baseline's and the oracle's outcomes, per phase."""
    rng = cfg.stream("baseline")
    policies: dict[str, StepPolicy] = {"baseline": StepBaseline(rng), "oracle": StepOracle()}
    found: dict[str, dict[str, list[bool]]] = {}
    for phase, episodes in phases.items():
        found[phase] = {
            n: successes(await run_steps(p, episodes, tries, rng)) for n, p in policies.items()
        }
    return found


async def slots_kaizen(
    cfg: Config, phases: Mapping[str, Sequence[StepEpisode]]
) -> tuple[dict[str, list[Trace]], dict[str, StepLearner], list[ScoredLearning]]:
    """Kaizen trained on the first phase, then scored (recording nothing) on the others."""
    rng = cfg.stream("kaizen")
    traces: dict[str, list[Trace]] = {}
    learners: dict[str, StepLearner] = {}
    async with kaizen() as kz:
        for phase, episodes in phases.items():
            learners[phase] = StepLearner(kz, rng, records=phase == "training")
            traces[phase] = await run_steps(learners[phase], episodes, 1, rng)
        learned = await all_learnings(kz)
    return traces, learners, learned


def report_slots(
    phases: Mapping[str, Sequence[StepEpisode]],
    outcomes: Mapping[str, Mapping[str, list[bool]]],
    traces: Mapping[str, Sequence[Trace]],
    learners: Mapping[str, StepLearner],
    learned: Sequence[ScoredLearning],
) -> dict[str, Any]:
    training = outcomes["training"]
    rows = windows(training, len(training["kaizen"]))
    print(table(rows, ["episodes", "baseline", "kaizen", "oracle"]))
    scored = [slot_phase(p, outcomes[p], learners[p]) for p in phases]
    print()
    print(
        table(scored, ["phase", "episodes", "baseline", "kaizen", "oracle", "followed", "slotted"])
    )
    unseen = scored[1]
    goals = {
        "unseen_values": vs_oracle(unseen["kaizen"], unseen["oracle"]),
        "baseline_at_chance": at_chance(training["baseline"], step_chance(phases["training"], 1)),
    }
    slotted = [slotted_brief(x) for x in learned if x.slots]
    print_slot_targets(goals, slotted)
    examples = {
        p: failed_examples(phases[p], traces[p], learners[p].log, 6) for p in list(phases)[1:]
    }
    for phase, found in examples.items():
        print_examples(phase, found)
    return {
        "world": [slot_world_info(f) for f in SLOT_FAMILIES],
        "windows": rows,
        "phases": scored,
        "targets": goals,
        "slotted_learnings": slotted,
        "learnings": len(learned),
        "examples": examples,
    }


def slot_phase(
    phase: str, outcomes: Mapping[str, list[bool]], learner: StepLearner
) -> dict[str, Any]:
    """One phase's success rates, and how often kaizen followed a (slotted) learning."""
    followed = [c.followed for c in learner.log]
    return {
        "phase": phase,
        "episodes": len(outcomes["kaizen"]),
        **{name: mean(xs) for name, xs in outcomes.items()},
        "followed": mean([f is not None for f in followed]),
        "slotted": mean([f is not None and f.slotted for f in followed]),
    }


def slotted_brief(learning: ScoredLearning) -> dict[str, Any]:
    return {
        "id": learning.id,
        "type": str(learning.type),
        "agent_type": learning.agent_type,
        "actions": learning.actions,
        "slots": learning.slots,
        "task_templates": learning.task_templates[:3],
        "confidence": learning.confidence,
    }


def slot_world_info(family: SlotFamily) -> dict[str, Any]:
    return {
        "family": family.name,
        "plan": render_steps(instantiate(family.plan, MARK)),
        "decoys": [render_steps(instantiate(d, MARK)) for d in family.decoys],
        "errors": dict(family.errors),
    }


def print_slot_targets(goals: Mapping[str, Any], slotted: Sequence[dict[str, Any]]) -> None:
    unseen, base = goals["unseen_values"], goals["baseline_at_chance"]
    print(
        f"\nkaizen on unseen values: {unseen['kaizen']:.2f} = {unseen['ratio']:.2f} x oracle "
        f"(target ≥ {TARGET_RATIO}); met: {unseen['met']}"
    )
    print(
        f"baseline {base['observed']:.3f} vs chance {base['chance']:.3f} "
        f"(± {base['tolerance']:.3f}); met: {base['met']}"
    )
    print(f"slotted learnings at the end: {len(slotted)}")
    for learning in slotted[:4]:
        print(f"  {learning['type']} ({learning['agent_type']}): {' → '.join(learning['actions'])}")


# -- second try: successes after a failed step --------------------------------------

RETRIES = 2
KEY_STEPS = 8
"""Key steps an agent considers per family: the right one and 7 that fail."""
AVOID_TARGET = 0.1
"""Most share of kaizen's last-window attempts whose first try hits a failing step."""
WRONG_STEP_ERRORS = {
    "READ_DOCS": "HTTPError: 404 Client Error: Not Found for url",
    "SEARCH_CODE": "TimeoutError: the code search index is rebuilding",
    "INSPECT_LOGS": "PermissionError: [Errno 13] Permission denied: '/var/log/app'",
    "EDIT_CODE": "PatchError: the hunk does not apply to this file",
    "EDIT_CONFIG": "ValidationError: unknown key in the configuration",
    "RUN_TESTS": "AssertionError: 3 tests failed",
    "RUN_SCRIPT": "CalledProcessError: command returned non-zero exit status 2",
    "BUILD": "CompileError: the build failed with 12 errors",
    "DEPLOY": "DeploymentError: the readiness probe failed",
    "QUERY_DB": "ProgrammingError: relation does not exist",
}


@dataclass(frozen=True)
class RetryTask:
    """A classic family as set-up → key step → finish, among key-step decoys."""

    family: Family
    right: Plan
    candidates: tuple[Plan, ...]
    errors: Mapping[str, str]


def plain_plan(actions: Sequence[str]) -> Plan:
    return tuple(step({"type": a}) for a in actions)


def build_retry_world(families: Sequence[Family], rng: random.Random) -> list[RetryTask]:
    tasks = []
    for family in families:
        setup, key, finish = family.plan
        decoys = rng.sample([a for a in WORK if a not in family.plan], KEY_STEPS - 1)
        candidates = [plain_plan((setup, k, finish)) for k in (key, *decoys)]
        rng.shuffle(candidates)
        errors = {d: WRONG_STEP_ERRORS[d] for d in decoys}
        tasks.append(RetryTask(family, plain_plan(family.plan), tuple(candidates), errors))
    return tasks


def retry_schedule(tasks: Sequence[RetryTask], n: int, rng: random.Random) -> list[StepEpisode]:
    episodes = []
    for number in range(1, n + 1):
        agent, agent_type = rng.choice(AGENTS)
        t = rng.choice(tasks)
        phrasing = rng.choice(t.family.train)
        episode = StepEpisode(
            number,
            agent,
            agent_type,
            t.family.name,
            phrasing,
            t.right,
            t.candidates,
            t.errors,
            rng.random(),
        )
        episodes.append(episode)
    return episodes


RETRY_REPEATS = 3
"""Worlds the part runs (1 with --quick): one world's reach moves by tens of episodes
with the server's timing."""
KAIZENS = (("kaizen", False), ("kaizen-first-tries", True))
COLUMNS = ("baseline", "kaizen", "kaizen-first-tries", "oracle")


@dataclass
class RetryRun:
    """One world of the part: its episodes, every policy's traces, the kaizen
    agents, and the one-step "don'ts" each kaizen server held at the end."""

    tasks: list[RetryTask]
    episodes: list[StepEpisode]
    traces: dict[str, list[Trace]] = field(default_factory=dict)
    learners: dict[str, StepLearner] = field(default_factory=dict)
    donts: dict[str, dict[str, int]] = field(default_factory=dict)

    def outcomes(self) -> dict[str, list[bool]]:
        return {name: successes(self.traces[name]) for name in COLUMNS}

    def first_failed(self) -> dict[str, list[bool]]:
        return {name: [t.errors > 0 for t in self.traces[name]] for name in COLUMNS[:3]}


async def second_try_part(cfg: Config) -> dict[str, Any]:
    repeats = 1 if cfg.quick else RETRY_REPEATS
    return report_second_try([await retry_run(cfg, r) for r in range(repeats)])


async def retry_run(cfg: Config, repeat: int) -> RetryRun:
    rng = cfg.stream(f"second-try:{repeat}")
    tasks = build_retry_world(cfg.families, rng)
    run = RetryRun(tasks, retry_schedule(tasks, cfg.episodes, rng))
    base = cfg.stream(f"baseline:{repeat}")
    run.traces["baseline"] = await run_steps(StepBaseline(base), run.episodes, RETRIES, base)
    run.traces["oracle"] = await run_steps(StepOracle(), run.episodes, RETRIES, base)
    for name, first_tries in KAIZENS:
        await retry_kaizen(run, name, first_tries, cfg.stream(f"kaizen:{repeat}"))
    return run


async def retry_kaizen(run: RetryRun, name: str, first_tries: bool, rng: random.Random) -> None:
    async with kaizen() as kz:
        learner = StepLearner(kz, rng, first_tries=first_tries)
        run.traces[name] = await run_steps(learner, run.episodes, RETRIES, rng)
        run.donts[name] = dont_tally(await all_learnings(kz), run.tasks)
    run.learners[name] = learner


def dont_tally(learned: Sequence[ScoredLearning], tasks: Sequence[RetryTask]) -> dict[str, int]:
    """The one-step "don'ts", and how many name a step that fails in the family of
    the task they were learned on."""
    family = {p: t for t in tasks for p in t.family.train}
    donts = [x for x in learned if x.avoid and len(x.steps) == 1]
    right = [
        x
        for x in donts
        if x.task_example in family and str(x.steps[0].get("type")) in family[x.task_example].errors
    ]
    return {"donts": len(donts), "name_a_failing_step": len(right)}


def averaged(tables: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Window rows averaged over runs of the same length."""
    rows = []
    for same in zip(*tables, strict=True):
        row = dict(same[0])
        for key in row.keys() - {"episodes"}:
            row[key] = mean([r[key] for r in same])
        rows.append(row)
    return rows


def report_second_try(runs: Sequence[RetryRun]) -> dict[str, Any]:
    n = len(runs[0].episodes)
    rows = averaged([windows(r.outcomes(), n) for r in runs])
    failed_rows = averaged([windows(r.first_failed(), n) for r in runs])
    print(f"mean of {len(runs)} worlds\n{table(rows, ['episodes', *COLUMNS])}")
    print(f"\nfirst try hit a failing step:\n{table(failed_rows, ['episodes', *COLUMNS[:3]])}")
    goals = second_try_targets(runs)
    donts = {name: summed([r.donts[name] for r in runs]) for name, _ in KAIZENS}
    detours = {name: sum(detours_followed(r, name) for r in runs) for name, _ in KAIZENS}
    print_second_try(goals, donts)
    print(f"attempts that followed a learning holding a failing step: {detours}")
    examples = late_examples(runs[0])
    print_examples("second half, first try failed", examples)
    return {
        "worlds": len(runs),
        "windows": rows,
        "first_try_failed": failed_rows,
        "targets": goals,
        "donts": donts,
        "detours_followed": detours,
        "examples": examples,
    }


def detours_followed(run: RetryRun, name: str) -> int:
    """Attempts that followed a learning one of whose steps fails: a whole detour
    ("set-up, wrong key, set-up, right key, finish") learned as a success."""
    pairs = zip(run.episodes, run.learners[name].log, strict=True)
    followed = [(ep, c.followed) for ep, c in pairs if c.followed]
    return sum(1 for ep, f in followed if any(ep.error(s) for s in f.steps))


def summed(tallies: Sequence[Mapping[str, int]]) -> dict[str, int]:
    return {key: sum(t[key] for t in tallies) for key in tallies[0]}


def late_examples(run: RetryRun) -> list[dict[str, Any]]:
    """Kaizen's attempts in the second half of the run whose first try went wrong."""
    half = len(run.episodes) // 2
    traces, log = run.traces["kaizen"][half:], run.learners["kaizen"].log[half:]
    return failed_examples(run.episodes[half:], traces, log, 6)


def second_try_targets(runs: Sequence[RetryRun]) -> dict[str, Any]:
    threshold = TARGET_RATIO * mean([mean(r.outcomes()["oracle"]) for r in runs])
    reach = {n: [reached_at(r.outcomes()[n], threshold) for r in runs] for n, _ in KAIZENS}
    never = len(runs[0].episodes) + 1
    mean_reach = {name: mean([x or never for x in xs]) for name, xs in reach.items()}
    failures = {n: [sum(r.first_failed()[n]) for r in runs] for n, _ in KAIZENS}
    last_failed = mean([mean(r.first_failed()["kaizen"][-WINDOW:]) for r in runs])
    baseline = [o for r in runs for o in r.outcomes()["baseline"]]
    expected = mean([step_chance(r.episodes, RETRIES) for r in runs])
    return {
        "faster_than_first_try": {
            "target": f"kaizen's rolling {WINDOW}-episode rate reaches {TARGET_RATIO} x oracle sooner than kaizen-first-tries' (mean over worlds; never = {never})",
            "threshold": threshold,
            "reached_at": reach,
            "mean_reached_at": mean_reach,
            "first_tries_failed": failures,
            "met": mean_reach["kaizen"] < mean_reach["kaizen-first-tries"],
        },
        "avoids_failed_step": {
            "target": f"kaizen's first try hits a failing step in ≤ {AVOID_TARGET} of the last window",
            "kaizen": last_failed,
            "baseline": mean([mean(r.first_failed()["baseline"][-WINDOW:]) for r in runs]),
            "met": last_failed <= AVOID_TARGET,
        },
        "baseline_at_chance": at_chance(baseline, expected),
    }


def print_second_try(goals: Mapping[str, Any], donts: Mapping[str, dict[str, int]]) -> None:
    fast, avoid, base = (
        goals["faster_than_first_try"],
        goals["avoids_failed_step"],
        goals["baseline_at_chance"],
    )
    print(f"\nrolling-{WINDOW} ≥ {fast['threshold']:.2f}, episode reached per world:")
    for name, reach in fast["reached_at"].items():
        print(
            f"  {name:<18} {reach} (mean {fast['mean_reached_at'][name]:.0f}); "
            f"first tries that failed: {fast['first_tries_failed'][name]}"
        )
    print(f"  met: {fast['met']}")
    print(
        f"last window, first try failed: kaizen {avoid['kaizen']:.2f}, baseline "
        f"{avoid['baseline']:.2f} (target ≤ {AVOID_TARGET}); met: {avoid['met']}"
    )
    print(
        f"baseline {base['observed']:.3f} vs chance {base['chance']:.3f} "
        f"(± {base['tolerance']:.3f}); met: {base['met']}"
    )
    for name, tally in donts.items():
        print(
            f"{name}: {tally['donts']} one-step don'ts, "
            f"{tally['name_a_failing_step']} of them name a failing step"
        )


# -- paraphrase: hard phrasings that only feedback can place -------------------------

HARD = {
    "csv": (
        "Hazme el volcado plano delimitado por comas convertido en fichas",
        "Den Trennzeichen-Export einlesen und je Zeile ein Objekt anlegen",
        "Monte un ETL du fichier plat: chaque ligne devient une fiche",
    ),
    "kubernetes": (
        "Ausrollen des Frontends auf den Orchestrator, bitte",
        "Sube la última imagen al clúster de contenedores y que quede en producción",
        "Mise en prod du frontal sur l'orchestrateur de conteneurs",
    ),
    "migration": (
        "La migración del esquema revienta a medias; arréglala",
        "Die Schema-Umstellung bricht mit Sperrfehler ab, bitte beheben",
        "Le script de montée de version de la base plante en plein milieu",
    ),
    "classifier": (
        "Entrena la red neuronal para que reconozca qué sale en cada foto",
        "Das Bilderkennungsnetz auf den beschrifteten Aufnahmen anlernen",
        "Apprentissage du réseau de vision sur les clichés étiquetés",
    ),
    "backup": (
        "Jede Nacht eine Sicherung der Produktionsdatenbank anlegen",
        "Copia de seguridad nocturna de la base de datos de producción",
        "Sauvegarde nocturne de la base de prod",
    ),
    "dark-mode": (
        "Einen Nachtmodus-Schalter in den Einstellungen einbauen",
        "Añade un interruptor de modo oscuro en la pantalla de ajustes",
        "Ajoute un thème sombre activable dans les préférences",
    ),
    "tls": (
        "Abgelaufene Zertifikate erneuern",
        "Renueva los certificados caducados del balanceador",
        "Les certificats ont expiré, remplace-les",
    ),
    "search-latency": (
        "Die Suche antwortet zu langsam, bitte beschleunigen",
        "El buscador tarda muchísimo en responder, hazlo más rápido",
        "La recherche rame, accélère-la",
    ),
}
FEEDBACK_ROUNDS = 2
HARD_TESTS = 2
"""Scoring episodes per hard phrasing, before and after feedback."""
TARGET_HARD_RETRIEVAL = 0.8


def hard_schedule(tasks: Sequence[Task], rounds: int, rng: random.Random) -> list[Episode]:
    """`rounds` episodes per hard phrasing, phrasing by phrasing."""
    episodes: list[Episode] = []
    for task in tasks:
        for phrasing in HARD[task.family.name]:
            for _ in range(rounds):
                episodes.append(hard_episode(len(episodes) + 1, task, phrasing, rng))
    return episodes


def hard_episode(number: int, task: Task, phrasing: str, rng: random.Random) -> Episode:
    agent, agent_type = rng.choice(AGENTS)
    return Episode(
        number, agent, agent_type, task, phrasing, rng.random() < ERROR_RATE, rng.random()
    )


async def paraphrase_part(cfg: Config) -> dict[str, Any]:
    tasks, episodes = classic_world(cfg)
    rng = cfg.stream("paraphrase")
    tests, feedback = (
        hard_schedule(tasks, HARD_TESTS, rng),
        hard_schedule(tasks, FEEDBACK_ROUNDS, rng),
    )
    runs = {
        name: await paraphrase_run(cfg, tasks, episodes, tests, feedback, reports)
        for name, reports in (("feedback", True), ("control", False))
    }
    return report_paraphrase(await reference(cfg, tests), runs)


async def paraphrase_run(
    cfg: Config,
    tasks: Sequence[Task],
    episodes: Sequence[Episode],
    tests: Sequence[Episode],
    feedback: Sequence[Episode],
    reports: bool,
) -> dict[str, Any]:
    """Train; score the hard phrasings; feed back (with the feedback fields when
    `reports`); score them again."""
    rng = cfg.stream("kaizen")
    async with kaizen() as kz:
        await run_policy(Learner("kaizen", KaizenMemory(kz), rng), episodes, rng)
        scorer = Learner("kaizen", KaizenMemory(kz, records=False), rng)
        before = await hard_retrieval(kz, tasks, {})
        before["success"] = await run_policy(scorer, tests, rng)
        helper = FallbackLearner("kaizen", KaizenMemory(kz, feedback=reports), rng)
        fed = await run_policy(helper, feedback, rng)
        after = await hard_retrieval(kz, tasks, applied_by_phrasing(feedback, helper.history))
        after["success"] = await run_policy(scorer, tests, rng)
    applied = mean([bool(u.applied) for u in helper.history])
    return {
        "before": before,
        "after": after,
        "feedback": {"success": mean(fed), "applied": applied},
    }


def applied_by_phrasing(
    episodes: Sequence[Episode], history: Sequence[Used]
) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for ep, used in zip(episodes, history, strict=True):
        found.setdefault(ep.phrasing, set()).update(used.applied)
    return found


async def hard_retrieval(
    kz: KaizenClient, tasks: Sequence[Task], applied: Mapping[str, set[int]]
) -> dict[str, Any]:
    """Retrieval@1 of a right success-type learning for each hard phrasing; whether
    the first success-type learning of the 5 (the one an agent would follow) is
    right; and how often the top one is a learning the feedback attempts applied."""
    queries = []
    for task in tasks:
        for phrasing in HARD[task.family.name]:
            found = [seen_from(x) for x in await kz.get_relevant_learnings(phrasing, limit=5)]
            queries.append(hard_query(task.family, phrasing, found, applied.get(phrasing, set())))
    return {
        "retrieval_at_1": mean([q["correct"] for q in queries]),
        "first_success_right": mean([q["first_success_right"] for q in queries]),
        "top_is_applied": mean([q["top_is_applied"] for q in queries]),
        "queries": queries,
    }


def hard_query(
    family: Family, phrasing: str, found: Sequence[Seen], applied: set[int]
) -> dict[str, Any]:
    top = found[0] if found else None
    first = next((s for s in found if s.type in SUCCESS_TYPES), None)
    return {
        "family": family.name,
        "phrasing": phrasing,
        "correct": top is not None and top.type in SUCCESS_TYPES and claim_holds(family, top),
        "first_success_right": first is not None and claim_holds(family, first),
        "top_is_applied": top is not None and top.id in applied,
        "top": [{**s.brief(), "id": s.id, "score": round(s.score, 4)} for s in found[:3]],
    }


def report_paraphrase(
    reference_outcomes: Mapping[str, list[bool]], runs: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    base, oracle = mean(reference_outcomes["baseline"]), mean(reference_outcomes["oracle"])
    rows = [
        paraphrase_row(label, runs[run][when], base, oracle) for label, run, when in PARAPHRASE_ROWS
    ]
    columns = ["retrieval@1", "1st success right", "top applied", "baseline", "kaizen", "oracle"]
    print(table(rows, ["phase", *columns]))
    after = runs["feedback"]["after"]["retrieval_at_1"]
    goals = {
        "retrieval_after_feedback": {
            "target": f"retrieval@1 on hard phrasings after feedback ≥ {TARGET_HARD_RETRIEVAL}",
            "before": runs["feedback"]["before"]["retrieval_at_1"],
            "after": after,
            "control_after": runs["control"]["after"]["retrieval_at_1"],
            "met": after >= TARGET_HARD_RETRIEVAL,
        }
    }
    print_paraphrase(runs, goals)
    for run in runs.values():
        for when in ("before", "after"):
            run[when]["success"] = mean(run[when]["success"])
    return {"rows": rows, "runs": runs, "targets": goals}


PARAPHRASE_ROWS = (
    ("before feedback", "feedback", "before"),
    ("after feedback", "feedback", "after"),
    ("control: before", "control", "before"),
    ("control: after, no feedback fields", "control", "after"),
)


def paraphrase_row(label: str, phase: dict[str, Any], base: float, oracle: float) -> dict[str, Any]:
    return {
        "phase": label,
        "retrieval@1": phase["retrieval_at_1"],
        "1st success right": phase["first_success_right"],
        "top applied": phase["top_is_applied"],
        "baseline": base,
        "kaizen": mean(phase["success"]),
        "oracle": oracle,
    }


def print_paraphrase(runs: Mapping[str, dict[str, Any]], goals: Mapping[str, Any]) -> None:
    goal = goals["retrieval_after_feedback"]
    for name, run in runs.items():
        fed = run["feedback"]
        print(
            f"{name} attempts: success {fed['success']:.2f}, applied a learning {fed['applied']:.2f}"
        )
    print(
        f"retrieval@1 after feedback: {goal['after']:.2f} (before {goal['before']:.2f}, "
        f"control {goal['control_after']:.2f}; target ≥ {TARGET_HARD_RETRIEVAL}); met: {goal['met']}"
    )
    for q in runs["feedback"]["after"]["queries"]:
        if not q["correct"]:
            tops = (
                "; ".join(f"{s['type']} {' → '.join(s['actions'])}" for s in q["top"]) or "nothing"
            )
            print(f"  still wrong after feedback: {q['phrasing']!r} ({q['family']}): {tops}")


# -- liar: an agent that reports made-up successes ----------------------------------

LIAR = "liar-1"
LIAR_ODDS = 0.25
"""Chance of a lie before each honest episode: 0.25 / 1.25 = 20% of interactions."""
TARGET_LIAR_GAP = 0.05
PLAUSIBLE_LIES = 0.5
"""Share of lies that are a candidate of the family: honest agents follow those, so
their feedback can expose them; the rest no honest agent ever runs, and only the
liar's standing as a source can discount them."""


@dataclass(frozen=True)
class Lie:
    agent_type: str
    phrasing: str
    actions: tuple[str, ...]
    seconds: float


def liar_schedule(
    tasks: Sequence[Task], episodes: Sequence[Episode], rng: random.Random
) -> dict[int, Lie]:
    """The lies told before honest episodes, by episode number."""
    lies = {}
    for ep in episodes:
        if rng.random() < LIAR_ODDS:
            lies[ep.number] = lie(tasks, rng)
    return lies


def lie(tasks: Sequence[Task], rng: random.Random) -> Lie:
    """A made-up success: a random candidate of a task's family or a random sequence."""
    task = rng.choice(tasks)
    _, agent_type = rng.choice(AGENTS)
    plausible = rng.random() < PLAUSIBLE_LIES
    actions = rng.choice(task.candidates) if plausible else tuple(rng.sample(WORK, 3))
    return Lie(agent_type, rng.choice(task.family.train), actions, rng.uniform(3.0, 12.0))


class Liar:
    """Tells its lies before the honest episodes they were scheduled for."""

    def __init__(self, kz: KaizenClient, lies: Mapping[int, Lie]) -> None:
        self.kz = kz
        self.lies = lies
        self.ids: set[int] = set()

    async def before(self, ep: Episode) -> None:
        told = self.lies.get(ep.number)
        if told is not None:
            self.ids.add(await self.tell(told))

    async def tell(self, told: Lie) -> int:
        results = [dict(OK) for _ in told.actions]
        trace = Trace(list(told.actions), results, told.seconds, success=True)
        actions = [{"type": a} for a in told.actions]
        return await record(
            self.kz, Who(LIAR, told.agent_type), told.phrasing, actions, trace, Used()
        )


async def liar_part(cfg: Config) -> dict[str, Any]:
    tasks, episodes = classic_world(cfg)
    lies = liar_schedule(tasks, episodes, cfg.stream("liar"))
    outcomes = await reference(cfg, episodes)
    runs = {
        name: await liar_run(cfg, tasks, episodes, told)
        for name, told in (("clean", {}), ("liar", lies))
    }
    for name, run in runs.items():
        outcomes[f"kaizen-{name}"] = run.pop("outcomes")
    return report_liar(outcomes, runs)


async def liar_run(
    cfg: Config, tasks: Sequence[Task], episodes: Sequence[Episode], lies: Mapping[int, Lie]
) -> dict[str, Any]:
    rng = cfg.stream("kaizen")
    async with kaizen() as kz:
        liar = Liar(kz, lies)
        learner = Learner("kaizen", KaizenMemory(kz), rng)
        outcomes = await run_policy(learner, episodes, rng, before=liar.before)
        precision = await held_out_precision(kz, tasks)
        backed = await liar_backed(kz, tasks, liar.ids)
        learned = [seen_from(x) for x in await all_learnings(kz)]
    backed["active"] = sum(1 for s in learned if lied(s, liar.ids))
    backed["learnings"] = len(learned)
    return {
        "outcomes": outcomes,
        "lies": len(liar.ids),
        "precision": precision,
        "liar_backed": backed,
    }


async def liar_backed(
    kz: KaizenClient, tasks: Sequence[Task], liar_ids: set[int]
) -> dict[str, Any]:
    """Of the top 5 for each held-out phrasing, the learnings most of whose evidence
    the liar reported."""
    retrieved, backed = 0, []
    for task in tasks:
        for phrasing in task.family.held_out:
            top = [seen_from(x) for x in await kz.get_relevant_learnings(phrasing, limit=5)]
            retrieved += len(top)
            backed += [
                {"phrasing": phrasing, **s.brief(), "correct": claim_holds(task.family, s)}
                for s in top
                if lied(s, liar_ids)
            ]
    share = len(backed) / retrieved if retrieved else 0.0
    return {"retrieved": retrieved, "backed": len(backed), "share": share, "examples": backed[:8]}


def lied(learning: Seen, liar_ids: set[int]) -> bool:
    told = sum(1 for i in learning.evidence if i in liar_ids)
    return bool(learning.evidence) and 2 * told > len(learning.evidence)


def report_liar(
    outcomes: Mapping[str, list[bool]], runs: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    columns = ["baseline", "kaizen-clean", "kaizen-liar", "oracle"]
    rows = windows({c: outcomes[c] for c in columns}, len(outcomes["baseline"]))
    print(table(rows, ["episodes", *columns]))
    clean, lying = (runs[n]["precision"]["precision_at_5"] for n in ("clean", "liar"))
    goals = {
        "precision_with_liar": {
            "target": f"precision@5 with the liar within {TARGET_LIAR_GAP} of the clean run",
            "clean": clean,
            "liar": lying,
            "met": abs(lying - clean) <= TARGET_LIAR_GAP,
        }
    }
    print_liar(runs, goals)
    return {"windows": rows, "runs": runs, "targets": goals}


def print_liar(runs: Mapping[str, dict[str, Any]], goals: Mapping[str, Any]) -> None:
    goal = goals["precision_with_liar"]
    print(
        f"\nprecision@5 on held-out phrasings: clean {goal['clean']:.2f}, with the liar "
        f"{goal['liar']:.2f} (target: within {TARGET_LIAR_GAP}); met: {goal['met']}"
    )
    for name, run in runs.items():
        backed = run["liar_backed"]
        print(
            f"{name}: {run['lies']} lies told; mostly backed by the liar: {backed['backed']} of "
            f"{backed['retrieved']} retrieved, {backed['active']} of {backed['learnings']} active"
        )
    for example in runs["liar"]["liar_backed"]["examples"][:3]:
        print(
            f"  for {example['phrasing']!r}: {example['type']} {' → '.join(example['actions'])} "
            f"(true: {example['correct']})"
        )


# -- main --------------------------------------------------------------------------

Part = Callable[[Config], Awaitable[dict[str, Any]]]
RUNNERS: dict[str, Part] = {
    "classic": classic_part,
    "holdout": holdout_part,
    "slots": slots_part,
    "second-try": second_try_part,
    "paraphrase": paraphrase_part,
    "liar": liar_part,
}


def part_names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in PARTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(PARTS)}, not {unknown}")
    return names


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, help="per policy (default 300; 120 with --quick)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="120 episodes over 4 families, half the scoring"
    )
    parser.add_argument(
        "--parts", type=part_names, default=PARTS, help=f"comma-separated: {','.join(PARTS)}"
    )
    return parser.parse_args()


async def run_part(name: str, cfg: Config) -> tuple[dict[str, Any], float]:
    """The part's results; a part whose server failed is reported as such, so that
    the other parts of a long run still count."""
    print(f"\n== {name} ==\n")
    started = time.perf_counter()
    try:
        result = await RUNNERS[name](cfg)
    except KaizenError as exc:
        print(f"{name} failed: {exc!r}")
        result = {
            "error": repr(exc),
            "targets": {"ran": {"target": "no server error", "met": False}},
        }
    seconds = time.perf_counter() - started
    print(f"\n({name}: {seconds:.0f} s)")
    return result, seconds


def summary(parts: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"part": name, "target": goal, "met": spec["met"]}
        for name, part in parts.items()
        for goal, spec in part["targets"].items()
    ]


async def main() -> None:
    args = arguments()
    cfg = Config(args.episodes or (120 if args.quick else 300), args.seed, args.quick)
    parts: dict[str, dict[str, Any]] = {}
    runtime: dict[str, float] = {}
    for name in (n for n in PARTS if n in args.parts):
        parts[name], runtime[name] = await run_part(name, cfg)
    rows = summary(parts)
    print(f"\n{table(rows, ['part', 'target', 'met'])}\n\ntotal: {sum(runtime.values()):.0f} s")
    run = {"parts": list(parts), "episodes": cfg.episodes, "seed": cfg.seed, "quick": cfg.quick}
    payload = {
        **parts.get("classic", {}),
        "parts": {n: p for n, p in parts.items() if n != "classic"},
        "summary": rows,
        "run": {**run, "runtime_s": runtime},
    }
    print(f"\nwrote {write_results(BENCH, payload)}")


if __name__ == "__main__":
    asyncio.run(main())
