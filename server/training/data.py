"""The fine-tuning data set: a sliding window of fresh examples, a replay sample of
data accepted earlier, deduplication and a stable held-out split. Pure functions.

Window: an example is fresh when
now − window_s < created_at ≤ now. Older ones fall out; future-dated ones wait for a
later build.

Dedupe: an example's key is the SHA-256 of its normalised instruction and output
(Unicode NFKC, case-folded, whitespace runs collapsed), so "Reverse:  ABC" → "cba" and
"reverse: abc" → "CBA" are one example. Of several fresh copies the newest is kept.
Context and source do not count: they describe where an example came from, not what
the model learns from it.

Held-out split: an example is held out when the first 8 bytes of SHA-256("held-out" ·
key), read as an integer and divided by 2⁶⁴, fall below held_out_fraction. The side
depends on the key alone, not on the seed or on the other examples, so an example held
out once is held out in every later build at the same fraction: no adapter is ever
trained on the data its successor is judged on (the "automated rollback" needs
an honest comparison). Small sets may get an empty held-out side.

Replay (against forgetting what was learnt before the window slid on): a share
replay_fraction of the training side is drawn, with `seed`, from `replay` (examples
accepted into earlier training sets), after dropping those whose key is already fresh
or that hash to the held-out side. With n fresh training examples and share f that is
round(n · f / (1 − f)) examples, or every candidate when there are fewer. Replayed
examples go to training only.
"""

import hashlib
import random
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DAY = 86_400.0
DEFAULT_WINDOW_S = 30 * DAY
_SPACE = re.compile(r"\s+")
_UNIT = 2.0**64


@dataclass(frozen=True, slots=True)
class Example:
    instruction: str
    output: str
    context: str = ""
    created_at: float = 0.0
    source: str = ""

    @property
    def key(self) -> str:
        """Hex SHA-256 of the normalised instruction and output: equal for duplicates."""
        text = f"{normalise(self.instruction)}\x00{normalise(self.output)}"
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def pair(self) -> tuple[str, str]:
        return (self.instruction, self.output)


@dataclass(frozen=True, slots=True)
class DatasetCounts:
    seen: int  # examples given, fresh or not
    fresh: int  # inside the window, duplicates included
    duplicates: int  # fresh copies dropped by dedupe
    replay_candidates: int  # replay examples left after dedupe and the split
    replayed: int
    train: int  # fresh training examples plus replayed ones
    held_out: int


@dataclass(frozen=True, slots=True)
class Dataset:
    train: tuple[Example, ...]
    held_out: tuple[Example, ...]
    window: tuple[float, float]  # (start, end]: now − window_s, now
    counts: DatasetCounts

    def train_pairs(self) -> list[tuple[str, str]]:
        return [example.pair for example in self.train]

    def held_out_pairs(self) -> list[tuple[str, str]]:
        return [example.pair for example in self.held_out]


def normalise(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def is_held_out(key: str, fraction: float) -> bool:
    """Which side of the split the example with this key is on (see the module doc)."""
    digest = hashlib.sha256(f"held-out\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _UNIT < fraction


def in_window(example: Example, start: float, end: float) -> bool:
    return start < example.created_at <= end


def dedupe(examples: Iterable[Example]) -> list[Example]:
    """One example per key, the newest (ties: the first given), sorted by
    (created_at, key) so the result does not depend on the input order."""
    kept: dict[str, Example] = {}
    for example in examples:
        old = kept.get(example.key)
        if old is None or example.created_at > old.created_at:
            kept[example.key] = example
    return sorted(kept.values(), key=lambda e: (e.created_at, e.key))


def replay_count(fresh_train: int, fraction: float, available: int) -> int:
    """How many replayed examples make up `fraction` of the training side."""
    if fraction <= 0 or fresh_train == 0:
        return 0
    return min(available, round(fresh_train * fraction / (1 - fraction)))


def build_dataset(
    examples: Iterable[Example],
    now: float,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    replay: Iterable[Example] = (),
    replay_fraction: float = 0.2,
    held_out_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """The data set for a training run at time `now` (see the module doc)."""
    _check_fractions(replay_fraction, held_out_fraction)
    given = list(examples)
    start = now - window_s
    fresh = [e for e in given if in_window(e, start, now)]
    unique = dedupe(fresh)
    fresh_train, held_out = _split(unique, held_out_fraction)
    candidates = _replay_candidates(replay, {e.key for e in unique}, held_out_fraction)
    replayed = _sample(
        candidates, replay_count(len(fresh_train), replay_fraction, len(candidates)), seed
    )
    counts = DatasetCounts(
        seen=len(given),
        fresh=len(fresh),
        duplicates=len(fresh) - len(unique),
        replay_candidates=len(candidates),
        replayed=len(replayed),
        train=len(fresh_train) + len(replayed),
        held_out=len(held_out),
    )
    return Dataset(tuple(fresh_train + replayed), tuple(held_out), (start, now), counts)


def _check_fractions(replay_fraction: float, held_out_fraction: float) -> None:
    if not 0 <= replay_fraction < 1:
        raise ValueError(f"replay_fraction must be in [0, 1), got {replay_fraction}")
    if not 0 <= held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be in [0, 1), got {held_out_fraction}")


def _split(examples: Iterable[Example], fraction: float) -> tuple[list[Example], list[Example]]:
    """(training side, held-out side), each in the order given."""
    train: list[Example] = []
    held_out: list[Example] = []
    for example in examples:
        (held_out if is_held_out(example.key, fraction) else train).append(example)
    return train, held_out


def _replay_candidates(
    replay: Iterable[Example], fresh_keys: set[str], held_out_fraction: float
) -> list[Example]:
    unique = dedupe(replay)
    return [
        e for e in unique if e.key not in fresh_keys and not is_held_out(e.key, held_out_fraction)
    ]


def _sample(candidates: Sequence[Example], count: int, seed: int) -> list[Example]:
    """`count` candidates drawn with `seed`, in (created_at, key) order."""
    chosen = random.Random(seed).sample(range(len(candidates)), count)
    return [candidates[i] for i in sorted(chosen)]
