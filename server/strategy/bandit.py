"""The adaptive strategy ranker: Thompson sampling over Beta posteriors of success for
each (context, strategy), with back-off to coarser contexts, discounting and change
detection. Pure: no I/O; the service keeps the state (`to_state`/`from_state`).

Thompson sampling (Thompson, 1933; Chapelle & Li, 2011; Agrawal & Goyal, 2012). An
arm's success rate has a Beta(α, β) posterior; an outcome r ∈ [0, 1] (fractional
outcomes allowed: partial success) adds

    α ← α + r,   β ← β + (1 − r)

To rank, draw θ ~ Beta(α, β) for every arm and sort by θ, best first; greedy mode
sorts by the posterior mean α/(α + β) instead (exploration off). Ties break on the
arm's name.

Contexts. `levels` names contexts finest → coarsest, e.g. ["cluster:17",
"agents:code+test", "global"]; an outcome updates its arm in every one of them.

Back-off. Let s_j, f_j be level j's (discounted) successes and failures for the
arm, α₀, β₀ the prior and m = `backoff_outcomes`. Every outcome of the finer level j
− 1 also reached level j, so level j's own news is what it saw beyond that level:

    e_0 = (s_0, f_0),   e_j = (max(0, s_j − s_{j−1}), max(0, f_j − f_{j−1}))
    n_j = s(e_j) + f(e_j)

(the clamp covers contexts that decayed or restarted apart). The coarsest level L
has α_L = α₀ + s(e_L), β_L = β₀ + f(e_L), N_L = n_L; each finer level j borrows

    w_j = min(max(0, m − n_j), N_{j+1})                 pseudo-outcomes
    α_j = α₀ + s(e_j) + w_j·μ_{j+1},   β_j = β₀ + f(e_j) + w_j·(1 − μ_{j+1})
    μ_{j+1} = α_{j+1}/(α_{j+1} + β_{j+1}),   N_j = n_j + w_j

A level short of m outcomes tops itself up to m at the coarser posterior's mean,
never borrowing more outcomes than stand behind that posterior, and no outcome
counts twice: an empty cluster inherits the coarser ranking, one with ≥ m outcomes
stands on its own, and with no evidence anywhere the posterior is the prior. It is
Katz's (1987) back-off in conjugate form: the coarser posterior, from the sibling
contexts' outcomes, becomes the finer level's prior, as in hierarchical empirical
Bayes (Gelman et al., Bayesian Data Analysis, 3rd ed., ch. 5).

Discounting: Discounted Thompson Sampling (Raj & Kalyani, 2017). When a context
receives an outcome, every arm's evidence there decays first, then the pulled arm
gains it:

    s ← g·s,  f ← g·f   for every arm of the context;   s ← s + r,  f ← f + 1 − r

with g = `discount`. An outcome k updates old weighs g^k; a context remembers about
1/(1 − g) outcomes.

Change detection: each (context, arm) runs the Bernoulli GLR test (`changepoint.py`,
Besson et al., 2020); when it fires, the arm's evidence in that context restarts
from the prior (their local restart).

When discounting starts. Forgetting costs a stationary context its logarithmic
regret (a forgotten poor arm is explored again), yet it is the only way to notice
that an arm no longer played has improved: no detector sees outcomes that never
come. With `discount_from = "first_change"` (the default) a context forgets only
once its detector has fired there: a stationary context keeps plain Thompson
sampling, one that has shown drift follows changes. Besson et al.'s GLR-klUCB
likewise grows its forced exploration with the changes it has detected (α₀·√k
after k − 1 restarts, in the authors' code).
"""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from server.strategy.beta import beta_quantile
from server.strategy.changepoint import DetectorParams, GlrDetector

DiscountFrom = Literal["start", "first_change"]
"""When a context starts forgetting: from its first outcome, or once its detector
has fired there (module docstring)."""
DISCOUNT_FROM: tuple[DiscountFrom, ...] = ("start", "first_change")
CREDIBLE_MASS = 0.95
STATE_VERSION = 1
MIN_WEIGHT = 1e-9
"""Evidence lighter than this does not count a level as informing a posterior."""


