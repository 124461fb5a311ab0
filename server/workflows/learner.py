"""The workflow learner: events in, sessions grouped, workflows and next commands out.

The pure core of the service, without its polling or HTTP: one
`RunGrouper` for all tenants (keys are (tenant, session_id)), and per tenant
one `WorkflowMiner` and one `NextCommandModel`, so tenants never see each other's
workflows. The caller owns the clock and the I/O:

    learner.add(event, now)                 per event, O(1): no mining here
    learner.tick(now)                       every second or so: close idle sessions,
                                            learn those with ≥ min_commands commands
    learner.patterns(tenant, ...)           GET /workflows
    learner.predict(tenant, after, k, id)   GET /workflows/next
    learner.predict_session(tenant, id, k)  the same from a session's own commands
    learner.report_outcome(tenant, id, o)   the real outcome of a session
    learner.to_state() / from_state()       persistence

A session is learned at the `tick` that closes it: with a tick a second, within
idle_s + 1 s of its last event. The learner also keeps the last commands of
recently closed sessions per session_id (a daemon keeps one id for a day, across
many workflow sessions): the prediction's session cache reads them. Defaults: the seed's (idle 5 minutes, 3 commands
to learn) and the house's (min_support 3, as `ClaimRules`); the rest bound memory
(each module says how).
"""

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.workflows.events import Event, event_from_dict, query_token
from server.workflows.mining import WorkflowMiner, WorkflowPattern
from server.workflows.outcome import Outcome
from server.workflows.predict import NextCommandModel
from server.workflows.runs import RunGrouper, RunKey, WorkflowRun
from server.workflows.stats import WorkflowStats


@dataclass(frozen=True, slots=True)
class WorkflowConfig:
    idle_s: float = 300.0
    """"Sessions become idle after 5 minutes of no activity"."""
    min_commands: int = 3
    """"Sessions with <3 commands are skipped"."""
    max_events_per_session: int = 1000
    """A session this long is learned and its id goes on as a new one."""
    max_open_sessions: int = 10_000
    """Over all tenants; the least recently active is closed to open one more."""
    min_support: int = 3
    """Sessions a pattern needs to be listed (the house's `ClaimRules.min_support`)."""
    min_length: int = 2
    max_length: int = 5
    """Pattern lengths counted: a session costs n·(max − min + 1) tallies at most."""
    epsilon: float = 0.001
    """Lossy Counting: patterns in under 0.1% of sessions may be forgotten."""
    max_tallies: int = 200_000
    """Hard cap of pattern tallies per tenant (about 150 bytes each as JSON)."""
    examples: int = 3
    recent: int = 1000
    """Learned sessions a late outcome report can still move."""
    order: int = 4
    """Commands of context + 1: order 3 and 5 score within 0.002 on the bench."""
    session_boost: float = 4.0
    session_window: int = 50
    """Commands the session cache reads, and the history kept per session_id."""
    history_sessions: int = 1000
    """Session ids whose history is kept (per learner, least recently closed out)."""
    max_contexts: int = 50_000
    max_vocabulary: int = 5_000

    def miner(self) -> WorkflowMiner:
        return WorkflowMiner(
            min_support=self.min_support,
            min_commands=self.min_commands,
            min_length=self.min_length,
            max_length=self.max_length,
            epsilon=self.epsilon,
            max_tallies=self.max_tallies,
            examples=self.examples,
            recent=self.recent,
        )

    def model(self) -> NextCommandModel:
        return NextCommandModel(
            order=self.order,
            session_boost=self.session_boost,
            session_window=self.session_window,
            max_contexts=self.max_contexts,
            max_vocabulary=self.max_vocabulary,
        )


@dataclass(slots=True)
class _Tenant:
    miner: WorkflowMiner
    model: NextCommandModel
    counters: WorkflowStats = field(default_factory=WorkflowStats)


