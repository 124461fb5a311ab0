"""Rarity of an agent interaction against its agent type's recent behaviour.

"new tool used often becomes normal; old tool forgotten". Every tally
below lives in the sliding window of `window.py`: a decayed count c is
Σ_b weight(b)·count(b), so behaviour that recurs builds up evidence and behaviour
that stops decays and is forgotten once its buckets leave the window.

An interaction is an `Observation`: action types in order, completion time t and
error count e. A `BehaviourModel` keeps, per tenant and agent type,

    c_a    decayed number of observations that contain action a
    c_ab   decayed number of observations that contain the pair a → b
    n, Σx_dur, Σx_dur², Σx_err, Σx_err²   decayed totals (x_dur = ln(1 + t), x_err = ln(1 + e))

Each observation is scored against the model *before* it is added, by four rarities
r_i in [0, 1]:

novel_action (frequency-based novelty detection; Markou & Singh, "Novelty
detection: a review", Signal Processing 83, 2003), with τ = familiarity:

    r_novel = max over distinct actions a of exp(−c_a / τ)

    exp(−c/τ) is 1 for a never-seen action, 0.37 at c = τ and 0.04 at c = 10·τ: a
    new tool is novel at first and becomes normal as it keeps being used.

unusual_sequence (pairs of consecutive calls as the "sense of self" of a program;
Forrest, Hofmeyr, Somayaji & Longstaff, IEEE S&P 1996):

    r_seq = max over distinct consecutive pairs (a, b) with c_a ≥ τ and c_b ≥ τ of exp(−c_ab / τ)

    Only pairs of two familiar actions count, so r_seq measures familiar actions in
    an unfamiliar order; an unfamiliar action is already r_novel's business. The
    sequence is read with a start marker: (start, a_1), (a_1, a_2), ..., and the
    marker counts as familiar. We keep it because "starts with TEST" is an unusual
    order when every routine starts with EDIT, and it is the only pair a
    one-action observation has. The marker is the empty string, never an action.

duration (z-score of the log completion time; task and service times are close to
log-normal, Brown et al., "Statistical analysis of a telephone call center", JASA
100, 2005). With weighted moments over the decayed totals:

    x = ln(1 + t),  μ = Σwx / Σw,  var = max(0, Σwx² / Σw − μ²)
    sd = max(sqrt(var), 0.1),  z = (x − μ) / sd
    r_dur = clamp((|z| − z_floor) / z_span, 0, 1)

    With z_floor = 2 and z_span = 2 the rarity starts beyond two standard deviations
    (about 5% of a normal population) and is full at four. The floor on sd keeps a
    perfectly steady routine from making every small wobble an anomaly.

The "usual" value in a reason's detail is exp(μ) − 1, the time (or error count)
whose log is the window's mean.

errors (the same on x = ln(1 + e) with sd floor 0.25; only MORE errors than usual is
rare, a better run is not):

    r_err = clamp((max(z, 0) − z_floor) / z_span, 0, 1)

The rarity combines the reasons with a noisy-OR (Pearl, *Probabilistic Reasoning in
Intelligent Systems*, 1988, §4.3.2), as if each reason alone could make the
interaction rare:

    rarity = 1 − Π_i (1 − r_i)

Reasons below NEGLIGIBLE (1%) are dropped before combining, so a familiar action
seen 30 times (exp(−10) ≈ 0.00005) does not clutter every explanation; the rarity is
exactly the noisy-OR of the reasons it reports. While the decayed history n is below
min_history (or 0) the model is not warmed up and every rarity is 0.

Memory is bounded: at most MAX_ACTIONS action keys and MAX_PAIRS pair keys, each
with at most `window.buckets` live buckets. Adding a new key to a full table first
drops the key with the smallest decayed count at the new observation's time (the
least familiar behaviour, which is the closest to forgotten anyway; ties drop the
oldest key). `prune` forgets buckets that left the window and then empty keys.
"""

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from server.core.window import Buckets, Tally, Weights, Window, decayed, weights_at
from server.core.window import add_at as add_to_bucket
from server.core.window import prune as prune_buckets

NOVEL_ACTION = "novel_action"
UNUSUAL_SEQUENCE = "unusual_sequence"
DURATION = "duration"
ERRORS = "errors"

NEGLIGIBLE = 0.01
"""Reasons scoring below this are not reported (nor combined)."""
DURATION_SIGMA_FLOOR = 0.1
ERRORS_SIGMA_FLOOR = 0.25
MAX_ACTIONS = 1024
MAX_PAIRS = 4096
START = ""
"""The start marker that precedes the first action of every sequence."""
STATE_VERSION = 1

TOTALS = 5
"""Width of the totals tally: n, Σx_dur, Σx_dur², Σx_err, Σx_err²."""

Pair = tuple[str, str]
K = TypeVar("K", str, Pair)


