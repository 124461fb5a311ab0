"""Change detection on one arm's outcomes: the Bernoulli GLR test of Besson, Kaufmann,
Maillard & Seznec ("Efficient change-point detection for tackling piecewise-
stationary bandits", arXiv:1902.01575, 2020; JMLR 23, 2022).

With n outcomes x₁ … xₙ ∈ [0, 1] since the arm's last restart and μ̂ᵢ.ⱼ the mean of
xᵢ … xⱼ, the generalized likelihood ratio of "one change after s" against "no change"
is, for Bernoulli (or any [0, 1]-bounded) outcomes,

    GLR(n) = max_s  s·kl(μ̂₁.ₛ, μ̂₁.ₙ) + (n − s)·kl(μ̂ₛ₊₁.ₙ, μ̂₁.ₙ)
    kl(p, q) = p·ln(p/q) + (1 − p)·ln((1 − p)/(1 − q))

and a change is declared when GLR(n) > β(n, δ) = ln(3·n^{3/2}/δ), the practical
threshold of their experiments (also SMPyBandits' default), with δ the
false-alarm probability.

Two economies, the sub-sampling (Δn, Δs) that Besson et al. show costs little
detection delay: the test runs only when a block of `block` outcomes completes,
and only at block boundaries s. Blocks keep (count, sum) and form an exponential
histogram (Datar, Gionis, Indyk & Motwani, 2002): when three neighbours have the
same count, the older two merge, so block sizes double going back in time; split
points stay dense near the present, where a fresh change lies, and thin out in the
past. Past `max_blocks` the two oldest merge. State per arm is at most
`max_blocks` + 1 pairs, and a test costs O(max_blocks) however long the history.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

KL_EPS = 1e-12
"""Keeps kl(p, q) finite where q reaches 0 or 1."""

Block = tuple[int, float]
"""(outcomes, sum of rewards) of consecutive outcomes."""


@dataclass(frozen=True, slots=True)
class DetectorParams:
    delta: float = 0.01
    block: int = 5
    max_blocks: int = 16

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"detector delta must lie in (0, 1), got {self.delta}")
        if self.block < 1 or self.max_blocks < 2:
            raise ValueError("detector block must be ≥ 1 and max_blocks ≥ 2")


def bernoulli_kl(p: float, q: float) -> float:
    """kl(p, q) with 0·ln 0 = 0; p is clamped to [0, 1] against rounding."""
    p = min(1.0, max(0.0, p))
    q = min(1.0 - KL_EPS, max(KL_EPS, q))
    return _xlog(p, p / q) + _xlog(1.0 - p, (1.0 - p) / (1.0 - q))


def _xlog(x: float, ratio: float) -> float:
    return x * math.log(ratio) if x > 0.0 else 0.0


def glr_threshold(n: int, delta: float) -> float:
    """β(n, δ) = ln(3·n^{3/2}/δ)."""
    return math.log(3.0 * n**1.5 / delta)


def glr_statistic(blocks: Sequence[Block]) -> float:
    """GLR(n), the split s ranging over the boundaries between blocks. Expanding kl,
    each term is L(1..s) + L(s+1..n) − L(1..n) with L(m, S) = S·ln S + (m − S)·ln(m − S)
    − m·ln m the maximised log-likelihood of m outcomes summing to S: the same
    number for a third of the logarithms."""
    n = sum(count for count, _ in blocks)
    total = sum(subtotal for _, subtotal in blocks)
    whole = _log_likelihood(n, total)
    best, n1, s1 = 0.0, 0, 0.0
    for count, subtotal in blocks[:-1]:
        n1, s1 = n1 + count, s1 + subtotal
        split = _log_likelihood(n1, s1) + _log_likelihood(n - n1, total - s1)
        best = max(best, split - whole)
    return best


def _log_likelihood(m: int, successes: float) -> float:
    """L(m, S), with 0·ln 0 = 0 and S clamped to [0, m] against rounding."""
    successes = min(float(m), max(0.0, successes))
    failures = m - successes
    value = -m * math.log(m) if m else 0.0
    if successes > 0.0:
        value += successes * math.log(successes)
    if failures > 0.0:
        value += failures * math.log(failures)
    return value


@dataclass(slots=True)
class GlrDetector:
    """The outcomes of one arm in one context since its last restart, in blocks."""

    params: DetectorParams
    blocks: list[Block] = field(default_factory=list)
    pending: Block = (0, 0.0)
    """The block being filled."""

    def observe(self, reward: float) -> bool:
        """Add an outcome; True when it completes a block and the test fires, in
        which case the history starts afresh (the arm's local restart)."""
        count, subtotal = self.pending
        self.pending = (count + 1, subtotal + reward)
        if count + 1 < self.params.block:
            return False
        self._close_block()
        if not self._changed():
            return False
        self.reset()
        return True

    def reset(self) -> None:
        self.blocks = []
        self.pending = (0, 0.0)

    @property
    def outcomes(self) -> int:
        return sum(count for count, _ in self.blocks) + self.pending[0]

    def to_state(self) -> dict[str, Any]:
        return {"blocks": [list(b) for b in self.blocks], "pending": list(self.pending)}

    @classmethod
    def from_state(cls, params: DetectorParams, state: Any) -> "GlrDetector":
        """Rebuilds a detector from `to_state`; a history longer than `max_blocks`
        (saved under other params) is merged down. ValueError when malformed."""
        if not isinstance(state, dict):
            raise ValueError("detector state must be an object")
        detector = cls(params, [_block(b) for b in state.get("blocks", [])])
        detector.pending = _block(state.get("pending", [0, 0.0]))
        while len(detector.blocks) > params.max_blocks:
            detector._merge(0)
        return detector

    def _close_block(self) -> None:
        self.blocks.append(self.pending)
        self.pending = (0, 0.0)
        self._cascade()
        while len(self.blocks) > self.params.max_blocks:
            self._merge(0)

    def _cascade(self) -> None:
        """Three newest neighbours of one size → merge the older two; repeat upwards."""
        i = len(self.blocks) - 1
        while i >= 2 and self.blocks[i - 2][0] == self.blocks[i - 1][0] == self.blocks[i][0]:
            self._merge(i - 2)
            i -= 2

    def _merge(self, i: int) -> None:
        (c1, s1), (c2, s2) = self.blocks[i], self.blocks[i + 1]
        self.blocks[i : i + 2] = [(c1 + c2, s1 + s2)]

    def _changed(self) -> bool:
        if len(self.blocks) < 2:
            return False
        n = sum(count for count, _ in self.blocks)
        return glr_statistic(self.blocks) > glr_threshold(n, self.params.delta)


def _block(raw: Any) -> Block:
    """A (count, sum) pair from JSON, checked: 0 ≤ sum ≤ count."""
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise ValueError(f"a detector block is a [count, sum] pair, got {raw!r}")
    count, subtotal = raw
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"a block count must be a non-negative integer, got {count!r}")
    if isinstance(subtotal, bool) or not isinstance(subtotal, int | float):
        raise ValueError(f"a block sum must be a number, got {subtotal!r}")
    if not 0.0 <= subtotal <= count * (1.0 + 1e-9):
        raise ValueError(f"a block sum must lie in [0, count], got {subtotal!r}")
    return count, float(subtotal)
