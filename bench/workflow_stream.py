"""A realistic event stream for the workflow learner, and next-command accuracy on it.

    python -m bench.workflow_stream [--sessions 3000] [--seed 1] [--noise 0.1]

The stream is what a memory daemon would post for a team of developers (the design's
event types, shell commands in `metadata.command`). Each developer has a
toolchain (Python, Node, Go or Rust: its test, build, lint and install commands,
each in a few spellings that normalise alike or not, `pytest -x` and `python -m
pytest` are one token, `npm test` and `npx jest` are two) and personal habits
(IDE or not, how often they lint, build, pull, push, check `git status`, how
noisy their shell is). One task is:

- start: maybe open the editor, `git pull` (then sometimes install), `git checkout -b`;
- 1 + Geometric(0.55) edit cycles (at most 6): open or create a file, 1 +
  Geometric(0.5) code edits, save, sometimes a second file; maybe lint and maybe
  build (each can fail: edit, save, run again); then, on the last cycle and on
  60% of the others, tests: the first run fails with p = `test_fail_first`, each
  rerun with p = `test_fail_retry`; a failure is followed by an edit-save (and
  sometimes a log read) and a rerun, at most `max_test_attempts` runs;
- end: when tests passed, maybe `git diff`, `git add`, a commit, maybe a push;
  when the developer gave up, `git stash`, `git checkout -- .`, a file deleted
  (the seed's failure indicator) or nothing;
- before every step, with p = the developer's noise rate (`noise_rate` × U(0.5,
  1.5)), one noise command (`ls`, `cd`, `cat`, `grep`, `git log`, `pwd`, ...);
- a tenth of the tasks are a quick look: one to three noise commands, which the
  learner skips (under 3 commands) or learns as noise.

Time: step durations are log-normal per kind (an edit ~20 s, a test run ~15 s,
thinking between steps ~8 s); 1% of steps are followed by an interruption of 5 to
30 minutes, which splits the task into two workflow sessions; consecutive tasks
follow each other after 30 s to 4 min (one workflow session, as the learner sees
it) with p = `back_to_back`, else after 10 to 90 minutes. A developer keeps one
daemon session_id per day, so the learner's idle close, not the id, cuts the
workflows. Developers work 8-hour days that start at jittered times, so their
events interleave; the stream is sorted by time.

Accuracy: the stream is grouped exactly as the server groups it (`RunGrouper`,
5 minutes idle), split in time (the last `held_out` fraction of sessions by start
is never trained on), and each command of a held-out session with at least 3
commands is predicted from its prefix (at least one command; a failed command
marked, as the learner marks it): a hit when it is in the top 3. `top3` predicts
as `/workflows/next?session_id=` does, the session cache also reading the
commands the same session_id ran before (the learner keeps them);
`top3_prefix_only` knows the workflow session's prefix only. Reported beside
them: the model without failure marks, without the session cache, with order 1
to 5, a frequency baseline (the 3 most common commands), and the stream at other
noise rates. Core throughput: events per CPU second (process time, so that a
shared, busy machine does not count other processes' time) through
`WorkflowLearner.add` (events built beforehand), through `add_raw` (validation
included), and through `add` with `tick` once a simulated second (closing,
mining and training included).

Results (3000 tasks, 12 developers; 2,900 workflow sessions, 2,700 learned, 23
commands on average, 76,000 events; 12% of the commands are noise at the default
noise rate 0.10): top-3 accuracy 0.818, 0.818 and 0.814 on seeds 1, 2 and 3;
from the prefix only 0.807, 0.808, 0.806. Commands after real ones are predicted
at about 0.88, noise commands (random by construction) at under 0.2. References
on seed 1: without failure marks 0.794, without the session cache 0.782; order 1
(no context) 0.566, order 2 0.793, order 3 0.817, order 5 0.816; the 3 most
frequent commands 0.550; top-1 0.482. Other noise rates: 0.00 → 0.888, 0.05 →
0.847, 0.20 → 0.755, 0.30 → 0.710. Throughput on the shared 2-core machine: `add`
about 900,000 events per CPU second, `add_raw` 250,000, with ticks and learning
about 130,000.
"""

