"""Strategy ranker: regret of `server.strategy.bandit.StrategyRanker` on the bandit
problems of the literature, played through its own rank/update (one "global" level).

    python -m bench.strategy [--quick] [--seed 1] [--jobs 2]

"kaizen" is `BanditParams()`, the server's defaults (drift handling on), in all
three set-ups.

(a) Stationary (Chapelle & Li, 2011, "An empirical evaluation of Thompson
    sampling"): K = 10 Bernoulli arms, one at 0.5 and nine at 0.4; 100 runs
    of T = 10,000. Reported: mean regret at T with its standard error, and the slope
    b of mean regret against ln t, fitted by least squares over 25 log-spaced t in
    [1000, 10000], beside the Lai & Robbins (1985) constant Σ Δᵢ/kl(μᵢ, μ*) = 44.7:
    no consistent policy has a smaller regret/ln T asymptotically, and Thompson
    sampling attains it (Kaufmann, Korda & Munos, 2012). UCB1 (Auer,
    Cesa-Bianchi & Fischer, 2002) plays the same reward draws: each run's table of
    rewards X[t][k] is drawn before either policy plays.
(b) Piecewise stationary (Besson, Kaufmann, Maillard & Seznec, 2020, problems 1 and
    2): K = 3, five equal segments, T = 20,000, 100 runs; regret against the best
    mean of each step. Kaizen's default settings (drift handling on) and plain
    Thompson sampling (no discount, no detector) play the same draws.
(c) Scarce outcomes: 10 arms with means drawn from U[0, 1], T = 500, 1,000
    instances; Kaizen and UCB1 on the same draws.

Regret is the pseudo-regret Σₜ (μ*ₜ − μ_{Aₜ}), as in both papers. Targets: (a)
regret ≤ 180 and a slope within 1.2× of 44.7; (b) ≤ 300 on both problems; (c) ≤ 30.
Writes bench/results/strategy.json; `--quick` plays a fifth of the runs. Runs are
spread over `--jobs` processes; every run has its own seeds, so the figures do not
depend on how many.
"""

import argparse
import math
import os
import random
import statistics
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import table, write_results
from server.strategy.bandit import BanditParams, StrategyRanker
from server.strategy.changepoint import bernoulli_kl

LEVELS = ("global",)
KAIZEN = BanditParams()
PLAIN_TS = BanditParams(discount=1.0, detector=None)
STATIONARY_MEANS = (0.5,) + (0.4,) * 9
PROBLEMS = {
    "problem1": (
        (0.9, 0.5, 0.3),
        (0.9, 0.2, 0.3),
        (0.1, 0.2, 0.3),
        (0.1, 0.7, 0.3),
        (0.1, 0.7, 0.5),
    ),
    "problem2": (
        (0.9, 0.5, 0.4),
        (0.7, 0.4, 0.5),
        (0.5, 0.3, 0.6),
        (0.3, 0.2, 0.7),
        (0.1, 0.1, 0.8),
    ),
}
FIT_RANGE = (1_000, 10_000)
FIT_POINTS = 25
TARGETS = {"stationary": 180.0, "slope_ratio": 1.2, "piecewise": 300.0, "scarce": 30.0}
COLUMNS = ["set-up", "policy", "runs", "regret", "± se", "slope/ln t", "restarts/run"]

Segments = tuple[tuple[float, ...], ...]
"""Arm means per segment; segments split the horizon evenly."""
Policies = tuple[tuple[str, BanditParams | None], ...]
"""(name, the ranker's params) per policy; None plays UCB1."""


@dataclass(frozen=True)
class Sizes:
    stationary_runs: int = 100
    stationary_horizon: int = 10_000
    piecewise_runs: int = 100
    piecewise_horizon: int = 20_000
    scarce_instances: int = 1_000
    scarce_horizon: int = 500
    scarce_arms: int = 10


QUICK = Sizes(stationary_runs=20, piecewise_runs=20, scarce_instances=200)


@dataclass(frozen=True)
class Run:
    """One run: one reward table, played by every policy."""

    seed: str
    index: int
    segments: Segments
    horizon: int
    policies: Policies
    steps: tuple[int, ...] = ()
    """Steps (from 1) at which to keep the regret, besides the horizon."""


@dataclass(frozen=True)
class Outcome:
    regret: list[float]
    """At each of the run's `steps`, then at the horizon."""
    restarts: int


# -- policies -------------------------------------------------------------------------


def play_kaizen(
    params: BanditParams, rewards: list[list[float]], rng: random.Random
) -> tuple[list[int], int]:
    """The ranker's own loop: play the top of `rank`, feed the reward to `update`.
    Returns the arms played and the restarts (detected changes)."""
    ranker = StrategyRanker(params)
    names = [f"arm{k}" for k in range(len(rewards[0]))]
    index = {name: k for k, name in enumerate(names)}
    chosen, restarts = [], 0
    for row in rewards:
        arm = index[ranker.rank(LEVELS, names, rng)[0].arm]
        restarts += ranker.update(LEVELS, names[arm], row[arm])
        chosen.append(arm)
    return chosen, restarts


