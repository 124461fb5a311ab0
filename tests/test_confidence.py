"""The confidence rule (Wilson lower bound) and its mapping to levels."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import ConfidenceLevel
from server.core.stats import confidence_level, level_floor, wilson_lower_bound

trials = st.integers(min_value=1, max_value=10_000)


@st.composite
def k_of_n(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(trials)
    return draw(st.integers(0, n)), n


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [(3, 3, 0.4385), (10, 10, 0.7225), (30, 30, 0.8865), (5, 10, 0.2366), (0, 10, 0.0)],
)
def test_known_values(k: int, n: int, expected: float) -> None:
    assert wilson_lower_bound(k, n) == pytest.approx(expected, abs=1e-4)


@given(k_of_n())
def test_bound_lies_below_the_observed_rate(kn: tuple[int, int]) -> None:
    k, n = kn
    assert 0.0 <= wilson_lower_bound(k, n) <= k / n + 1e-12


@given(k_of_n())
def test_one_more_success_never_lowers_confidence(kn: tuple[int, int]) -> None:
    k, n = kn
    assert wilson_lower_bound(k + 1, n + 1) >= wilson_lower_bound(k, n) - 1e-12


@given(st.integers(1, 1000), st.integers(2, 50))
def test_more_evidence_at_the_same_rate_raises_confidence(n: int, factor: int) -> None:
    k = n // 2 + 1 if n > 1 else 1
    assert wilson_lower_bound(k * factor, n * factor) >= wilson_lower_bound(k, n) - 1e-12


def test_no_trials_means_no_confidence() -> None:
    assert wilson_lower_bound(0, 0) == 0.0


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        wilson_lower_bound(4, 3)


@given(st.floats(0, 1))
def test_level_is_the_highest_floor_reached(confidence: float) -> None:
    level = confidence_level(confidence)
    assert level_floor(level) <= confidence
    higher = [lvl for lvl in ConfidenceLevel if lvl.rank > level.rank]
    assert all(level_floor(lvl) > confidence for lvl in higher)


def test_levels_follow_evidence() -> None:
    assert confidence_level(wilson_lower_bound(1, 1)) is ConfidenceLevel.LOW
    assert confidence_level(wilson_lower_bound(3, 3)) is ConfidenceLevel.MEDIUM
    assert confidence_level(wilson_lower_bound(10, 10)) is ConfidenceLevel.HIGH
    assert confidence_level(wilson_lower_bound(30, 30)) is ConfidenceLevel.VERY_HIGH
    assert not math.isnan(wilson_lower_bound(1, 2))
