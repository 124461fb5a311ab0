"""Rarity of interactions against an agent type's recent behaviour."""

import math
from itertools import cycle, islice
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.core.window import DAY, Window
from server.learning.anomaly import (
    DURATION,
    ERRORS,
    MAX_ACTIONS,
    NOVEL_ACTION,
    UNUSUAL_SEQUENCE,
    BehaviourModel,
    Observation,
    Rarity,
    Reason,
)

SMALL = Window(span_s=10 * DAY, half_life_s=3 * DAY, buckets=10)
ROUTINE = ("EDIT", "TEST")
DURATIONS = (4.0, 5.0, 6.0, 5.0)
ERROR_COUNTS = (1, 2, 1, 3)
KINDS = {NOVEL_ACTION, UNUSUAL_SEQUENCE, DURATION, ERRORS}


def obs(*actions: str, at: float = 0.0, seconds: float = 5.0, errors: int = 1) -> Observation:
    return Observation(actions=actions, completion_time=seconds, errors=errors, at=at)


def routine(count: int, at: float) -> list[Observation]:
    """`count` runs of EDIT → TEST taking 4 to 6 s with 1 to 3 errors."""
    shapes = islice(zip(cycle(DURATIONS), cycle(ERROR_COUNTS), strict=False), count)
    return [obs(*ROUTINE, at=at, seconds=s, errors=e) for s, e in shapes]


def feed(model: BehaviourModel, observations: list[Observation]) -> BehaviourModel:
    for o in observations:
        model.add(o)
    return model


def trained(count: int = 30, **params: float) -> BehaviourModel:
    return feed(BehaviourModel(SMALL, **params), routine(count, at=0.0))


def kinds(rarity: Rarity) -> set[str]:
    return {r.kind for r in rarity.reasons}


def test_too_little_history_scores_zero_and_is_not_warmed_up() -> None:
    model = trained(count=10)
    rarity = model.score(obs("DOCKER_BUILD", seconds=9_000.0, errors=50), now=0.0)
    assert rarity == Rarity(0.0, (), False)


def test_an_empty_model_is_not_warmed_up_even_without_a_minimum() -> None:
    assert not BehaviourModel(SMALL, min_history=0.0).score(obs("EDIT"), now=0.0).warmed_up


def test_history_counts_observations() -> None:
    assert trained(count=30).history(now=0.0) == pytest.approx(30.0)


def test_the_routine_itself_is_not_rare() -> None:
    rarity = trained().score(obs(*ROUTINE), now=0.0)
    assert rarity.warmed_up
    assert rarity.score == 0.0
    assert rarity.reasons == ()


def test_a_never_seen_action_is_novel() -> None:
    rarity = trained().score(obs("EDIT", "DOCKER_BUILD", "TEST"), now=0.0)
    assert rarity.score >= 0.9
    assert rarity.reasons[0].kind == NOVEL_ACTION
    assert "DOCKER_BUILD" in rarity.reasons[0].detail


def test_a_new_action_used_often_becomes_normal() -> None:
    model = trained()
    new = obs("EDIT", "DOCKER_BUILD", "TEST")
    feed(model, [new] * 10)
    assert model.score(new, now=0.0).score < 0.5


def test_an_action_that_stops_is_forgotten_once_the_window_passes() -> None:
    model = BehaviourModel(SMALL)
    new = obs("DEPLOY", at=0.5 * DAY)
    feed(model, routine(30, at=0.5 * DAY) + [new] * 10)
    assert model.score(new, now=0.5 * DAY).score < 0.5
    for day in range(1, 13):
        at = (day + 0.5) * DAY
        assert model.score(obs(*ROUTINE, at=at), now=at).score == 0.0
        feed(model, routine(10, at=at))
    rarity = model.score(obs("DEPLOY", at=at), now=at)
    assert rarity.warmed_up
    assert rarity.score >= 0.9
    assert NOVEL_ACTION in kinds(rarity)