class WorkflowLearner:
    def __init__(self, config: WorkflowConfig | None = None) -> None:
        self.config = config or WorkflowConfig()
        self.grouper = RunGrouper(
            self.config.idle_s,
            max_events=self.config.max_events_per_session,
            max_open=self.config.max_open_sessions,
        )
        self._tenants: dict[str, _Tenant] = {}
        self._history: OrderedDict[RunKey, list[str]] = OrderedDict()

    def _tenant(self, tenant: str) -> _Tenant:
        found = self._tenants.get(tenant)
        if found is None:
            found = self._tenants[tenant] = _Tenant(self.config.miner(), self.config.model())
        return found

    def tenants(self) -> list[str]:
        return sorted(self._tenants)

    # -- events ------------------------------------------------------------------

    def add(self, event: Event, now: float | None = None) -> None:
        """Group one event into its session; `now` is the arrival time (see sessions.py)."""
        counters = self._tenant(event.tenant).counters
        counters.events_processed += 1
        counters.sessions_created += not self.grouper.is_open(event.tenant, event.session_id)
        self.grouper.add(event, now)

    def add_raw(self, tenant: str, raw: Mapping[str, Any], now: float | None = None) -> Event:
        """Validate and add one POST /events item; an invalid one counts as an error
        and raises ValueError."""
        try:
            event = event_from_dict(tenant, raw)
        except ValueError:
            self._tenant(tenant).counters.errors += 1
            raise
        self.add(event, now)
        return event

    def report_outcome(self, tenant: str, session_id: str, outcome: Outcome) -> bool:
        """The real outcome of a session: applied at close when it is open, moved
        into the counts when it was learned recently; False when neither."""
        if self.grouper.report_outcome(tenant, session_id, outcome):
            return True
        state = self._tenants.get(tenant)
        if state is None or not state.miner.revise(session_id, outcome is Outcome.SUCCESS):
            return False
        state.counters.outcomes_reported += 1
        return True

    # -- closing and learning ----------------------------------------------------

    def tick(self, now: float) -> list[WorkflowRun]:
        """Close the sessions idle at `now` and learn them; each returned session
        says whether it was `learned`."""
        return self._learn_all(self.grouper.close_idle(now))

    def close(self, tenant: str, session_id: str) -> WorkflowRun | None:
        """Close and learn one session now; None when it is not open."""
        session = self.grouper.close(tenant, session_id)
        return None if session is None else self._learn_all([session])[0]

    def flush(self) -> list[WorkflowRun]:
        """Close and learn every open session (graceful shutdown)."""
        return self._learn_all(self.grouper.close_all())

    def _learn_all(self, sessions: list[WorkflowRun]) -> list[WorkflowRun]:
        for session in sessions:
            self._learn(session)
        return sessions

    def _learn(self, session: WorkflowRun) -> None:
        self._remember(session)
        state = self._tenant(session.tenant)
        counters = state.counters
        counters.sessions_closed += 1
        counters.outcomes_reported += session.reported is not None
        session.learned = state.miner.absorb(session)
        if session.learned:
            state.model.learn(session.contexts)
            counters.sessions_learned += 1
        else:
            counters.sessions_skipped += 1

    def _remember(self, session: WorkflowRun) -> None:
        """Keep the session's last commands as its id's history (bounded, LRU)."""
        key = (session.tenant, session.session_id)
        window = self.config.session_window
        self._history[key] = [*self._history.pop(key, []), *session.commands][-window:]
        while len(self._history) > self.config.history_sessions:
            self._history.popitem(last=False)

    # -- reading -----------------------------------------------------------------

    def patterns(
        self,
        tenant: str,
        min_support: int | None = None,
        limit: int | None = 50,
        *,
        min_length: int | None = None,
        closed: bool = True,
    ) -> list[WorkflowPattern]:
        state = self._tenants.get(tenant)
        if state is None:
            return []
        return state.miner.patterns(min_support, limit, min_length=min_length, closed=closed)

    def predict(
        self, tenant: str, after: Sequence[str], k: int = 3, session_id: str | None = None
    ) -> list[tuple[str, float]]:
        """Likely next commands after `after` (raw or canonical commands, a failed one
        ending in FAILED_MARK); with `session_id`, that id's history and open
        commands feed the session cache."""
        state = self._tenants.get(tenant)
        if state is None:
            return []
        history = [] if session_id is None else self.history(tenant, session_id)
        return state.model.predict([query_token(c) for c in after], k, history)

    def predict_session(
        self, tenant: str, session_id: str, k: int = 3
    ) -> list[tuple[str, float]] | None:
        """Likely next commands of a session from its open commands (none when it is
        closed) and its id's history; None when the id has neither."""
        state = self._tenants.get(tenant)
        contexts = self.grouper.contexts(tenant, session_id)
        history = self._history.get((tenant, session_id))
        if state is None or (contexts is None and history is None):
            return None
        return state.model.predict(contexts or [], k, history or [])

    def history(self, tenant: str, session_id: str) -> list[str]:
        """The id's recent commands: its closed sessions', then its open one's."""
        closed = self._history.get((tenant, session_id), [])
        return [*closed, *(self.grouper.commands(tenant, session_id) or [])]

    def stats(self, tenant: str | None = None) -> WorkflowStats:
        """A snapshot for one tenant, or summed over all of them."""
        if tenant is not None:
            return self._snapshot(tenant)
        return sum((self._snapshot(t) for t in self._tenants), WorkflowStats())

    def _snapshot(self, tenant: str) -> WorkflowStats:
        state = self._tenants.get(tenant)
        if state is None:
            return WorkflowStats()
        snapshot = WorkflowStats(
            **{name: getattr(state.counters, name) for name in WorkflowStats.COUNTERS}
        )
        snapshot.active_sessions = self.grouper.open_count(tenant)
        snapshot.patterns_learned = state.miner.frequent_count()
        snapshot.patterns_tracked = len(state.miner)
        snapshot.commands_known = state.model.vocabulary
        return snapshot

    # -- state -------------------------------------------------------------------

    def tenant_state(self, tenant: str) -> dict[str, Any]:
        """One tenant's learned state (JSON-serialisable), for a row per tenant."""
        state = self._tenant(tenant)
        return {
            "miner": state.miner.to_state(),
            "model": state.model.to_state(),
            "counters": {name: getattr(state.counters, name) for name in WorkflowStats.COUNTERS},
        }

    def restore_tenant(self, tenant: str, saved: Mapping[str, Any]) -> None:
        state = self._tenant(tenant)
        state.miner.restore(saved["miner"])
        state.model.restore(saved["model"])
        state.counters = WorkflowStats(
            **{n: int(saved["counters"].get(n, 0)) for n in WorkflowStats.COUNTERS}
        )

    def to_state(self, *, include_open: bool = True) -> dict[str, Any]:
        """Everything learned, and the open sessions unless told otherwise."""
        return {
            "version": 1,
            "tenants": {t: self.tenant_state(t) for t in self._tenants},
            "open": self.grouper.to_state() if include_open else {"sessions": []},
            "history": [[t, sid, commands] for (t, sid), commands in self._history.items()],
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], config: WorkflowConfig | None = None
    ) -> "WorkflowLearner":
        learner = cls(config)
        for tenant, saved in state["tenants"].items():
            learner.restore_tenant(tenant, saved)
        learner.grouper.restore(state.get("open", {}))
        for tenant, session_id, commands in state.get("history", []):
            learner._history[(str(tenant), str(session_id))] = [str(c) for c in commands]
        return learner