import argparse
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from server.workflows import Event, NextCommandModel, RunGrouper, WorkflowRun
from server.workflows.learner import WorkflowConfig, WorkflowLearner

Step = tuple[str, dict[str, Any], float]
"""(event_type, metadata, seconds it takes)."""
StreamItem = tuple[str, dict[str, Any]]
"""(session_id, event dict as POST /events takes it)."""

MINUTE = 60.0
DAY = 86_400.0
EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@dataclass(frozen=True, slots=True)
class StreamParams:
    developers: int = 12
    noise_rate: float = 0.10
    test_fail_first: float = 0.45
    test_fail_retry: float = 0.35
    max_test_attempts: int = 5
    quick_look_rate: float = 0.10
    interruption_rate: float = 0.01
    back_to_back: float = 0.25


@dataclass(frozen=True, slots=True)
class Toolchain:
    test: tuple[str, ...]
    build: tuple[str, ...]
    lint: tuple[str, ...]
    install: tuple[str, ...]
    build_rate: float
    files: tuple[str, ...]


TOOLCHAINS = {
    "python": Toolchain(
        test=("pytest", "pytest -x", "pytest -q tests/", "python -m pytest -k api"),
        build=("python -m build",),
        lint=("ruff check .", "mypy src"),
        install=("pip install -e .", "uv sync"),
        build_rate=0.03,
        files=("src/app/api.py", "src/app/models.py", "tests/test_api.py", "src/app/cli.py"),
    ),
    "node": Toolchain(
        test=("npm test", "npx jest", "npm test -- --watch=false"),
        build=("npm run build",),
        lint=("npx eslint .", "npm run lint"),
        install=("npm install", "npm ci"),
        build_rate=0.3,
        files=("src/index.ts", "src/routes.ts", "src/db.ts", "test/routes.test.ts"),
    ),
    "go": Toolchain(
        test=("go test ./...", "go test -run TestHandler ./pkg/..."),
        build=("go build ./...",),
        lint=("go vet ./...", "golangci-lint run"),
        install=("go mod tidy",),
        build_rate=0.5,
        files=("cmd/server/main.go", "pkg/api/handler.go", "pkg/api/handler_test.go"),
    ),
    "rust": Toolchain(
        test=("cargo test", "cargo test -- --nocapture"),
        build=("cargo build", "cargo build --release"),
        lint=("cargo clippy",),
        install=("cargo update",),
        build_rate=0.5,
        files=("src/main.rs", "src/lib.rs", "src/parser.rs", "tests/parse.rs"),
    ),
}

NOISE = (
    ("ls", 6),
    ("ls -la", 3),
    ("cd src", 3),
    ("cd ..", 2),
    ("cat README.md", 2),
    ("cat Makefile", 1),
    ("grep -rn TODO .", 2),
    ("git log --oneline -5", 2),
    ("git status", 3),
    ("pwd", 1),
    ("clear", 2),
    ("less app.log", 1),
    ("tail -n 50 app.log", 1),
    ("which python", 1),
    ("htop", 1),
)
"""Noise commands and their weights."""

DURATION = {  # median seconds and log-normal sigma of each kind of step
    "edit": (20.0, 0.8),
    "save": (2.0, 0.5),
    "open": (5.0, 0.6),
    "test": (15.0, 0.9),
    "build": (30.0, 0.7),
    "lint": (6.0, 0.6),
    "git": (4.0, 0.6),
    "noise": (3.0, 0.7),
    "think": (8.0, 1.0),
}


@dataclass(slots=True)
class Developer:
    name: str
    chain: Toolchain
    rng: random.Random
    ide: bool
    noise: float
    lint_rate: float
    pull_rate: float
    push_rate: float
    status_habit: float
    test_choice: str
    lint_choice: str
    clock: float = 0.0
    day: int = 0
    restarts: int = 0
    steps: list[tuple[float, str, Step]] = field(default_factory=list)

    def pick(self, preferred: str, options: Sequence[str]) -> str:
        """The developer's habitual spelling, now and then another."""
        return preferred if self.rng.random() < 0.8 else self.rng.choice(options)


