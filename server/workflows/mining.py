"""Frequent workflows: contiguous command sequences counted across learned sessions.

The design learns a session with at least 3 commands ("Sessions with <3 commands are
skipped"). A learned session's command list is mined for its patterns: every
contiguous run of `min_length` to `max_length` commands in it. A pattern's

    support      = sessions containing it (once per session, however often),
    success rate = successes / support, among those sessions,
    confidence   = wilson_lower_bound(successes, support)  (`confidence.py`),

the house confidence of an outcome rate: 3 of 3 gives 0.44, 30 of 30 gives 0.89.

Why contiguous runs and not PrefixSpan (Pei et al., 2001). PrefixSpan finds every
frequent subsequence, gaps allowed, by re-projecting the whole database: adding one
session means mining again (incremental variants such as IncSpan, Cheng, Yan & Han
2004, keep buffers of semi-frequent patterns but no bound on a session's cost),
and a session of n commands holds C(n, L) gapped subsequences of length L (40
commands, L = 5: 658,008), most of them noise (`ls`, `cd`) stitched across the
session. Contiguous runs are sequential patterns under a maximum gap of one step
(GSP's max-gap constraint, Srikant & Agrawal, 1996): a session holds at most
n·(max_length − min_length + 1) of them, support adds up session by session, so
mining is exactly incremental at O(n·L) per session, and the Apriori property
holds (every contiguous sub-run of a pattern has at least its support). What it
gives up: a noise command inside a workflow splits it into two runs, each still
counted; predicting through noise is the back-off model's job (`predict.py`).

Bounded memory on an endless stream: Lossy Counting (Manku & Motwani, 2002) with
sessions as transactions and bucket width w = ⌈1/ε⌉. A pattern first seen in
bucket b starts with error Δ = b − 1; at each bucket boundary, patterns with
support + Δ ≤ b are dropped. A kept support undercounts the truth by at most Δ ≤
ε·N (reported as `support_error`), and no pattern with true support above ε·N is
ever dropped. A hard cap `max_tallies` sheds the lowest support + Δ when a stream
still outgrows it, and raises the Δ of later newcomers to the cut, so that
support ≤ truth ≤ support + Δ keeps holding.

A reported outcome can arrive after its session was learned: the `recent`
sessions keep their commands (by session_id: the latest learned session of an
id), and `revise` moves their success between outcomes.
"""

import heapq
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.core.stats import wilson_lower_bound
from server.workflows.outcome import Outcome
from server.workflows.runs import WorkflowRun

Commands = tuple[str, ...]


@dataclass(slots=True)
class _Tally:
    support: int
    successes: int
    first_seen: float
    last_seen: float
    error: int
    examples: list[str]


@dataclass(frozen=True, slots=True)
class WorkflowPattern:
    """One frequent command sequence, as GET /workflows lists it."""

    commands: Commands
    support: int
    successes: int
    first_seen: float
    last_seen: float
    examples: tuple[str, ...]
    support_error: int = 0

    @property
    def success_rate(self) -> float:
        return self.successes / self.support if self.support else 0.0

    @property
    def confidence(self) -> float:
        return wilson_lower_bound(self.successes, self.support)

    def to_dict(self) -> dict[str, Any]:
        return {
            "commands": list(self.commands),
            "support": self.support,
            "success_rate": self.success_rate,
            "confidence": self.confidence,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "examples": list(self.examples),
            "support_error": self.support_error,
        }


def contiguous_patterns(commands: Sequence[str], min_length: int, max_length: int) -> set[Commands]:
    """Every distinct contiguous run of `min_length` to `max_length` commands."""
    n = len(commands)
    return {
        tuple(commands[i : i + k])
        for k in range(min_length, min(max_length, n) + 1)
        for i in range(n - k + 1)
    }


