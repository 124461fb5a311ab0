"""Workflow sessions: a tenant's events grouped per session_id until idle.

The design opens a session for each unique session_id and closes it after 5 minutes
without activity. Here the clock is the caller's: `add(event, now)` stamps the
session's activity with `now` (the service passes its clock: arrival time, so a
client's clock skew can neither close nor hold a session) or, without `now`, with
the event's timestamp (tests and offline replays). `close_idle(now)` closes every
session whose last activity is at least `idle_s` old.

Costs. Open sessions sit in an OrderedDict in order of last activity: `add` is
O(1) amortised (a dict look-up, an append, a move to the end), and `close_idle`
pops idle sessions off the front, O(closed). When activity times go back across
sessions (events stamped by skewed clocks), the order is restored by one sort at
the next `close_idle`.

Order within a session. Events are kept in timestamp order, ties in arrival
order: an event older than the session's newest is inserted by bisection (O(1)
when it is the newest, the usual case). An event that arrives after its session
closed opens a new session with the same id.

Memory bounds:

- `max_events` per session: a session that reaches it closes (`FULL`) and its id
  continues as a new session, so long sessions are learned in pieces, never lost;
- `max_open` sessions: opening one more closes the least recently active
  (`EVICTED`) first (the front of the order above, so only approximately the
  least active until the next `close_idle` when clocks disagree).

Sessions closed by those bounds wait in a queue that the next `close_idle`
returns, so closed sessions come out in one place.
"""

import math
from bisect import bisect_right
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from server.workflows.events import Event, command_of, contexts_of, seed_command
from server.workflows.outcome import Outcome, infer_outcome, parse_outcome, reported_outcome

RunKey = tuple[str, str]
"""(tenant, session_id)."""


class CloseReason(StrEnum):
    IDLE = "idle"
    EXPLICIT = "explicit"
    FULL = "full"
    EVICTED = "evicted"
    FLUSH = "flush"


@dataclass(slots=True)
class WorkflowRun:
    """A closed session: its events and commands in timestamp order."""

    tenant: str
    session_id: str
    events: list[Event]
    commands: list[str]
    contexts: list[str]
    """The commands as context tokens: a failed one marked (`events.contexts_of`)."""
    start: float
    end: float
    inferred: Outcome
    reported: Outcome | None
    closed_by: CloseReason
    learned: bool = False

    @property
    def outcome(self) -> Outcome:
        return self.inferred if self.reported is None else self.reported

    @property
    def outcome_source(self) -> str:
        return "inferred" if self.reported is None else "reported"


@dataclass(slots=True)
class _OpenSession:
    events: list[Event] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    commands: list[str | None] = field(default_factory=list)
    last_activity: float = -math.inf
    reported: Outcome | None = None

    def insert(self, event: Event) -> None:
        command, at = command_of(event), event.timestamp
        if not self.times or at >= self.times[-1]:
            self.events.append(event)
            self.times.append(at)
            self.commands.append(command)
            return
        i = bisect_right(self.times, at)
        self.events.insert(i, event)
        self.times.insert(i, at)
        self.commands.insert(i, command)


