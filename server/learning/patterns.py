"""Patterns: what the miner counts, and the evidence it reads off them.

A pattern is one subject of claims. `SEQUENCE`: one action sequence used by one
agent type in one task cluster (a whole interaction's, or the successful tail
after its last failed step). `SLOT`: the same with the argument values that came
from the task text replaced by named slots (`slots.py`). `STEP`: one action of
one agent type in one cluster, once it has failed there: every later use of it
counts, failed or not. `SLOT_STEP`: the same with the values that came from the
task slotted, across clusters. `RECOVERY`: one (failed action, error, recovery actions)
triple of one agent type, across clusters. Each keeps its counts in
window buckets (`window.py`) of SEQ_WIDTH counters:

    [attempts, successes, Σt, Σt², Σi, Σi²]

where t and i are the completion time and iterations of the successful attempts.
"""

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas import LearningType
from server.core.window import Buckets, Window, add, decayed, prune, windowed

SEQ_WIDTH = 6
CLUSTERS_MAX = 64
"""Clusters a recovery remembers (for ranking it by task)."""
TASKS_MAX = 8
"""Distinct evidence tasks a pattern remembers, latest kept (for ranking by task)."""
TEMPLATES_MAX = 32
"""Distinct task templates a slotted pattern remembers, latest kept (for filling):
more than its tasks, since a template stands for every task it fills."""
VALUES_MAX = 64
"""Distinct (template, filling) pairs a SLOT or SLOT_STEP pattern remembers."""
SOURCES_MAX = 16
"""Sources a pattern remembers by name; successes of any more count as unsourced."""


class PatternKind(enum.StrEnum):
    SEQUENCE = "seq"
    SLOT = "slot"
    STEP = "step"
    SLOT_STEP = "slotstep"
    RECOVERY = "rec"


@dataclass(slots=True)
class Pattern:
    kind: PatternKind
    tenant: str
    key: str
    agent_type: str
    actions: tuple[str, ...]
    cluster_id: int
    trigger: tuple[str, str] | None = None
    buckets: Buckets = field(default_factory=dict)
    clusters: set[int] = field(default_factory=set)
    wins: deque[int] = field(default_factory=deque)
    losses: deque[int] = field(default_factory=deque)
    first_seen: float = 0.0
    last_seen: float = 0.0
    claims: set[LearningType] = field(default_factory=set)
    tasks: list[str] = field(default_factory=list)
    """Its latest distinct evidence tasks."""
    templates: list[str] = field(default_factory=list)
    """SLOT: the same tasks with the slotted values marked ("put the {object} away")."""
    values: list[str] = field(default_factory=list)
    """SLOT (SLOT_STEP): the distinct [template, *values] (JSON) its successes
    (failures) had."""
    sources: dict[str, int] = field(default_factory=dict)
    """Successes by source (`reliability.py`), at most SOURCES_MAX named."""
    unsourced: int = 0
    """Successes with no source, or past SOURCES_MAX."""
    cached: "tuple[float, Evidence] | None" = None

    def count(
        self, window: Window, *, at: float, success: bool, time_s: float, iterations: int
    ) -> None:
        t, i = (time_s, float(iterations)) if success else (0.0, 0.0)
        ok = 1.0 if success else 0.0
        add(self.buckets, window, at, (1.0, ok, ok * t, ok * t * t, ok * i, ok * i * i))
        self.cached = None
        self.first_seen = min(self.first_seen, at) if self.first_seen else at
        self.last_seen = max(self.last_seen, at)

    def remember(self, interaction_id: int, success: bool, cap: int) -> None:
        evidence = self.wins if success else self.losses
        evidence.append(interaction_id)
        while len(evidence) > cap:
            evidence.popleft()

    def saw(self, task: str, template: str | None = None) -> None:
        """Remember `task` (and its template) as its latest evidence."""
        _latest(self.tasks, task, TASKS_MAX)
        if template is not None:
            _latest(self.templates, template, TEMPLATES_MAX)

    def credit(self, source: str | None) -> None:
        """Remember where one more success came from."""
        if source is not None and (source in self.sources or len(self.sources) < SOURCES_MAX):
            self.sources[source] = self.sources.get(source, 0) + 1
        else:
            self.unsourced += 1

    def generalised(self, least: int) -> list[str]:
        """Its templates that held for at least `least` different fillings: a slot
        generalises within its template, not by adding up across templates."""
        per_template: dict[str, int] = {}
        for value in self.values:
            template = orjson.loads(value)[0]
            per_template[template] = per_template.get(template, 0) + 1
        return [t for t in self.templates if per_template.get(t, 0) >= least]

    def filled(self, value: str) -> None:
        if value not in self.values and len(self.values) < VALUES_MAX:
            self.values.append(value)

    def evidence(self, window: Window, now: float) -> "Evidence":
        """The counts at `now`. Reused for up to a hundredth of a bucket width when
        nothing was counted since: decay moves them by under 0.2% in that time, and
        best practices read every member of a sequence each fold."""
        cached = self.cached
        if cached is not None and 0 <= now - cached[0] <= window.width_s / 100:
            return cached[1]
        prune(self.buckets, window, now)
        d = decayed(self.buckets, window, now, SEQ_WIDTH)
        w = windowed(self.buckets, window, now, 2)
        ev = Evidence(d[0], d[1], d[2], d[3], d[4], d[5], round(w[0]), round(w[1]))
        self.cached = (now, ev)
        return ev

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "agent_type": self.agent_type,
            "actions": list(self.actions),
            "cluster_id": self.cluster_id,
            "trigger": list(self.trigger) if self.trigger else None,
            "buckets": {str(b): t for b, t in self.buckets.items()},
            "clusters": sorted(self.clusters),
            "wins": list(self.wins),
            "losses": list(self.losses),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "claims": sorted(self.claims),
            "tasks": self.tasks,
            "templates": self.templates,
            "values": self.values,
            "sources": self.sources,
            "unsourced": self.unsourced,
        }

    @classmethod
    def from_state(cls, tenant: str, key: str, s: dict[str, Any]) -> "Pattern":
        trigger = s["trigger"]
        return cls(
            kind=PatternKind(s["kind"]),
            tenant=tenant,
            key=key,
            agent_type=s["agent_type"],
            actions=tuple(s["actions"]),
            cluster_id=s["cluster_id"],
            trigger=(trigger[0], trigger[1]) if trigger else None,
            buckets={int(b): list(t) for b, t in s["buckets"].items()},
            clusters=set(s["clusters"]),
            wins=deque(s["wins"]),
            losses=deque(s["losses"]),
            first_seen=s["first_seen"],
            last_seen=s["last_seen"],
            claims={LearningType(c) for c in s["claims"]},
            tasks=list(s.get("tasks", ())),
            templates=list(s.get("templates", ())),
            values=list(s.get("values", ())),
            sources=dict(s.get("sources", {})),
            unsourced=int(s.get("unsourced", 0)),
        )


def _latest(kept: list[str], text: str, cap: int) -> None:
    if text in kept:
        kept.remove(text)
    kept.append(text)
    del kept[:-cap]


@dataclass(frozen=True, slots=True)
class Evidence:
    """A pattern's counts at one moment: decayed (n, k, sums) and windowed (count, wins)."""

    n: float
    k: float
    sum_t: float
    sum_t2: float
    sum_i: float
    sum_i2: float
    count: int
    wins: int

    @property
    def losses(self) -> int:
        return self.count - self.wins

    @property
    def success_rate(self) -> float:
        return self.k / self.n if self.n > 0 else 0.0

    @property
    def mean_time(self) -> float | None:
        return self.sum_t / self.k if self.k > 0 else None