def _developer(index: int, params: StreamParams, rng: random.Random) -> Developer:
    chain_name = ("python", "node", "go", "rust", "python", "node")[index % 6]
    chain = TOOLCHAINS[chain_name]
    own = random.Random(rng.random())
    return Developer(
        name=f"dev{index:02d}",
        chain=chain,
        rng=own,
        ide=own.random() < 0.75,
        noise=params.noise_rate * own.uniform(0.5, 1.5),
        lint_rate=own.uniform(0.1, 0.5),
        pull_rate=own.uniform(0.3, 0.8),
        push_rate=own.uniform(0.3, 0.9),
        status_habit=own.uniform(0.1, 0.7),
        test_choice=own.choice(chain.test),
        lint_choice=own.choice(chain.lint),
        clock=EPOCH + 8 * 3600 + own.uniform(0, 2 * 3600),
    )


# -- one task ----------------------------------------------------------------------


class _Task:
    """Builds one task's steps for one developer."""

    def __init__(self, dev: Developer, params: StreamParams) -> None:
        self.dev, self.params, self.rng = dev, params, dev.rng
        self.steps: list[Step] = []

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def duration(self, kind: str) -> float:
        median, sigma = DURATION[kind]
        return median * math.exp(self.rng.gauss(0, sigma))

    def emit(self, event_type: str, metadata: dict[str, Any], kind: str) -> None:
        if self.steps and self.chance(self.dev.noise):
            self._noise()
        self.steps.append((event_type, metadata, self.duration(kind)))

    def _noise(self) -> None:
        line = self.rng.choices([n for n, _ in NOISE], [w for _, w in NOISE])[0]
        self.shell(line, "noise", noisy=False)

    def shell(self, line: str, kind: str, *, ok: bool = True, noisy: bool = True) -> None:
        """A shell command: process_start, then process_end with its exit code."""
        if noisy and self.steps and self.chance(self.dev.noise):
            self._noise()
        self.steps.append(("process_start", {"command": line}, self.duration(kind)))
        self.steps.append(("process_end", {"exit_code": 0 if ok else 1}, 0.2))

    def edit_file(self, create: bool = False) -> None:
        path = self.rng.choice(self.dev.chain.files)
        if create:
            self.emit("file_create", {"path": path}, "open")
        elif self.dev.ide and self.chance(0.7):
            self.emit("file_open", {"path": path}, "open")
        for _ in range(1 + _geometric(self.rng, 0.5)):
            self.emit("code_edit", {"path": path, "lines": self.rng.randint(1, 40)}, "edit")
        self.emit("file_save", {"path": path}, "save")

    def fix(self) -> None:
        if self.chance(0.25):
            self.shell(
                self.rng.choice(("cat app.log", "less app.log", "tail -n 50 app.log")), "noise"
            )
        self.edit_file()

    def checked(self, run: Callable[[bool], None], fail: float, attempts: int) -> bool:
        """Run a check until it passes, fixing in between; False after `attempts` failures."""
        for attempt in range(attempts):
            ok = not self.chance(fail if attempt == 0 else self.params.test_fail_retry)
            run(ok)
            if ok:
                return True
            if attempt + 1 < attempts:
                self.fix()
        return False

    def test(self, ok: bool) -> None:
        line = self.dev.pick(self.dev.test_choice, self.dev.chain.test)
        self.emit("test_run", {"command": line, "passed": ok}, "test")

    def build(self, ok: bool) -> None:
        line = self.rng.choice(self.dev.chain.build)
        self.emit("build_start", {"command": line, "ok": ok}, "build")

    def lint(self, ok: bool) -> None:
        self.shell(self.dev.pick(self.dev.lint_choice, self.dev.chain.lint), "lint", ok=ok)


def task_steps(dev: Developer, params: StreamParams) -> list[Step]:
    """One task of `dev`: a quick look, or a full edit-test-commit workflow."""
    task = _Task(dev, params)
    if task.chance(params.quick_look_rate):
        for _ in range(dev.rng.randint(1, 3)):
            task._noise()
        return task.steps
    _begin(task)
    passed = _work(task)
    (_finish_passed if passed else _give_up)(task)
    return task.steps