class RunGrouper:
    def __init__(
        self, idle_s: float = 300.0, *, max_events: int = 1000, max_open: int = 10_000
    ) -> None:
        if idle_s <= 0 or max_events < 1 or max_open < 1:
            raise ValueError("idle_s, max_events and max_open must be positive")
        self.idle_s = idle_s
        self.max_events = max_events
        self.max_open = max_open
        self._open: OrderedDict[RunKey, _OpenSession] = OrderedDict()
        self._ready: list[WorkflowRun] = []
        self._per_tenant: Counter[str] = Counter()
        self._latest = -math.inf
        self._ordered = True
        self.events_added = 0
        self.sessions_created = 0
        self.sessions_closed = 0

    def __len__(self) -> int:
        return len(self._open)

    def open_count(self, tenant: str) -> int:
        return self._per_tenant[tenant]

    def is_open(self, tenant: str, session_id: str) -> bool:
        return (tenant, session_id) in self._open

    def commands(self, tenant: str, session_id: str) -> list[str] | None:
        """The commands of an open session so far (None when none is open)."""
        session = self._open.get((tenant, session_id))
        if session is None:
            return None
        return [command for command in session.commands if command is not None]

    def contexts(self, tenant: str, session_id: str) -> list[str] | None:
        """The context tokens of an open session so far (None when none is open)."""
        session = self._open.get((tenant, session_id))
        if session is None:
            return None
        return contexts_of(session.events, session.commands)

    # -- adding ------------------------------------------------------------------

    def add(self, event: Event, now: float | None = None) -> None:
        """Append `event` to its open session, opening one if needed."""
        key = (event.tenant, event.session_id)
        session = self._open.get(key)
        if session is None:
            session = self._start(key)
        session.insert(event)
        self.events_added += 1
        reported = reported_outcome(event.metadata) if event.metadata else None
        if reported is not None:
            session.reported = reported
        self._touch(key, session, event.timestamp if now is None else now)
        if len(session.events) >= self.max_events:
            self._ready.append(self._finish(key, CloseReason.FULL))

    def _start(self, key: RunKey) -> _OpenSession:
        if len(self._open) >= self.max_open:
            self._ready.append(self._finish(next(iter(self._open)), CloseReason.EVICTED))
        session = self._open[key] = _OpenSession()
        self._per_tenant[key[0]] += 1
        self.sessions_created += 1
        return session

    def _touch(self, key: RunKey, session: _OpenSession, at: float) -> None:
        """Keep `_open` in order of last activity; note when `at` breaks that order."""
        if at <= session.last_activity:
            return
        session.last_activity = at
        self._open.move_to_end(key)
        if at < self._latest:
            self._ordered = False
        else:
            self._latest = at

    def report_outcome(self, tenant: str, session_id: str, outcome: Outcome) -> bool:
        """Set the real outcome of an open session; False when none is open."""
        session = self._open.get((tenant, session_id))
        if session is None:
            return False
        session.reported = outcome
        return True

    # -- closing -----------------------------------------------------------------

    def close_idle(self, now: float) -> list[WorkflowRun]:
        """Sessions idle for at least `idle_s` at `now`, plus any closed by a bound."""
        if not self._ordered:
            self._reorder()
        closed, self._ready = self._ready, []
        for key, session in self._oldest_first():
            if now - session.last_activity < self.idle_s:
                break
            closed.append(self._finish(key, CloseReason.IDLE))
        return closed

    def _oldest_first(self) -> Iterator[tuple[RunKey, _OpenSession]]:
        while self._open:
            yield next(iter(self._open.items()))

    def _reorder(self) -> None:
        ordered = sorted(self._open.items(), key=lambda item: item[1].last_activity)
        self._open = OrderedDict(ordered)
        self._ordered = True

    def close(self, tenant: str, session_id: str) -> WorkflowRun | None:
        """Close one session now (the client said it ended); None when none is open."""
        key = (tenant, session_id)
        return self._finish(key, CloseReason.EXPLICIT) if key in self._open else None

    def close_all(self) -> list[WorkflowRun]:
        """Close every open session (shutdown), with any closed by a bound."""
        closed, self._ready = self._ready, []
        closed.extend(self._finish(key, CloseReason.FLUSH) for key in list(self._open))
        return closed

    def _finish(self, key: RunKey, reason: CloseReason) -> WorkflowRun:
        session = self._open.pop(key)
        self._per_tenant[key[0]] -= 1
        if not self._per_tenant[key[0]]:
            del self._per_tenant[key[0]]
        self.sessions_closed += 1
        return WorkflowRun(
            tenant=key[0],
            session_id=key[1],
            events=session.events,
            commands=[command for command in session.commands if command is not None],
            contexts=contexts_of(session.events, session.commands),
            start=session.times[0],
            end=session.times[-1],
            inferred=infer_outcome(seed_command(e.event_type) for e in session.events),
            reported=session.reported,
            closed_by=reason,
        )

    # -- state -------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Open sessions as JSON-serialisable data (metadata must be JSON already)."""
        return {"sessions": [_session_state(key, s) for key, s in self._open.items()]}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Reopen the sessions of `to_state`, in addition to any open now."""
        for item in state.get("sessions", []):
            if not item["events"]:
                continue
            key = (str(item["tenant"]), str(item["session_id"]))
            session = self._open.get(key) or self._start(key)
            for event_type, at, metadata in item["events"]:
                session.insert(Event(key[0], key[1], event_type, float(at), dict(metadata)))
            session.reported = parse_outcome(item.get("reported"))
            self._touch(key, session, float(item["last_activity"]))


def _session_state(key: RunKey, session: _OpenSession) -> dict[str, Any]:
    return {
        "tenant": key[0],
        "session_id": key[1],
        "last_activity": session.last_activity,
        "reported": session.reported,
        "events": [[e.event_type, e.timestamp, e.metadata] for e in session.events],
    }