@dataclass(frozen=True, slots=True)
class BanditParams:
    """Defaults: see `bench/strategy.py`, which measures them (Chapelle & Li's
    stationary arms, Besson et al.'s piecewise-stationary problems, scarce outcomes)."""

    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    discount: float = 0.9995
    """g per outcome in a context; 1 keeps all evidence."""
    discount_from: DiscountFrom = "first_change"
    backoff_outcomes: float = 10.0
    """m: a level with fewer outcomes borrows the rest from the coarser level."""
    detector: DetectorParams | None = field(default_factory=DetectorParams)

    def __post_init__(self) -> None:
        if not (_positive(self.prior_alpha) and _positive(self.prior_beta)):
            raise ValueError("prior alpha and beta must be positive and finite")
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"discount must lie in (0, 1], got {self.discount}")
        if self.discount_from not in DISCOUNT_FROM:
            raise ValueError(f"discount_from must be one of {DISCOUNT_FROM}")
        if self.discount < 1.0 and self.discount_from == "first_change" and self.detector is None:
            raise ValueError('discount_from="first_change" needs a detector to start it')
        if not (self.backoff_outcomes == 0.0 or _positive(self.backoff_outcomes)):
            raise ValueError("backoff_outcomes must be non-negative and finite")


def _positive(value: float) -> bool:
    return 0.0 < value < math.inf


def check_reward(reward: float) -> None:
    if not 0.0 <= reward <= 1.0:
        raise ValueError(f"a reward must lie in [0, 1], got {reward}")


@dataclass(slots=True)
class BetaPosterior:
    """Beta(α₀ + s, β₀ + f): a prior and the (discounted) evidence on top of it."""

    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    successes: float = 0.0
    failures: float = 0.0

    @property
    def alpha(self) -> float:
        return self.prior_alpha + self.successes

    @property
    def beta(self) -> float:
        return self.prior_beta + self.failures

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def count(self) -> float:
        """Effective outcomes: discounted ones weigh less than one."""
        return self.successes + self.failures

    def observe(self, reward: float) -> None:
        check_reward(reward)
        self.successes += reward
        self.failures += 1.0 - reward

    def discount(self, gamma: float) -> None:
        self.successes *= gamma
        self.failures *= gamma

    def restart(self) -> None:
        self.successes = self.failures = 0.0

    def interval(self, mass: float = CREDIBLE_MASS) -> tuple[float, float]:
        """The equal-tailed credible interval holding `mass` of the posterior."""
        return beta_interval(self.alpha, self.beta, mass)

    def sample(self, rng: random.Random) -> float:
        return rng.betavariate(self.alpha, self.beta)


def beta_interval(alpha: float, beta: float, mass: float = CREDIBLE_MASS) -> tuple[float, float]:
    if not 0.0 < mass < 1.0:
        raise ValueError(f"interval mass must lie in (0, 1), got {mass}")
    tail = (1.0 - mass) / 2.0
    return beta_quantile(tail, alpha, beta), beta_quantile(1.0 - tail, alpha, beta)


class ArmScore(NamedTuple):
    """One arm's place in a ranking. A named tuple, not a frozen dataclass: a rank
    builds one per arm and a frozen dataclass takes five times as long to build."""

    arm: str
    value: float
    """The Thompson draw θ, or the posterior mean in greedy mode; ranks the arms."""
    mean: float
    outcomes: float
    """Effective outcomes behind the posterior, `borrowed` ones included."""
    borrowed: float
    """Pseudo-outcomes taken from coarser levels (back-off)."""
    levels: tuple[str, ...]
    """The levels whose evidence shaped the posterior, finest first; () for the prior."""
    alpha: float
    beta: float

    @property
    def lower(self) -> float:
        """Lower end of the 95% credible interval (computed on demand: ranking in a
        hot loop needs only `value`)."""
        return beta_interval(self.alpha, self.beta)[0]

    @property
    def upper(self) -> float:
        return beta_interval(self.alpha, self.beta)[1]


@dataclass(slots=True)
class ArmState:
    posterior: BetaPosterior
    detector: GlrDetector | None


@dataclass(slots=True)
class Context:
    arms: dict[str, ArmState] = field(default_factory=dict)
    drifting: bool = False
    """The detector has fired here at least once."""