def play_ucb1(rewards: list[list[float]]) -> list[int]:
    """UCB1: each arm once, then argmax x̄ₖ + √(2 ln t / nₖ), t the plays so far."""
    arms = len(rewards[0])
    pulls, sums, chosen = [0] * arms, [0.0] * arms, []
    for t, row in enumerate(rewards):
        arm = t if t < arms else _ucb_choice(pulls, sums, t)
        pulls[arm] += 1
        sums[arm] += row[arm]
        chosen.append(arm)
    return chosen


def _ucb_choice(pulls: list[int], sums: list[float], t: int) -> int:
    width = 2.0 * math.log(t)
    index = [s / n + math.sqrt(width / n) for s, n in zip(sums, pulls, strict=True)]
    return index.index(max(index))


# -- runs -----------------------------------------------------------------------------


def play(run: Run) -> dict[str, Outcome]:
    means = per_step(run.segments, run.horizon)
    rewards = draw_rewards(means, random.Random(f"{run.seed}:rewards:{run.index}"))
    outcomes = {}
    for name, params in run.policies:
        rng = random.Random(f"{run.seed}:{name}:{run.index}")
        chosen, restarts = play_kaizen(params, rewards, rng) if params else (play_ucb1(rewards), 0)
        outcomes[name] = Outcome(regret_at(means, chosen, run.steps), restarts)
    return outcomes