def test_pruning_drops_what_left_the_window_and_keeps_scores() -> None:
    model = BehaviourModel(SMALL)
    feed(model, [*routine(30, at=0.0), obs("DEPLOY", at=0.0)])
    feed(model, routine(30, at=20 * DAY))
    before = model.score(obs("DEPLOY"), now=20 * DAY)
    model.prune(now=20 * DAY)
    assert "DEPLOY" not in model.to_state()["actions"]
    assert model.score(obs("DEPLOY"), now=20 * DAY) == before


def test_familiar_actions_in_a_new_order_are_an_unusual_sequence() -> None:
    rarity = trained().score(obs("EDIT", "TEST", "EDIT"), now=0.0)
    assert rarity.score >= 0.9
    assert kinds(rarity) == {UNUSUAL_SEQUENCE}
    assert "TEST → EDIT" in rarity.reasons[0].detail


def test_starting_with_a_familiar_action_never_first_is_an_unusual_sequence() -> None:
    rarity = trained().score(obs("TEST"), now=0.0)
    assert kinds(rarity) == {UNUSUAL_SEQUENCE}
    assert "start → TEST" in rarity.reasons[0].detail


def test_an_unfamiliar_action_is_novel_not_an_unusual_sequence() -> None:
    rarity = trained().score(obs("EDIT", "DEPLOY"), now=0.0)
    assert kinds(rarity) == {NOVEL_ACTION}


def test_a_familiar_order_repeated_becomes_normal() -> None:
    model = trained()
    feed(model, [obs("TEST", "EDIT")] * 10)
    assert model.score(obs("TEST", "EDIT"), now=0.0).score < 0.5


def test_a_duration_far_from_usual_is_rare() -> None:
    model = trained()
    slow = model.score(obs(*ROUTINE, seconds=500.0), now=0.0)
    assert DURATION in kinds(slow)
    assert slow.score >= 0.9
    assert DURATION not in kinds(model.score(obs(*ROUTINE, seconds=5.5), now=0.0))


def test_many_more_errors_than_usual_is_rare_but_fewer_is_not() -> None:
    model = trained()
    assert ERRORS in kinds(model.score(obs(*ROUTINE, errors=40), now=0.0))
    assert ERRORS not in kinds(model.score(obs(*ROUTINE, errors=0), now=0.0))


def test_memory_keeps_at_most_the_action_limit() -> None:
    model = trained()
    feed(model, [obs(f"TOOL_{i}") for i in range(MAX_ACTIONS + 10)])
    actions = model.to_state()["actions"]
    assert len(actions) == MAX_ACTIONS
    assert {"EDIT", "TEST"} <= set(actions)


@pytest.mark.parametrize(
    "bad",
    [
        {"completion_time": -1.0},
        {"completion_time": math.nan},
        {"completion_time": math.inf},
        {"errors": -1},
        {"at": math.nan},
    ],
)
def test_observations_reject_impossible_values(bad: dict[str, float]) -> None:
    fields = {"actions": (), "completion_time": 1.0, "errors": 0, "at": 0.0} | bad
    with pytest.raises(ValueError):
        Observation(**fields)  # type: ignore[arg-type]


def test_unknown_state_versions_are_refused() -> None:
    with pytest.raises(ValueError):
        BehaviourModel.from_state({"version": 99}, SMALL)


actions = st.tuples() | st.lists(
    st.sampled_from(["EDIT", "TEST", "READ", "BUILD", "DEPLOY"]), max_size=5
).map(tuple)
observations = st.builds(
    Observation,
    actions=actions,
    completion_time=st.floats(0.0, 1e7),
    errors=st.integers(0, 1_000),
    at=st.floats(0.0, 15 * DAY),
)
histories = st.lists(observations, max_size=60)
moments = st.floats(0.0, 15 * DAY)