class WorkflowMiner:
    """One tenant's frequent workflows, updated one learned session at a time."""

    def __init__(
        self,
        *,
        min_support: int = 3,
        min_commands: int = 3,
        min_length: int = 2,
        max_length: int = 5,
        epsilon: float = 0.001,
        max_tallies: int = 200_000,
        examples: int = 3,
        recent: int = 1000,
    ) -> None:
        if not 1 <= min_length <= max_length or not 0 < epsilon < 1 or min_support < 1:
            raise ValueError(
                "need 1 <= min_length <= max_length, 0 < epsilon < 1, min_support >= 1"
            )
        self.min_support = min_support
        self.min_commands = min_commands
        self.min_length = min_length
        self.max_length = max_length
        self.epsilon = epsilon
        self.max_tallies = max_tallies
        self.examples = examples
        self.recent_max = recent
        self.sessions = 0
        self._floor = 0
        self._tallies: dict[Commands, _Tally] = {}
        self._frequent_n = 0
        self._recent: OrderedDict[str, tuple[Commands, bool]] = OrderedDict()

    @property
    def bucket_width(self) -> int:
        return math.ceil(1 / self.epsilon)

    def __len__(self) -> int:
        return len(self._tallies)

    # -- learning ----------------------------------------------------------------

    def absorb(self, session: WorkflowRun) -> bool:
        """Learn a closed session; False (and nothing learned) when it is too short."""
        success = session.outcome is Outcome.SUCCESS
        return self.learn(session.session_id, session.commands, success, session.end)

    def learn(self, session_id: str, commands: Sequence[str], success: bool, at: float) -> bool:
        """Count the patterns of one session's commands; False when too short."""
        if len(commands) < self.min_commands:
            return False
        self.sessions += 1
        patterns = contiguous_patterns(commands, self.min_length, self.max_length)
        self._count(patterns, session_id, success, at, max(self._bucket() - 1, self._floor))
        self._remember(session_id, tuple(commands), success)
        self._bound()
        return True

    def _bucket(self) -> int:
        return math.ceil(self.sessions / self.bucket_width)

    def _count(
        self, patterns: Iterable[Commands], session_id: str, success: bool, at: float, error: int
    ) -> None:
        """One session into each of its patterns' tallies: the hot loop of learning,
        written out in one function (a call per pattern would double its cost)."""
        tallies, floor = self._tallies, self.min_support
        for pattern in patterns:
            tally = tallies.get(pattern)
            if tally is None:
                tally = tallies[pattern] = _Tally(0, 0, at, at, error, [])
            tally.support += 1
            tally.successes += success
            self._frequent_n += tally.support == floor
            if at < tally.first_seen:
                tally.first_seen = at
            if at > tally.last_seen:
                tally.last_seen = at
            examples = tally.examples
            examples.append(session_id)
            if len(examples) > self.examples:
                del examples[0]

    def _remember(self, session_id: str, commands: Commands, success: bool) -> None:
        self._recent[session_id] = (commands, success)
        self._recent.move_to_end(session_id)
        while len(self._recent) > self.recent_max:
            self._recent.popitem(last=False)

    def _bound(self) -> None:
        """Lossy Counting's prune at bucket boundaries, and the hard cap."""
        if self.sessions % self.bucket_width == 0:
            self._drop_at_most(self._bucket())
        if len(self._tallies) > self.max_tallies:
            self._shed()

    def _drop_at_most(self, cut: int) -> None:
        dropped = [p for p, t in self._tallies.items() if t.support + t.error <= cut]
        for pattern in dropped:
            self._frequent_n -= self._tallies.pop(pattern).support >= self.min_support

    def _shed(self) -> None:
        """Drop the lowest support + Δ until a quarter of the cap is free."""
        keep = self.max_tallies * 3 // 4
        values = sorted(t.support + t.error for t in self._tallies.values())
        cut = values[len(values) - keep - 1]
        self._drop_at_most(cut)
        self._floor = max(self._floor, cut)

    def revise(self, session_id: str, success: bool) -> bool:
        """Move a recently learned session to its reported outcome; False when the
        session is not among the `recent` ones (too old, or never learned)."""
        remembered = self._recent.get(session_id)
        if remembered is None:
            return False
        commands, was = remembered
        if was != success:
            for pattern in contiguous_patterns(commands, self.min_length, self.max_length):
                self._move_success(pattern, success)
            self._recent[session_id] = (commands, success)
        return True

    def _move_success(self, pattern: Commands, success: bool) -> None:
        tally = self._tallies.get(pattern)
        if tally is not None:  # dropped since: nothing to move
            tally.successes = min(tally.support, max(0, tally.successes + (1 if success else -1)))

    # -- reading -----------------------------------------------------------------

    def support(self, commands: Sequence[str]) -> int:
        tally = self._tallies.get(tuple(commands))
        return tally.support if tally else 0

    def pattern(self, commands: Sequence[str]) -> WorkflowPattern | None:
        tally = self._tallies.get(tuple(commands))
        return None if tally is None else _public(tuple(commands), tally)

    def patterns(
        self,
        min_support: int | None = None,
        limit: int | None = 50,
        *,
        min_length: int | None = None,
        closed: bool = True,
    ) -> list[WorkflowPattern]:
        """Frequent patterns by support, then successes, then length (longest first).

        `closed`: leave out a pattern when a one-command-longer pattern that contains
        it has the same support (it adds nothing: every session with it had more);
        by the Apriori property this finds every pattern with an equally supported
        super-pattern up to `max_length`."""
        frequent = self._frequent(min_support, min_length)
        if closed:
            frequent = _closed(frequent)
        items = frequent.items()
        ranked = sorted(items, key=_rank) if limit is None else heapq.nsmallest(limit, items, _rank)
        return [_public(p, t) for p, t in ranked]

    def frequent_count(self, min_support: int | None = None) -> int:
        """Patterns with at least `min_support` sessions (O(1) at the miner's own)."""
        if min_support is None or min_support == self.min_support:
            return self._frequent_n
        return len(self._frequent(min_support, None))

    def _frequent(self, min_support: int | None, min_length: int | None) -> dict[Commands, _Tally]:
        floor = self.min_support if min_support is None else min_support
        shortest = self.min_length if min_length is None else min_length
        return {p: t for p, t in self._tallies.items() if t.support >= floor and len(p) >= shortest}

    # -- state -------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "sessions": self.sessions,
            "floor": self._floor,
            "tallies": [_tally_state(p, t) for p, t in self._tallies.items()],
            "recent": [[sid, list(c), ok] for sid, (c, ok) in self._recent.items()],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Replace the counts with those of `to_state` (parameters stay this miner's)."""
        self.sessions = int(state["sessions"])
        self._floor = int(state["floor"])
        self._tallies = dict(_tally_from(item) for item in state["tallies"])
        self._frequent_n = sum(t.support >= self.min_support for t in self._tallies.values())
        self._recent = OrderedDict((sid, (tuple(c), bool(ok))) for sid, c, ok in state["recent"])

    @classmethod
    def from_state(cls, state: Mapping[str, Any], **params: Any) -> "WorkflowMiner":
        miner = cls(**params)
        miner.restore(state)
        return miner


def _closed(frequent: Mapping[Commands, _Tally]) -> dict[Commands, _Tally]:
    subsumed: set[Commands] = set()
    for pattern, tally in frequent.items():
        for part in (pattern[:-1], pattern[1:]):
            inner = frequent.get(part)
            if inner is not None and inner.support == tally.support:
                subsumed.add(part)
    return {p: t for p, t in frequent.items() if p not in subsumed}


def _rank(item: tuple[Commands, _Tally]) -> tuple[int, int, int, Commands]:
    pattern, tally = item
    return (-tally.support, -tally.successes, -len(pattern), pattern)


def _public(pattern: Commands, tally: _Tally) -> WorkflowPattern:
    return WorkflowPattern(
        commands=pattern,
        support=tally.support,
        successes=tally.successes,
        first_seen=tally.first_seen,
        last_seen=tally.last_seen,
        examples=tuple(tally.examples),
        support_error=tally.error,
    )


def _tally_state(pattern: Commands, t: _Tally) -> list[Any]:
    return [list(pattern), t.support, t.successes, t.first_seen, t.last_seen, t.error, t.examples]


def _tally_from(item: Iterable[Any]) -> tuple[Commands, _Tally]:
    pattern, support, successes, first, last, error, examples = item
    return tuple(pattern), _Tally(support, successes, first, last, error, list(examples))