class _Posterior(NamedTuple):
    """A level's posterior after back-off: Beta(alpha, beta), with `outcomes`
    effective outcomes behind it, `borrowed` of them from coarser levels."""

    alpha: float
    beta: float
    outcomes: float
    borrowed: float
    levels: tuple[str, ...]


class StrategyRanker:
    def __init__(self, params: BanditParams | None = None) -> None:
        self._params = params or BanditParams()
        self._contexts: dict[str, Context] = {}

    @property
    def params(self) -> BanditParams:
        return self._params

    def rank(
        self,
        levels: Sequence[str],
        arms: Sequence[str],
        rng: random.Random,
        greedy: bool = False,
    ) -> list[ArmScore]:
        """Every arm, best first, for the context chain `levels` (finest first).
        Greedy mode reads no randomness and always gives the same order."""
        chain = _keys(levels, "levels", allow_empty=False)
        scores = [self._score(chain, arm, rng, greedy) for arm in _keys(arms, "arms")]
        scores.sort(key=_best_first)
        return scores

    def update(self, levels: Sequence[str], arm: str, reward: float) -> bool:
        """Record an outcome of `arm` at every level; True when a change was detected
        (and the arm's posterior restarted) at any of them."""
        chain = _keys(levels, "levels", allow_empty=False)
        check_reward(reward)
        if not isinstance(arm, str) or not arm:
            raise ValueError("an arm must be a non-empty string")
        restarted = [self._update_context(level, arm, reward) for level in chain]
        return any(restarted)

    def forget(self, level: str) -> bool:
        """Drop a context (a retired cluster, say); True when it existed."""
        return self._contexts.pop(level, None) is not None

    def contexts(self) -> list[str]:
        return list(self._contexts)

    def context_state(self, level: str) -> dict[str, Any] | None:
        """One context's part of `to_state`, for saving only what an update moved."""
        found = self._contexts.get(level)
        return _context_state(found) if found is not None else None

    def learned_arms(self) -> int:
        """(context, arm) posteriors that hold any evidence."""
        return sum(
            1
            for context in self._contexts.values()
            for arm in context.arms.values()
            if arm.posterior.successes + arm.posterior.failures > 0
        )

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable; per arm at most max_blocks + 1 detector pairs."""
        contexts = {level: _context_state(c) for level, c in self._contexts.items()}
        return {"version": STATE_VERSION, "contexts": contexts}

    @classmethod
    def from_state(cls, state: Any, params: BanditParams | None = None) -> "StrategyRanker":
        """A ranker from `to_state`'s output; ValueError when it is malformed."""
        ranker = cls(params)
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"strategy ranker state must be an object of version {STATE_VERSION}")
        contexts = _object(state.get("contexts", {}), "contexts")
        for level, raw in contexts.items():
            ranker._contexts[level] = ranker._context_from(raw)
        return ranker

    # -- ranking ------------------------------------------------------------------

    def _score(
        self, levels: tuple[str, ...], arm: str, rng: random.Random, greedy: bool
    ) -> ArmScore:
        post = self._backed_off(levels, arm)
        mean = post.alpha / (post.alpha + post.beta)
        value = mean if greedy else rng.betavariate(post.alpha, post.beta)
        return ArmScore(
            arm, value, mean, post.outcomes, post.borrowed, post.levels, post.alpha, post.beta
        )

    def _backed_off(self, levels: tuple[str, ...], arm: str) -> _Posterior:
        """The finest level's posterior, each level backing off to the next coarser
        (module docstring); the coarsest backs off to the bare prior, which has no
        outcomes to lend. Plain floats: this runs for every arm of every rank."""
        alpha0, beta0 = self._params.prior_alpha, self._params.prior_beta
        own = [self._evidence(level, arm) for level in levels]
        alpha, beta, outcomes, borrowed = alpha0, beta0, 0.0, 0.0
        informed: tuple[str, ...] = ()
        for j in range(len(levels) - 1, -1, -1):
            successes, failures = own[0] if j == 0 else _news(own[j], own[j - 1])
            n = successes + failures
            borrowed = min(max(0.0, self._params.backoff_outcomes - n), outcomes)
            mu = alpha / (alpha + beta)
            informed = informed if borrowed > MIN_WEIGHT else ()
            informed = (levels[j], *informed) if n > MIN_WEIGHT else informed
            alpha = alpha0 + successes + borrowed * mu
            beta = beta0 + failures + borrowed * (1.0 - mu)
            outcomes = n + borrowed
        return _Posterior(alpha, beta, outcomes, borrowed, informed)

    def _evidence(self, level: str, arm: str) -> tuple[float, float]:
        """The level's own (discounted) successes and failures for the arm."""
        context = self._contexts.get(level)
        state = context.arms.get(arm) if context is not None else None
        if state is None:
            return 0.0, 0.0
        return state.posterior.successes, state.posterior.failures

    def _prior(self) -> BetaPosterior:
        return BetaPosterior(self._params.prior_alpha, self._params.prior_beta)

    # -- learning -----------------------------------------------------------------

    def _update_context(self, level: str, arm: str, reward: float) -> bool:
        context = self._contexts.get(level) or self._new_context(level)
        if self._forgets(context):
            for other in context.arms.values():
                other.posterior.discount(self._params.discount)
        state = context.arms.get(arm) or self._new_arm(context, arm)
        state.posterior.observe(reward)
        if state.detector is None or not state.detector.observe(reward):
            return False
        state.posterior.restart()
        context.drifting = True
        return True

    def _new_context(self, level: str) -> Context:
        context = self._contexts[level] = Context()
        return context

    def _forgets(self, context: Context) -> bool:
        if self._params.discount >= 1.0:
            return False
        return self._params.discount_from == "start" or context.drifting

    def _new_arm(self, context: Context, arm: str) -> ArmState:
        state = ArmState(self._prior(), self._new_detector())
        context.arms[arm] = state
        return state

    def _new_detector(self) -> GlrDetector | None:
        detector = self._params.detector
        return GlrDetector(detector) if detector else None

    # -- state --------------------------------------------------------------------

    def _context_from(self, raw: Any) -> Context:
        body = _object(raw, "a context")
        drifting = body.get("drifting", False)
        if not isinstance(drifting, bool):
            raise ValueError("a context's drifting flag must be a boolean")
        arms = _object(body.get("arms", {}), "a context's arms")
        return Context({arm: self._arm_from(value) for arm, value in arms.items()}, drifting)

    def _arm_from(self, raw: Any) -> ArmState:
        body = _object(raw, "an arm")
        posterior = self._prior()
        posterior.successes = _evidence_weight(body.get("successes", 0.0))
        posterior.failures = _evidence_weight(body.get("failures", 0.0))
        detector = self._params.detector
        saved = body.get("detector")
        if detector is None or saved is None:
            return ArmState(posterior, self._new_detector())
        return ArmState(posterior, GlrDetector.from_state(detector, saved))