@dataclass(frozen=True, slots=True)
class Observation:
    actions: tuple[str, ...]
    completion_time: float
    errors: int
    at: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.completion_time) and self.completion_time >= 0):
            raise ValueError(f"completion_time must be finite and >= 0, got {self.completion_time}")
        if self.errors < 0:
            raise ValueError(f"errors must be >= 0, got {self.errors}")
        if not math.isfinite(self.at):
            raise ValueError(f"at must be finite, got {self.at}")


@dataclass(frozen=True, slots=True)
class Reason:
    kind: str
    detail: str
    score: float


@dataclass(frozen=True, slots=True)
class Rarity:
    score: float
    reasons: tuple[Reason, ...]
    warmed_up: bool


NOT_WARMED_UP = Rarity(0.0, (), False)
NOT_RARE = Rarity(0.0, (), True)
"""A warmed-up model's verdict when no reason reaches NEGLIGIBLE: the noisy-OR of
nothing is 0."""


def noisy_or(scores: Iterable[float]) -> float:
    """1 − Π(1 − r): the chance that at least one independent cause fires. Never
    below the largest r, which 1 − (1 − r) can miss by one rounding."""
    values = list(scores)
    combined = 1.0 - math.prod(1.0 - r for r in values)
    return min(1.0, max(0.0, combined, *values))


def clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def pairs_of(actions: Sequence[str]) -> list[Pair]:
    """Distinct consecutive pairs, the first one from the start marker."""
    return list(dict.fromkeys(zip((START, *actions), actions, strict=False)))


@functools.lru_cache(maxsize=1024)
def shape_of(actions: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[Pair, ...]]:
    """The distinct actions and the distinct pairs of a sequence, each in order of
    first occurrence. Cached because an agent type repeats a few routines, so nearly
    every sequence scored and added was seen before."""
    return tuple(dict.fromkeys(actions)), tuple(pairs_of(actions))


def least(counts: Sequence[float]) -> int:
    """Index of the first smallest count: what min() picks, ties to the first."""
    best = 0
    for i in range(1, len(counts)):
        if counts[i] < counts[best]:
            best = i
    return best


def z_score(x: float, n: float, total: float, squares: float, sigma_floor: float) -> float:
    """(x − μ)/sd with μ and sd the weighted moments of the decayed sums."""
    mean = total / n
    sigma = math.sqrt(max(0.0, squares / n - mean * mean))
    return (x - mean) / max(sigma, sigma_floor)


def by_score(reason: Reason) -> float:
    return reason.score


def describe_pair(pair: Pair) -> str:
    return " → ".join(a or "start" for a in pair)


def buckets_to_state(buckets: Buckets) -> dict[str, list[float]]:
    return {str(b): list(tally) for b, tally in buckets.items()}


def buckets_from_state(state: dict[str, Any]) -> Buckets:
    return {int(b): [float(v) for v in tally] for b, tally in state.items()}


def evict_least_familiar(tallies: dict[K, Buckets], window: Window, now: float) -> None:
    weights = weights_at(window, now)
    del tallies[min(tallies, key=lambda k: weights.count(tallies[k]))]


def prune_keys(tallies: dict[K, Buckets], window: Window, now: float) -> None:
    for buckets in tallies.values():
        prune_buckets(buckets, window, now)
    for key in [k for k, buckets in tallies.items() if not buckets]:
        del tallies[key]