def _begin(task: _Task) -> None:
    dev = task.dev
    if dev.ide and task.chance(0.3):
        task.emit("editor_open", {"editor": "vscode"}, "open")
    if task.chance(dev.pull_rate):
        task.emit("git_pull", {"branch": "main"}, "git")
        if task.chance(0.2):
            task.shell(task.rng.choice(dev.chain.install), "build")
    if task.chance(0.25):
        task.shell("git checkout -b feature", "git")


def _work(task: _Task) -> bool:
    cycles = min(6, 1 + _geometric(task.rng, 0.55))
    for cycle in range(cycles):
        task.edit_file(create=task.chance(0.1))
        if task.chance(0.3):
            task.edit_file()
        if task.chance(task.dev.lint_rate):
            task.checked(task.lint, 0.25, 2)
        if task.chance(task.dev.chain.build_rate):
            task.checked(task.build, 0.15, 2)
        last = cycle == cycles - 1
        if (last or task.chance(0.6)) and not _tests_pass(task):
            return False
    return True


def _tests_pass(task: _Task) -> bool:
    p = task.params
    return task.checked(task.test, p.test_fail_first, p.max_test_attempts)


def _finish_passed(task: _Task) -> None:
    if task.chance(task.dev.status_habit):
        task.shell("git status", "git")
    if task.chance(0.4):
        task.shell("git diff", "git")
    if task.chance(0.8):
        task.shell("git add -A", "git")
    task.emit("git_commit", {"branch": "feature"}, "git")
    if task.chance(task.dev.push_rate):
        task.emit("git_push", {"branch": "feature"}, "git")
    if task.dev.ide and task.chance(0.1):
        task.emit("editor_close", {}, "open")


def _give_up(task: _Task) -> None:
    ending = task.rng.choices(("stash", "checkout", "delete", "none"), (4, 3, 3, 2))[0]
    if ending == "stash":
        task.shell("git stash", "git")
    elif ending == "checkout":
        task.shell("git checkout -- .", "git")
    elif ending == "delete":
        task.emit("file_delete", {"path": task.rng.choice(task.dev.chain.files)}, "git")


def _geometric(rng: random.Random, p: float) -> int:
    """Failures before the first success, each trial succeeding with p."""
    n = 0
    while rng.random() >= p:
        n += 1
    return n


# -- the stream --------------------------------------------------------------------


def generate(
    seed: int, sessions: int = 3000, params: StreamParams | None = None
) -> list[StreamItem]:
    """`sessions` tasks spread over the team, as one stream sorted by time."""
    params = params or StreamParams()
    rng = random.Random(seed)
    team = [_developer(i, params, rng) for i in range(params.developers)]
    items: list[tuple[float, StreamItem]] = []
    for n in range(sessions):
        dev = team[n % len(team)] if n < len(team) else rng.choice(team)
        items.extend(_place(dev, task_steps(dev, params), params))
    items.sort(key=lambda item: item[0])
    return [item for _, item in items]


def _place(
    dev: Developer, steps: list[Step], params: StreamParams
) -> list[tuple[float, StreamItem]]:
    """Stamp one task's steps on the developer's clock, then move it past a break."""
    placed = []
    for event_type, metadata, seconds in steps:
        session_id = f"{dev.name}-d{dev.day}-{dev.restarts}"
        event = {"session_id": session_id, "event_type": event_type, "timestamp": dev.clock}
        placed.append((dev.clock, (session_id, event | {"metadata": metadata})))
        # a process ends when it is done; a developer thinks only after it
        dev.clock += seconds + (0.0 if event_type == "process_start" else _think(dev, params))
    _take_break(dev, params)
    return placed


def _think(dev: Developer, params: StreamParams) -> float:
    if dev.rng.random() < params.interruption_rate:
        return dev.rng.uniform(5 * MINUTE, 30 * MINUTE)
    median, sigma = DURATION["think"]
    return median * math.exp(dev.rng.gauss(0, sigma))


def _take_break(dev: Developer, params: StreamParams) -> None:
    rng = dev.rng
    if rng.random() < params.back_to_back:
        dev.clock += rng.uniform(30, 4 * MINUTE)
    else:
        dev.clock += rng.uniform(10 * MINUTE, 90 * MINUTE)
        dev.restarts += rng.random() < 0.3
    day_start = EPOCH + dev.day * DAY + 8 * 3600
    if dev.clock > day_start + 10 * 3600:  # an 8-hour day plus breaks: go home
        dev.day += 1
        dev.restarts = 0
        dev.clock = EPOCH + dev.day * DAY + 8 * 3600 + rng.uniform(0, 2 * 3600)