@given(histories, st.lists(observations, min_size=1, max_size=5), moments)
def test_state_round_trip_through_json_keeps_scores(
    history: list[Observation], probes: list[Observation], now: float
) -> None:
    model = feed(BehaviourModel(SMALL, min_history=1.0), history)
    state = orjson.loads(orjson.dumps(model.to_state()))
    restored = BehaviourModel.from_state(state, SMALL, min_history=1.0)
    assert restored.to_state() == model.to_state()
    for probe in probes:
        assert restored.score(probe, now) == model.score(probe, now)


@given(histories, observations, moments)
def test_rarity_is_a_noisy_or_of_sorted_reasons(
    history: list[Observation], probe: Observation, now: float
) -> None:
    rarity = feed(BehaviourModel(SMALL, min_history=0.0), history).score(probe, now)
    scores = [r.score for r in rarity.reasons]
    assert 0.0 <= rarity.score <= 1.0
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 < s <= 1.0 for s in scores)
    assert rarity.score >= max(scores, default=0.0)
    assert {r.kind for r in rarity.reasons} <= KINDS
    assert rarity.warmed_up or rarity.score == 0.0


# A straightforward reference, written from the module docstring's formulas, that the
# model's fast paths must match exactly: the same floating-point operations in the
# same order (sums bucket by bucket, in the order the buckets were made).

State = dict[str, dict[str, list[float]]]


def reference_state(history: list[Observation], window: Window) -> dict[str, Any]:
    """The documented tallies, bucket by bucket: n, Σx_dur, Σx_dur², Σx_err, Σx_err²,
    and per action and per consecutive pair (from the start marker) the number of
    observations that contain it."""
    totals: dict[str, list[float]] = {}
    actions: State = {}
    pairs: dict[tuple[str, str], dict[str, list[float]]] = {}
    for o in history:
        b = str(window.bucket(o.at))
        dur, err = math.log1p(o.completion_time), math.log1p(o.errors)
        row = totals.setdefault(b, [0.0] * 5)
        for i, x in enumerate((1.0, dur, dur * dur, err, err * err)):
            row[i] += x
        for a in dict.fromkeys(o.actions):
            actions.setdefault(a, {}).setdefault(b, [0.0])[0] += 1.0
        for pair in dict.fromkeys(zip(("", *o.actions), o.actions, strict=False)):
            pairs.setdefault(pair, {}).setdefault(b, [0.0])[0] += 1.0
    return {
        "version": 1,
        "totals": totals,
        "actions": actions,
        "pairs": [[a, b, buckets] for (a, b), buckets in pairs.items()],
    }


def reference_count(buckets: dict[str, list[float]], window: Window, now: float, i: int) -> float:
    """Σ_b weight(b)·tally_i(b) over live buckets; a bucket after now's weighs 1."""
    total = 0.0
    for key, tally in buckets.items():
        b = int(key)
        w = window.weight(b, now) if b <= window.bucket(now) else 1.0
        if w > 0.0:
            total += w * tally[i]
    return total


def reference_z(x: float, n: float, sx: float, sxx: float, floor: float) -> tuple[float, float]:
    """z = (x − μ)/sd and μ, with μ = Σwx/Σw, var = max(0, Σwx²/Σw − μ²), sd ≥ floor."""
    mu = sx / n
    var = max(0.0, sxx / n - mu * mu)
    return (x - mu) / max(math.sqrt(var), floor), mu


