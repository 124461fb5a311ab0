"""The adaptive strategy ranker's pure core: Beta posteriors, discounting, the GLR
change detector, back-off across levels, greedy mode and its persisted state."""

import json
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.strategy.bandit import (
    ArmScore,
    BanditParams,
    BetaPosterior,
    StrategyRanker,
    beta_interval,
)
from server.strategy.beta import beta_cdf, beta_quantile
from server.strategy.changepoint import (
    DetectorParams,
    GlrDetector,
    bernoulli_kl,
    glr_statistic,
)

GLOBAL = ("global",)
CHAIN = ("cluster:1", "agents:code+test", "global")
ARMS = ("single", "sequential", "parallel", "hierarchical", "consensus")
NO_DRIFT = BanditParams(discount=1.0, detector=None)

rewards = st.floats(0.0, 1.0)
counts = st.floats(0.01, 1e6)


def bernoulli(rng: random.Random, p: float) -> float:
    return 1.0 if rng.random() < p else 0.0


def feed(ranker: StrategyRanker, levels: tuple[str, ...], arm: str, outcomes: list[float]) -> int:
    """Updates in order; the number of detected changes."""
    return sum(ranker.update(levels, arm, r) for r in outcomes)


def greedy(ranker: StrategyRanker, levels: tuple[str, ...] = GLOBAL) -> list[str]:
    return [s.arm for s in ranker.rank(levels, ARMS, random.Random(0), greedy=True)]


def score(ranker: StrategyRanker, levels: tuple[str, ...], arm: str) -> ArmScore:
    return ranker.rank(levels, [arm], random.Random(0), greedy=True)[0]


# -- posterior ------------------------------------------------------------------------


def test_observations_add_exactly_to_alpha_and_beta() -> None:
    posterior = BetaPosterior(1.0, 1.0)
    for reward in (1.0, 0.0, 1.0, 0.5):
        posterior.observe(reward)
    assert (posterior.alpha, posterior.beta) == (3.5, 2.5)
    assert posterior.mean == pytest.approx(3.5 / 6)
    assert posterior.count == 4.0


def test_ranker_posterior_is_prior_plus_outcomes() -> None:
    ranker = StrategyRanker(BanditParams(prior_alpha=2.0, prior_beta=3.0, discount=1.0))
    feed(ranker, GLOBAL, "single", [1.0, 1.0, 1.0, 0.0, 0.25])
    got = score(ranker, GLOBAL, "single")
    assert (got.alpha, got.beta) == (5.25, 4.75)
    assert got.outcomes == 5.0 and got.borrowed == 0.0 and got.levels == GLOBAL


def test_unseen_arm_has_the_prior() -> None:
    got = score(StrategyRanker(), CHAIN, "consensus")
    assert (got.alpha, got.beta, got.mean, got.outcomes, got.levels) == (1.0, 1.0, 0.5, 0.0, ())


@pytest.mark.parametrize(("a", "b", "p", "expected"), [(1, 1, 0.025, 0.025), (2, 1, 0.25, 0.5)])
def test_known_quantiles(a: float, b: float, p: float, expected: float) -> None:
    # Beta(1, 1) is uniform; Beta(2, 1) has CDF x².
    assert beta_quantile(p, a, b) == pytest.approx(expected, rel=1e-9)


def test_interval_narrows_with_evidence() -> None:
    few, many = BetaPosterior(), BetaPosterior()
    for i in range(100):
        if i < 10:
            few.observe(float(i % 2))
        many.observe(float(i % 2))
    lo_few, hi_few = few.interval()
    lo_many, hi_many = many.interval()
    assert lo_few < lo_many < 0.5 < hi_many < hi_few


@given(counts, counts)
def test_interval_holds_the_mean(a: float, b: float) -> None:
    lower, upper = beta_interval(a, b)
    assert 0.0 <= lower <= a / (a + b) <= upper <= 1.0