# -- grouping, splitting, scoring --------------------------------------------------


def events_of(stream: Iterable[StreamItem], tenant: str = "bench") -> list[Event]:
    return [Event(tenant, sid, e["event_type"], e["timestamp"], e["metadata"]) for sid, e in stream]


def sessions_of(stream: Iterable[StreamItem], idle_s: float = 300.0) -> list[WorkflowRun]:
    """The workflow sessions the server would close, by start time (event time as
    the clock, `close_idle` once a simulated second)."""
    grouper = RunGrouper(idle_s)
    closed: list[WorkflowRun] = []
    last_tick = -math.inf
    for event in events_of(stream):
        if event.timestamp - last_tick >= 1.0:
            closed.extend(grouper.close_idle(event.timestamp))
            last_tick = event.timestamp
        grouper.add(event)
    closed.extend(grouper.close_all())
    return sorted(closed, key=lambda s: s.start)


def split_held_out(
    sessions: Sequence[WorkflowRun], fraction: float = 0.2
) -> tuple[list[WorkflowRun], list[WorkflowRun]]:
    """(train, held out): the held-out sessions are the last `fraction` by start,
    so the model is judged on sessions that began after all it learned from."""
    ordered = sorted(sessions, key=lambda s: s.start)
    cut = round(len(ordered) * (1 - fraction))
    return ordered[:cut], ordered[cut:]


class Predictor(Protocol):
    def predict(
        self, after: Sequence[str], k: int = 3, history: Sequence[str] = ()
    ) -> list[tuple[str, float]]: ...


def train(
    sessions: Iterable[WorkflowRun], min_commands: int = 3, *, marks: bool = True, **model: Any
) -> NextCommandModel:
    """A model (the learner's defaults unless `model` says otherwise) trained as the
    learner trains it: on sessions with ≥ min_commands, failed commands marked in
    the contexts unless `marks` is false."""
    config = WorkflowConfig()
    params = {"order": config.order, "session_boost": config.session_boost} | model
    predictor = NextCommandModel(**params)
    for session in sessions:
        if len(session.commands) >= min_commands:
            predictor.learn(session.contexts if marks else session.commands)
    return predictor


def next_command_top3_accuracy(
    predictor: Predictor,
    held_out: Iterable[WorkflowRun],
    *,
    k: int = 3,
    min_commands: int = 3,
    marks: bool = True,
    before: Iterable[WorkflowRun] | None = None,
) -> float:
    """Share of next commands in the top k predicted from their prefix, over every
    command after the first of every held-out session with ≥ min_commands. With
    `before` (the sessions before the held-out ones), the cache also reads the
    session_id's history as the learner keeps it; without, the prefix only."""
    history = _Histories(before) if before is not None else None
    hits = total = 0
    for session in held_out:
        tokens, commands = (session.contexts if marks else session.commands), session.commands
        past = history.of(session) if history is not None else []
        if len(commands) >= min_commands:
            for i in range(1, len(commands)):
                predicted = {c for c, _ in predictor.predict(tokens[:i], k, past)}
                hits += commands[i] in predicted
                total += 1
        if history is not None:
            history.add(session)
    return hits / total if total else 0.0


class _Histories:
    """The last commands per session_id, as `WorkflowLearner` keeps them."""

    def __init__(self, sessions: Iterable[WorkflowRun]) -> None:
        self.window = WorkflowConfig().session_window
        self.commands: dict[str, list[str]] = {}
        for session in sessions:
            self.add(session)

    def of(self, session: WorkflowRun) -> list[str]:
        return self.commands.get(session.session_id, [])

    def add(self, session: WorkflowRun) -> None:
        mine = self.commands.get(session.session_id, [])
        self.commands[session.session_id] = [*mine, *session.commands][-self.window :]


class FrequencyBaseline:
    """The k most common commands, whatever came before."""

    def __init__(self, sessions: Iterable[WorkflowRun]) -> None:
        self.counts = Counter(c for s in sessions for c in s.commands)

    def predict(
        self, after: Sequence[str], k: int = 3, history: Sequence[str] = ()
    ) -> list[tuple[str, float]]:
        total = sum(self.counts.values())
        return [(c, n / total) for c, n in self.counts.most_common(k)]