def reference_rarity(
    state: dict[str, Any], probe: Observation, now: float, p: dict[str, float]
) -> Rarity:
    def count(buckets: dict[str, list[float]] | None) -> float:
        return reference_count(buckets, SMALL, now, 0) if buckets else 0.0

    n, sx, sxx, se, see = (reference_count(state["totals"], SMALL, now, i) for i in range(5))
    if n <= 0.0 or n < p["min_history"]:
        return Rarity(0.0, (), False)
    tau = p["familiarity"]
    reasons = []
    seen = {a: count(state["actions"].get(a)) for a in probe.actions}
    if seen:
        a = min(seen, key=seen.__getitem__)
        detail = f"action {a} seen {seen[a]:.1f} times in the window"
        reasons.append(Reason(NOVEL_ACTION, detail, math.exp(-seen[a] / tau)))
    familiar = {""} | {a for a, c in seen.items() if c >= tau}
    by_pair = {(a, b): buckets for a, b, buckets in state["pairs"]}
    order = dict.fromkeys(zip(("", *probe.actions), probe.actions, strict=False))
    pairs = {q: count(by_pair.get(q)) for q in order if set(q) <= familiar}
    if pairs:
        q = min(pairs, key=pairs.__getitem__)
        detail = f"sequence {' → '.join(x or 'start' for x in q)} seen {pairs[q]:.1f} times"
        reasons.append(
            Reason(UNUSUAL_SEQUENCE, f"{detail} in the window", math.exp(-pairs[q] / tau))
        )

    def excess(z: float) -> float:
        return min(1.0, max(0.0, (z - p["z_floor"]) / p["z_span"]))

    t = probe.completion_time
    z, mu = reference_z(math.log1p(t), n, sx, sxx, 0.1)
    detail = f"took {t:.1f} s; usual {math.expm1(mu):.1f} s (z = {z:.1f})"
    reasons.append(Reason(DURATION, detail, excess(abs(z))))
    z, mu = reference_z(math.log1p(probe.errors), n, se, see, 0.25)
    detail = f"{probe.errors} errors; usual {math.expm1(mu):.1f} (z = {z:.1f})"
    reasons.append(Reason(ERRORS, detail, excess(max(z, 0.0))))
    kept = sorted((r for r in reasons if r.score >= 0.01), key=lambda r: r.score, reverse=True)
    scores = [r.score for r in kept]
    combined = 1.0 - math.prod(1.0 - r for r in scores)
    return Rarity(min(1.0, max(0.0, combined, *scores)), tuple(kept), True)


parameters = st.fixed_dictionaries(
    {
        "familiarity": st.floats(0.5, 10.0),
        "min_history": st.floats(0.0, 30.0),
        "z_floor": st.floats(0.0, 3.0),
        "z_span": st.floats(0.5, 4.0),
    }
)


@given(histories)
def test_the_state_is_the_documented_tallies(history: list[Observation]) -> None:
    model = feed(BehaviourModel(SMALL), history)
    state = model.to_state()
    assert state == reference_state(history, SMALL)
    assert [q[:2] for q in state["pairs"]] == [
        q[:2] for q in reference_state(history, SMALL)["pairs"]
    ]


@given(histories, st.lists(observations, min_size=1, max_size=5), moments, parameters)
def test_scores_are_exactly_the_documented_formulas(
    history: list[Observation], probes: list[Observation], now: float, p: dict[str, float]
) -> None:
    model = feed(BehaviourModel(SMALL, **p), history)
    state = model.to_state()
    for probe in probes:
        assert model.score(probe, now) == reference_rarity(state, probe, now, p)


@pytest.mark.parametrize(
    "probe",
    [
        obs(*ROUTINE),
        obs("TEST"),
        obs("EDIT", "TEST", "EDIT"),
        obs("EDIT", "DOCKER_BUILD", "TEST"),
        obs(*ROUTINE, seconds=500.0, errors=40),
        obs(),
    ],
)
def test_a_routine_scores_exactly_the_documented_formulas(probe: Observation) -> None:
    p = {"familiarity": 3.0, "min_history": 20.0, "z_floor": 2.0, "z_span": 2.0}
    model = feed(BehaviourModel(SMALL, **p), routine(30, at=0.0))
    assert model.score(probe, 0.0) == reference_rarity(model.to_state(), probe, 0.0, p)