def per_step(segments: Segments, horizon: int) -> list[tuple[float, ...]]:
    length = horizon // len(segments)
    return [segments[min(t // length, len(segments) - 1)] for t in range(horizon)]


def draw_rewards(means: Sequence[Sequence[float]], rng: random.Random) -> list[list[float]]:
    """Bernoulli rewards for every (step, arm), drawn before any policy plays."""
    return [[1.0 if rng.random() < mu else 0.0 for mu in row] for row in means]


def regret_at(
    means: Sequence[Sequence[float]], chosen: list[int], steps: Sequence[int]
) -> list[float]:
    """Cumulative pseudo-regret after each of `steps` and after the last step; whole
    curves for 100 runs of 20,000 steps would take gigabytes."""
    wanted, total, out = set(steps), 0.0, []
    for t, (row, arm) in enumerate(zip(means, chosen, strict=True), start=1):
        total += max(row) - row[arm]
        if t in wanted:
            out.append(total)
    return [*out, total]


class Runner:
    """Plays runs in `jobs` processes (in this one when jobs = 1)."""

    def __init__(self, jobs: int) -> None:
        self._pool = ProcessPoolExecutor(jobs) if jobs > 1 else None

    def play(self, runs: list[Run]) -> dict[str, list[Outcome]]:
        """Per policy, the outcomes of the runs in order."""
        played = self._pool.map(play, runs, chunksize=4) if self._pool else map(play, runs)
        by_policy: dict[str, list[Outcome]] = {}
        for outcomes in played:
            for name, outcome in outcomes.items():
                by_policy.setdefault(name, []).append(outcome)
        return by_policy

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown()


# -- statistics -----------------------------------------------------------------------


def summary(outcomes: list[Outcome]) -> dict[str, float]:
    finals = [outcome.regret[-1] for outcome in outcomes]
    stderr = statistics.stdev(finals) / math.sqrt(len(finals)) if len(finals) > 1 else 0.0
    restarts = statistics.fmean(outcome.restarts for outcome in outcomes)
    return {"regret": statistics.fmean(finals), "stderr": stderr, "restarts_per_run": restarts}


def fit_steps() -> tuple[int, ...]:
    """FIT_POINTS steps spaced evenly in ln t over FIT_RANGE."""
    lo, hi = (math.log(t) for t in FIT_RANGE)
    points = (round(math.exp(lo + (hi - lo) * i / (FIT_POINTS - 1))) for i in range(FIT_POINTS))
    return tuple(sorted(set(points)))


def log_slope(outcomes: list[Outcome], steps: Sequence[int]) -> tuple[float, dict[str, float]]:
    """Least-squares slope of mean regret against ln t at `steps`; the means."""
    means = [statistics.fmean(o.regret[i] for o in outcomes) for i in range(len(steps))]
    slope = statistics.linear_regression([math.log(t) for t in steps], means)[0]
    return slope, {str(t): mean for t, mean in zip(steps, means, strict=True)}


def lai_robbins(means: Sequence[float]) -> float:
    best = max(means)
    return sum((best - mu) / bernoulli_kl(mu, best) for mu in means if mu < best)


# -- set-ups --------------------------------------------------------------------------


def stationary(sizes: Sizes, seed: int, runner: Runner) -> dict[str, Any]:
    steps = fit_steps()
    policies: Policies = (("kaizen", KAIZEN), ("ucb1", None))
    segments = (STATIONARY_MEANS,)
    runs = [
        Run(f"{seed}:a", i, segments, sizes.stationary_horizon, policies, steps)
        for i in range(sizes.stationary_runs)
    ]
    bound = lai_robbins(STATIONARY_MEANS)
    rows: dict[str, Any] = {}
    for name, outcomes in runner.play(runs).items():
        slope, regret_at_t = log_slope(outcomes, steps)
        rows[name] = summary(outcomes) | {"settings": name, "slope": slope}
        rows[name] |= {"slope_ratio": slope / bound, "regret_at": regret_at_t}
    return {
        "arms": list(STATIONARY_MEANS),
        "runs": sizes.stationary_runs,
        "horizon": sizes.stationary_horizon,
        "fit": f"least squares of mean regret on ln t at {len(steps)} log-spaced t in {FIT_RANGE}",
        "lai_robbins": bound,
        **rows,
    }


def piecewise(sizes: Sizes, seed: int, runner: Runner) -> dict[str, Any]:
    """Both problems: Kaizen's defaults against plain Thompson sampling."""
    policies: Policies = (("kaizen", KAIZEN), ("plain_ts", PLAIN_TS))
    out: dict[str, Any] = {"runs": sizes.piecewise_runs, "horizon": sizes.piecewise_horizon}
    for problem, segments in PROBLEMS.items():
        runs = [
            Run(f"{seed}:b:{problem}", i, segments, sizes.piecewise_horizon, policies)
            for i in range(sizes.piecewise_runs)
        ]
        rows = {name: summary(o) | {"settings": name} for name, o in runner.play(runs).items()}
        out[problem] = {"segments": [list(segment) for segment in segments], **rows}
    return out


def scarce(sizes: Sizes, seed: int, runner: Runner) -> dict[str, Any]:
    policies: Policies = (("kaizen", KAIZEN), ("ucb1", None))
    runs = [
        Run(
            f"{seed}:c",
            i,
            (uniform_means(sizes.scarce_arms, f"{seed}:c:{i}"),),
            sizes.scarce_horizon,
            policies,
        )
        for i in range(sizes.scarce_instances)
    ]
    rows = {name: summary(o) | {"settings": name} for name, o in runner.play(runs).items()}
    return {
        "arms": sizes.scarce_arms,
        "instances": sizes.scarce_instances,
        "horizon": sizes.scarce_horizon,
        **rows,
    }


def uniform_means(arms: int, seed: str) -> tuple[float, ...]:
    rng = random.Random(f"{seed}:means")
    return tuple(rng.random() for _ in range(arms))


# -- report ---------------------------------------------------------------------------


def met(results: dict[str, Any]) -> dict[str, bool]:
    a, b, c = results["stationary"]["kaizen"], results["piecewise"], results["scarce"]["kaizen"]
    ratio = a["slope_ratio"]
    return {
        "stationary_regret": a["regret"] <= TARGETS["stationary"],
        "stationary_slope": 1 / TARGETS["slope_ratio"] <= ratio <= TARGETS["slope_ratio"],
        "piecewise": all(b[p]["kaizen"]["regret"] <= TARGETS["piecewise"] for p in PROBLEMS),
        "scarce": c["regret"] <= TARGETS["scarce"],
    }


def rows(results: dict[str, Any]) -> Iterator[dict[str, Any]]:
    a, b, c = results["stationary"], results["piecewise"], results["scarce"]
    for name in ("kaizen", "ucb1"):
        yield _row("(a) Chapelle & Li", name, a[name], a["runs"])
    for problem in PROBLEMS:
        for name in ("kaizen", "plain_ts"):
            yield _row(f"(b) {problem}", name, b[problem][name], b["runs"])
    for name in ("kaizen", "ucb1"):
        yield _row("(c) scarce", name, c[name], c["instances"])


def _row(setup: str, policy: str, row: dict[str, Any], runs: int) -> dict[str, Any]:
    return {
        "set-up": setup,
        "policy": policy,
        "runs": runs,
        "regret": row["regret"],
        "± se": row["stderr"],
        "slope/ln t": row.get("slope", ""),
        "restarts/run": row["restarts_per_run"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the runs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="processes playing runs")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    runner = Runner(args.jobs)
    results: dict[str, Any] = {}
    runtime: dict[str, float] = {}
    for name, setup in (("stationary", stationary), ("piecewise", piecewise), ("scarce", scarce)):
        started = time.perf_counter()
        results[name] = setup(sizes, args.seed, runner)
        runtime[name] = time.perf_counter() - started
        print(f"{name}: {runtime[name]:.0f} s", flush=True)
    runner.close()
    runtime["total"] = sum(runtime.values())
    print(table(list(rows(results)), COLUMNS))
    print(f"Lai-Robbins constant {results['stationary']['lai_robbins']:.1f}; met: {met(results)}")
    payload = {
        "seed": args.seed,
        "quick": args.quick,
        "jobs": args.jobs,
        "sizes": asdict(sizes),
        "settings": {"kaizen": asdict(KAIZEN), "plain_ts": asdict(PLAIN_TS), "ucb1": "UCB1"},
        "targets": TARGETS,
        "met": met(results),
        "runtime_s": runtime,
        "cpu_s": cpu_seconds(),
        **results,
    }
    print(f"wrote {write_results('strategy', payload)}")


def cpu_seconds() -> float:
    """User + system time of this process and its finished workers: the work done,
    whatever else the machine was running."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


if __name__ == "__main__":
    main()