@given(st.floats(0.3, 1e5), st.floats(0.3, 1e5), st.floats(0.001, 0.999))
def test_quantile_inverts_the_cdf(a: float, b: float, p: float) -> None:
    """p lies between the CDF just below and just above the quantile: "just" is the
    solver's tolerance, or one float step where the CDF is steeper than floats are fine."""
    x = beta_quantile(p, a, b)
    step = max(math.ulp(x), 1e-9 * min(x, 1.0 - x))
    assert beta_cdf(x - step, a, b) - 1e-9 <= p <= beta_cdf(x + step, a, b) + 1e-9


# -- discounting ----------------------------------------------------------------------


@given(st.floats(0.5, 0.999), st.integers(0, 30))
def test_old_evidence_shrinks_by_discount_to_the_k(gamma: float, k: int) -> None:
    """D-TS: each outcome in the context multiplies every arm's evidence by the discount first."""
    params = BanditParams(discount=gamma, discount_from="start", detector=None)
    ranker = StrategyRanker(params)
    ranker.update(GLOBAL, "single", 1.0)
    feed(ranker, GLOBAL, "parallel", [0.0] * k)
    got = score(ranker, GLOBAL, "single")
    assert got.alpha - 1.0 == pytest.approx(gamma**k)
    assert got.beta == 1.0


def test_pulled_arm_decays_then_gains() -> None:
    params = BanditParams(discount=0.5, discount_from="start", detector=None)
    ranker = StrategyRanker(params)
    feed(ranker, GLOBAL, "single", [1.0, 1.0, 0.0])
    got = score(ranker, GLOBAL, "single")
    assert (got.alpha - 1.0, got.beta - 1.0) == pytest.approx((0.75, 1.0))


def test_other_contexts_do_not_decay() -> None:
    params = BanditParams(discount=0.5, discount_from="start", detector=None)
    ranker = StrategyRanker(params)
    ranker.update(("cluster:1",), "single", 1.0)
    feed(ranker, ("cluster:2",), "single", [1.0] * 5)
    assert score(ranker, ("cluster:1",), "single").alpha == 2.0


def test_by_default_a_context_forgets_only_after_a_change() -> None:
    ranker = StrategyRanker(BanditParams(discount=0.9))
    rng = random.Random(7)
    feed(ranker, GLOBAL, "single", [1.0] * 10)
    feed(ranker, GLOBAL, "parallel", [bernoulli(rng, 0.9) for _ in range(100)])
    assert score(ranker, GLOBAL, "single").alpha == 11.0  # stationary so far: exact
    assert feed(ranker, GLOBAL, "parallel", [bernoulli(rng, 0.1) for _ in range(100)]) >= 1
    assert score(ranker, GLOBAL, "single").alpha < 2.0  # the context now forgets


# -- change detection -----------------------------------------------------------------


def test_a_shifted_arm_is_detected_and_restarted() -> None:
    ranker = StrategyRanker()
    rng = random.Random(3)
    assert feed(ranker, GLOBAL, "single", [bernoulli(rng, 0.9) for _ in range(300)]) == 0
    assert score(ranker, GLOBAL, "single").mean > 0.8
    after = [bernoulli(rng, 0.1) for _ in range(60)]
    flags = [ranker.update(GLOBAL, "single", r) for r in after]
    assert any(flags)
    # Restarted: only (discounted) outcomes since the alarm are left, at the new rate.
    got = score(ranker, GLOBAL, "single")
    assert got.outcomes <= len(after) - flags.index(True) - 1
    assert got.mean < 0.3


def test_stationary_arms_rarely_raise_an_alarm() -> None:
    rng = random.Random(11)
    alarms = 0
    for p in (0.1, 0.3, 0.5, 0.7, 0.9) * 4:
        detector = GlrDetector(DetectorParams())
        alarms += sum(detector.observe(bernoulli(rng, p)) for _ in range(1000))
    assert alarms <= 1


def test_detection_restarts_only_the_contexts_that_saw_the_change() -> None:
    ranker = StrategyRanker()
    rng = random.Random(5)
    feed(ranker, ("cluster:1", "global"), "single", [bernoulli(rng, 0.9) for _ in range(200)])
    feed(ranker, ("cluster:2", "global"), "single", [bernoulli(rng, 0.9) for _ in range(2000)])
    shifted = [bernoulli(rng, 0.0) for _ in range(60)]
    assert feed(ranker, ("cluster:1", "global"), "single", shifted) >= 1
    assert score(ranker, ("cluster:1",), "single").mean < 0.2
    assert score(ranker, ("cluster:2",), "single").mean > 0.8