class BehaviourModel:
    """One agent type's recent behaviour within one tenant."""

    def __init__(
        self,
        window: Window,
        *,
        familiarity: float = 3.0,
        min_history: float = 20.0,
        z_floor: float = 2.0,
        z_span: float = 2.0,
    ) -> None:
        if familiarity <= 0 or z_span <= 0 or z_floor < 0 or min_history < 0:
            raise ValueError("need familiarity > 0, z_span > 0, z_floor >= 0, min_history >= 0")
        self.window = window
        self.familiarity = familiarity
        self.min_history = min_history
        self.z_floor = z_floor
        self.z_span = z_span
        self._totals: Buckets = {}
        self._actions: dict[str, Buckets] = {}
        self._pairs: dict[Pair, Buckets] = {}

    def score(self, obs: Observation, now: float) -> Rarity:
        """Rarity of `obs` against the history so far (call before `add`)."""
        weights = weights_at(self.window, now)
        totals = weights.fold(self._totals, TOTALS)
        if totals[0] <= 0.0 or totals[0] < self.min_history:
            return NOT_WARMED_UP
        found = self._reasons(obs, weights, totals)
        if not found:
            return NOT_RARE
        found.sort(key=by_score, reverse=True)
        return Rarity(noisy_or([r.score for r in found]), tuple(found), True)

    def add(self, obs: Observation) -> None:
        """Count `obs` into the bucket of obs.at."""
        bucket = self.window.bucket(obs.at)
        dur, err = math.log1p(obs.completion_time), math.log1p(obs.errors)
        add_to_bucket(self._totals, bucket, (1.0, dur, dur * dur, err, err * err))
        actions, pairs = shape_of(obs.actions)
        for action in actions:
            self._bump(self._actions, action, bucket, obs.at, MAX_ACTIONS)
        for pair in pairs:
            self._bump(self._pairs, pair, bucket, obs.at, MAX_PAIRS)

    def prune(self, now: float) -> None:
        """Forget buckets that have left the window, then keys left empty."""
        prune_buckets(self._totals, self.window, now)
        prune_keys(self._actions, self.window, now)
        prune_keys(self._pairs, self.window, now)

    def history(self, now: float) -> float:
        """Decayed number of observations."""
        return decayed(self._totals, self.window, now, 1)[0]

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready snapshot: string keys only, bucket numbers as strings."""
        return {
            "version": STATE_VERSION,
            "totals": buckets_to_state(self._totals),
            "actions": {a: buckets_to_state(b) for a, b in self._actions.items()},
            "pairs": [[a, b, buckets_to_state(bk)] for (a, b), bk in self._pairs.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], window: Window, **params: float) -> "BehaviourModel":
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown behaviour state version {state.get('version')!r}")
        model = cls(window, **params)
        model._totals = buckets_from_state(state["totals"])
        model._actions = {a: buckets_from_state(b) for a, b in state["actions"].items()}
        model._pairs = {(a, b): buckets_from_state(bk) for a, b, bk in state["pairs"]}
        return model

    def _bump(self, tallies: dict[K, Buckets], key: K, bucket: int, at: float, limit: int) -> None:
        """Add 1 to `key`'s count in `bucket`, making room for a new key first."""
        buckets = tallies.get(key)
        if buckets is None:
            if len(tallies) >= limit:
                evict_least_familiar(tallies, self.window, at)
            tallies[key] = {bucket: [1.0]}
            return
        tally = buckets.get(bucket)
        if tally is None:
            buckets[bucket] = [1.0]
        else:
            tally[0] += 1.0

    def _reasons(self, obs: Observation, weights: Weights, totals: Tally) -> list[Reason]:
        """The reasons at or above NEGLIGIBLE, in the order novelty, sequence,
        duration, errors. Each rarity is a number first; a Reason and its detail are
        built only when reported, which for most interactions is never. The tests
        read `not r >= NEGLIGIBLE` so that a NaN is dropped, never reported."""
        actions, pairs = shape_of(obs.actions)
        seen = [weights.count(self._actions.get(a)) for a in actions]
        reasons = (
            self._novelty(actions, seen),
            self._sequence(actions, seen, pairs, weights),
            self._duration(obs.completion_time, totals),
            self._errors(obs.errors, totals),
        )
        return [r for r in reasons if r is not None]

    def _unfamiliarity(self, count: float) -> float:
        return math.exp(-count / self.familiarity)

    def _novelty(self, actions: Sequence[str], seen: Sequence[float]) -> Reason | None:
        if not actions:
            return None
        i = least(seen)
        score = self._unfamiliarity(seen[i])
        if not score >= NEGLIGIBLE:
            return None
        detail = f"action {actions[i]} seen {seen[i]:.1f} times in the window"
        return Reason(NOVEL_ACTION, detail, score)

    def _sequence(
        self,
        actions: Sequence[str],
        seen: Sequence[float],
        pairs: Sequence[Pair],
        weights: Weights,
    ) -> Reason | None:
        tau = self.familiarity
        familiar = {a for a, c in zip(actions, seen, strict=True) if c >= tau}
        familiar.add(START)
        rarest: Pair | None = None
        least_count = 0.0
        for pair in pairs:
            if pair[0] in familiar and pair[1] in familiar:
                count = weights.count(self._pairs.get(pair))
                if rarest is None or count < least_count:  # ties to the first, as min()
                    rarest, least_count = pair, count
        if rarest is None:
            return None
        score = self._unfamiliarity(least_count)
        if not score >= NEGLIGIBLE:
            return None
        detail = f"sequence {describe_pair(rarest)} seen {least_count:.1f} times in the window"
        return Reason(UNUSUAL_SEQUENCE, detail, score)

    def _duration(self, seconds: float, totals: Tally) -> Reason | None:
        z = z_score(math.log1p(seconds), totals[0], totals[1], totals[2], DURATION_SIGMA_FLOOR)
        excess = (abs(z) - self.z_floor) / self.z_span
        if not excess >= NEGLIGIBLE:  # as clamp01(excess) would: 0 < NEGLIGIBLE ≤ 1
            return None
        score = clamp01(excess)
        usual = math.expm1(totals[1] / totals[0])
        detail = f"took {seconds:.1f} s; usual {usual:.1f} s (z = {z:.1f})"
        return Reason(DURATION, detail, score)

    def _errors(self, errors: int, totals: Tally) -> Reason | None:
        z = z_score(math.log1p(errors), totals[0], totals[3], totals[4], ERRORS_SIGMA_FLOOR)
        excess = (max(z, 0.0) - self.z_floor) / self.z_span
        if not excess >= NEGLIGIBLE:  # as clamp01(excess) would: 0 < NEGLIGIBLE ≤ 1
            return None
        score = clamp01(excess)
        usual = math.expm1(totals[3] / totals[0])
        detail = f"{errors} errors; usual {usual:.1f} (z = {z:.1f})"
        return Reason(ERRORS, detail, score)