# -- report ------------------------------------------------------------------------


def accuracy_at(seed: int, sessions: int, params: StreamParams, **model: Any) -> dict[str, Any]:
    """Top-3 accuracy on the held-out sessions of one stream, beside references."""
    grouped = sessions_of(generate(seed, sessions, params))
    training, held_out = split_held_out(grouped)
    learned = [s for s in grouped if len(s.commands) >= 3]
    predictor = train(training, **model)

    def score(found: float) -> float:
        return round(found, 3)

    no_cache = train(training, **model | {"session_boost": 0})
    return {
        "noise_rate": params.noise_rate,
        "sessions": len(grouped),
        "learned": len(learned),
        "mean_commands": round(sum(len(s.commands) for s in learned) / max(1, len(learned)), 1),
        "top3": score(next_command_top3_accuracy(predictor, held_out, before=training)),
        "top1": score(next_command_top3_accuracy(predictor, held_out, k=1, before=training)),
        "top3_prefix_only": score(next_command_top3_accuracy(predictor, held_out)),
        "top3_no_marks": score(
            next_command_top3_accuracy(train(training, marks=False, **model), held_out, marks=False)
        ),
        "top3_no_cache": score(next_command_top3_accuracy(no_cache, held_out)),
        "baseline_top3": score(next_command_top3_accuracy(FrequencyBaseline(training), held_out)),
    }


def throughput(stream: Sequence[StreamItem], repeat: int = 3) -> dict[str, float]:
    """Events/s through the learner's per-event path, best of `repeat`."""
    events = events_of(stream)
    raws = [e for _, e in stream]
    best_add = best_raw = 0.0
    for _ in range(repeat):
        best_add = max(best_add, _rate(events, lambda learner, e: learner.add(e)))
        best_raw = max(best_raw, _rate(raws, lambda learner, r: learner.add_raw("bench", r)))
    return {"add_events_per_s": best_add, "add_raw_events_per_s": best_raw}


def _rate(items: Sequence[Any], feed: Callable[[WorkflowLearner, Any], object]) -> float:
    learner = WorkflowLearner(WorkflowConfig())
    start = time.process_time()
    for item in items:
        feed(learner, item)
    return len(items) / (time.process_time() - start)


def tick_cost(stream: Sequence[StreamItem]) -> dict[str, float]:
    """The whole stream through add + tick once a simulated second, as the service
    would run it: events/s including idle closes, mining and model training."""
    learner = WorkflowLearner(WorkflowConfig())
    events = events_of(stream)
    start, last_tick = time.process_time(), -math.inf
    for event in events:
        if event.timestamp - last_tick >= 1.0:
            learner.tick(event.timestamp)
            last_tick = event.timestamp
        learner.add(event)
    learner.flush()
    elapsed = time.process_time() - start
    stats = learner.stats("bench")
    return {
        "events_per_s_with_learning": len(events) / elapsed,
        "sessions_learned": stats.sessions_learned,
        "patterns_learned": stats.patterns_learned,
        "patterns_tracked": stats.patterns_tracked,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--noise", type=float, default=StreamParams().noise_rate)
    parser.add_argument("--quick", action="store_true", help="accuracy at --noise only")
    args = parser.parse_args()
    params = replace(StreamParams(), noise_rate=args.noise)
    print(f"noise {params.noise_rate:.2f}: {accuracy_at(args.seed, args.sessions, params)}")
    if not args.quick:
        for order in (1, 2, 3, 5):
            found = accuracy_at(args.seed, args.sessions, params, order=order)
            print(f"  order {order}: top-3 {found['top3']}")
        for noise in (0.0, 0.05, 0.2, 0.3):
            found = accuracy_at(args.seed, args.sessions, replace(params, noise_rate=noise))
            print(f"noise {noise:.2f}: {found}")
    stream = generate(args.seed, args.sessions, params)
    print(f"events: {len(stream)}; {throughput(stream)}; {tick_cost(stream)}")


if __name__ == "__main__":
    main()