def test_detector_history_stays_bounded() -> None:
    params = DetectorParams(block=5, max_blocks=8)
    detector = GlrDetector(params)
    rng = random.Random(2)
    for _ in range(10_000):
        detector.observe(bernoulli(rng, 0.5))
    assert len(detector.blocks) <= 8
    assert detector.outcomes == 10_000
    # Blocks near the present stay fine-grained.
    assert detector.blocks[-1][0] == 5


@given(st.lists(st.tuples(st.integers(1, 30), st.floats(0.0, 1.0)), min_size=2, max_size=12))
def test_glr_is_the_max_over_splits_of_the_kl_form(raw: list[tuple[int, float]]) -> None:
    blocks = [(n, n * share) for n, share in raw]
    n = sum(c for c, _ in blocks)
    total = sum(s for _, s in blocks)
    best, n1, s1 = 0.0, 0, 0.0
    for count, subtotal in blocks[:-1]:
        n1, s1 = n1 + count, s1 + subtotal
        mean, rest = total / n, n - n1
        best = max(
            best, n1 * bernoulli_kl(s1 / n1, mean) + rest * bernoulli_kl((total - s1) / rest, mean)
        )
    assert glr_statistic(blocks) == pytest.approx(best, rel=1e-9, abs=1e-9)


# -- back-off -------------------------------------------------------------------------


def seed_global(ranker: StrategyRanker) -> None:
    """Another cluster teaches the shared levels that `parallel` works, `single` not."""
    other = ("cluster:2", "agents:code+test", "global")
    feed(ranker, other, "parallel", [1.0] * 40)
    feed(ranker, other, "single", [0.0] * 40)


def test_an_empty_cluster_inherits_the_coarser_ranking() -> None:
    ranker = StrategyRanker(NO_DRIFT)
    seed_global(ranker)
    order = greedy(ranker, CHAIN)
    assert order[0] == "parallel" and order[-1] == "single"
    top = score(ranker, CHAIN, "parallel")
    # The global level adds nothing beyond the agent set's: it saw no other outcomes.
    assert top.borrowed == 10.0 and top.levels == ("agents:code+test",)


def test_a_well_sampled_cluster_overrides_the_coarser_ranking() -> None:
    ranker = StrategyRanker(NO_DRIFT)
    seed_global(ranker)
    feed(ranker, CHAIN, "single", [1.0] * 30)
    feed(ranker, CHAIN, "parallel", [0.0] * 30)
    assert greedy(ranker, CHAIN)[0] == "single"
    got = score(ranker, CHAIN, "single")
    assert got.borrowed == 0.0 and got.levels == ("cluster:1",)


def test_a_thin_cluster_tops_up_to_m_outcomes_at_the_coarser_mean() -> None:
    ranker = StrategyRanker(BanditParams(discount=1.0, detector=None, backoff_outcomes=10.0))
    feed(ranker, ("cluster:2", "global"), "single", [1.0] * 18)
    feed(ranker, ("cluster:1", "global"), "single", [0.0] * 4)
    got = score(ranker, ("cluster:1", "global"), "single")
    coarse_mean = 19.0 / 20.0  # global beyond cluster:1: 18 of 18, on the Beta(1, 1) prior
    assert got.borrowed == 6.0
    assert got.alpha == pytest.approx(1.0 + 6.0 * coarse_mean)
    assert got.beta == pytest.approx(1.0 + 4.0 + 6.0 * (1.0 - coarse_mean))
    assert got.outcomes == 10.0 and got.levels == ("cluster:1", "global")


def test_each_outcome_counts_once_across_levels() -> None:
    ranker = StrategyRanker(NO_DRIFT)
    feed(ranker, CHAIN, "single", [1.0, 0.0, 1.0])
    got = score(ranker, CHAIN, "single")
    assert (got.alpha, got.beta, got.outcomes, got.borrowed) == (3.0, 2.0, 3.0, 0.0)