def _news(level: tuple[float, float], finer: tuple[float, float]) -> tuple[float, float]:
    """e_j: a level's evidence beyond the next finer level's."""
    return max(0.0, level[0] - finer[0]), max(0.0, level[1] - finer[1])


def _best_first(score: ArmScore) -> tuple[float, str]:
    return -score.value, score.arm


def _keys(values: Sequence[str], what: str, allow_empty: bool = True) -> tuple[str, ...]:
    """The keys as a tuple; a bare string, a non-string, an empty name, a repeat or
    (for levels) no key at all is a caller's mistake."""
    keys = tuple(values)
    if isinstance(values, str) or not all(type(key) is str and key for key in keys):
        raise ValueError(f"{what} must be a sequence of non-empty strings")
    if len(set(keys)) != len(keys):
        raise ValueError(f"{what} must not repeat")
    if not keys and not allow_empty:
        raise ValueError(f"{what} must not be empty")
    return keys


def _context_state(context: Context) -> dict[str, Any]:
    arms = {arm: _arm_state(state) for arm, state in context.arms.items()}
    return {"drifting": context.drifting, "arms": arms}


def _arm_state(state: ArmState) -> dict[str, Any]:
    detector = state.detector.to_state() if state.detector else None
    posterior = state.posterior
    return {"successes": posterior.successes, "failures": posterior.failures, "detector": detector}


def _object(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not all(isinstance(key, str) for key in raw):
        raise ValueError(f"{what} must be an object with string keys")
    return raw


def _evidence_weight(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0.0 <= raw < math.inf:
        raise ValueError(f"evidence must be a non-negative finite number, got {raw!r}")
    return float(raw)