def test_thompson_draws_follow_the_inherited_ranking_mostly() -> None:
    ranker = StrategyRanker(NO_DRIFT)
    seed_global(ranker)
    rng = random.Random(1)
    tops = [ranker.rank(CHAIN, ARMS, rng)[0].arm for _ in range(300)]
    assert tops.count("parallel") > 150
    assert tops.count("single") < 10


# -- greedy mode ----------------------------------------------------------------------


def test_greedy_mode_is_deterministic_and_reads_no_randomness() -> None:
    ranker = StrategyRanker()
    feed(ranker, CHAIN, "parallel", [1.0, 0.0, 1.0])
    feed(ranker, CHAIN, "consensus", [1.0, 1.0])
    rng = random.Random(42)
    state = rng.getstate()
    first = ranker.rank(CHAIN, ARMS, rng, greedy=True)
    again = ranker.rank(CHAIN, ARMS, random.Random(7), greedy=True)
    assert rng.getstate() == state
    assert first == again
    assert [s.arm for s in first][:2] == ["consensus", "parallel"]
    assert all(s.value == s.mean for s in first)


def test_ties_break_on_the_arm_name() -> None:
    assert greedy(StrategyRanker()) == sorted(ARMS)


# -- state ----------------------------------------------------------------------------


def busy_ranker() -> StrategyRanker:
    ranker = StrategyRanker()
    rng = random.Random(9)
    feed(ranker, CHAIN, "single", [bernoulli(rng, 0.9) for _ in range(200)])
    feed(ranker, CHAIN, "single", [bernoulli(rng, 0.1) for _ in range(80)])  # detected
    feed(ranker, CHAIN, "parallel", [bernoulli(rng, 0.6) for _ in range(37)])
    return ranker


def test_state_round_trips_through_json() -> None:
    ranker = busy_ranker()
    state = ranker.to_state()
    assert state["contexts"]["cluster:1"]["drifting"] is True
    restored = StrategyRanker.from_state(json.loads(json.dumps(state, allow_nan=False)))
    assert restored.to_state() == state
    assert restored.rank(CHAIN, ARMS, random.Random(1)) == ranker.rank(
        CHAIN, ARMS, random.Random(1)
    )
    # ... and both go on learning alike.
    rng = random.Random(4)
    for _ in range(50):
        arm, reward = rng.choice(ARMS), bernoulli(rng, 0.3)
        assert ranker.update(CHAIN, arm, reward) == restored.update(CHAIN, arm, reward)
    assert restored.to_state() == ranker.to_state()


def test_state_size_per_arm_is_bounded() -> None:
    ranker = StrategyRanker()
    rng = random.Random(8)
    sizes = []
    for _ in range(4):
        feed(ranker, GLOBAL, "single", [bernoulli(rng, 0.5) for _ in range(2500)])
        sizes.append(len(json.dumps(ranker.to_state())))
    assert max(sizes) < 2_000
    assert sizes[-1] <= sizes[1] + 50


def test_a_longer_saved_history_is_merged_down() -> None:
    state = busy_ranker().to_state()
    small = BanditParams(detector=DetectorParams(max_blocks=3))
    restored = StrategyRanker.from_state(state, small)
    for context in restored.to_state()["contexts"].values():
        for arm in context["arms"].values():
            assert len(arm["detector"]["blocks"]) <= 3


def test_state_without_detectors_loads_into_a_detecting_ranker() -> None:
    plain = StrategyRanker(NO_DRIFT)
    feed(plain, GLOBAL, "single", [1.0, 0.0])
    restored = StrategyRanker.from_state(plain.to_state())
    assert restored.to_state()["contexts"]["global"]["arms"]["single"]["detector"] is not None
    assert score(restored, GLOBAL, "single").alpha == 2.0


@pytest.mark.parametrize(
    "state",
    [
        None,
        {},
        {"version": 2, "contexts": {}},
        {"version": 1, "contexts": []},
        {"version": 1, "contexts": {"g": {"drifting": "yes", "arms": {}}}},
        {"version": 1, "contexts": {"g": {"arms": {"a": {"successes": -1}}}}},
        {"version": 1, "contexts": {"g": {"arms": {"a": {"failures": math.inf}}}}},
        {"version": 1, "contexts": {"g": {"arms": {"a": {"detector": {"blocks": [[5, 6]]}}}}}},
        {"version": 1, "contexts": {"g": {"arms": {"a": {"detector": {"pending": [1.5, 0]}}}}}},
    ],
)
def test_malformed_state_is_refused(state: object) -> None:
    with pytest.raises(ValueError):
        StrategyRanker.from_state(state)


# -- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prior_alpha": 0.0},
        {"prior_beta": -1.0},
        {"prior_alpha": math.nan},
        {"discount": 0.0},
        {"discount": 1.1},
        {"discount": math.nan},
        {"discount_from": "never"},
        {"discount": 0.99, "detector": None},
        {"backoff_outcomes": -1.0},
        {"backoff_outcomes": math.inf},
    ],
)
def test_bad_params_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BanditParams(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"delta": 0.0}, {"delta": 1.0}, {"block": 0}, {"max_blocks": 1}]
)
def test_bad_detector_params_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DetectorParams(**kwargs)  # type: ignore[arg-type]


def test_discounting_from_the_start_needs_no_detector() -> None:
    assert BanditParams(discount=0.99, discount_from="start", detector=None).discount == 0.99


@pytest.mark.parametrize("reward", [-0.1, 1.5, math.nan])
def test_bad_rewards_raise_and_change_nothing(reward: float) -> None:
    ranker = StrategyRanker()
    with pytest.raises(ValueError):
        ranker.update(CHAIN, "single", reward)
    assert ranker.to_state()["contexts"] == {}


@pytest.mark.parametrize("levels", ["global", [], ["a", "a"], [""], [3]])
def test_bad_levels_raise(levels: object) -> None:
    ranker = StrategyRanker()
    with pytest.raises(ValueError):
        ranker.rank(levels, ARMS, random.Random(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ranker.update(levels, "single", 1.0)  # type: ignore[arg-type]


def test_repeated_arms_raise_and_no_arms_rank_empty() -> None:
    ranker = StrategyRanker()
    with pytest.raises(ValueError):
        ranker.rank(GLOBAL, ["single", "single"], random.Random(0))
    assert ranker.rank(GLOBAL, [], random.Random(0)) == []


# -- properties -----------------------------------------------------------------------

updates = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(ARMS), rewards), min_size=0, max_size=60
)


@given(updates, st.booleans(), st.integers(0, 2**32))
def test_ranking_is_a_well_formed_permutation(
    history: list[tuple[int, str, float]], greedy_mode: bool, seed: int
) -> None:
    ranker = StrategyRanker(BanditParams(discount=0.8, discount_from="start"))
    for start, arm, reward in history:
        ranker.update(CHAIN[start:], arm, reward)
    scores = ranker.rank(CHAIN, ARMS, random.Random(seed), greedy=greedy_mode)
    assert sorted(s.arm for s in scores) == sorted(ARMS)
    assert [s.value for s in scores] == sorted((s.value for s in scores), reverse=True)
    for s in scores:
        assert 0.0 <= s.lower <= s.mean <= s.upper <= 1.0
        assert 0.0 <= s.value <= 1.0
        assert 0.0 <= s.borrowed <= 10.0 and s.outcomes >= s.borrowed
        assert set(s.levels) <= set(CHAIN)


@given(st.lists(rewards, max_size=40))
def test_posterior_mean_stays_between_prior_and_evidence(outcomes: list[float]) -> None:
    posterior = BetaPosterior()
    for reward in outcomes:
        posterior.observe(reward)
    assert 0.0 < posterior.mean < 1.0
    if outcomes:
        observed = sum(outcomes) / len(outcomes)
        assert min(0.5, observed) - 1e-12 <= posterior.mean <= max(0.5, observed) + 1e-12


def test_one_contexts_state_and_the_learned_arms() -> None:
    ranker = StrategyRanker(BanditParams(detector=None, discount=1.0))
    ranker.update(["cluster:1", "global"], "parallel", 1.0)
    ranker.update(["global"], "single", 0.0)
    whole = ranker.to_state()["contexts"]
    assert ranker.context_state("cluster:1") == whole["cluster:1"]
    assert ranker.context_state("cluster:9") is None
    assert ranker.learned_arms() == 3
