"""The learning engine's storage: interactions, and what is mined from them
(clusters, patterns, effects, behaviour models, learnings, their full-text index
and anomalies), on the database's writer and readers."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from schemas import Interaction, Learning, LearningType, StoredInteraction
from schemas.anomalies import Anomaly
from server.core.clock import Clock, utc
from server.core.stats import confidence_level
from server.db.database import GET_META, SET_META, Fetch
from server.db.writer import Built, Insert, Step, Writer
from server.learning.claims import LearningDraft
from server.learning.clusters import Cluster
from server.learning.committed import (
    CommittedBatch,
    committed_batches,
    interaction_body,
    interaction_values,
    stored_interaction,
)
from server.learning.effects import Lift
from server.learning.index import Entry
from server.learning.miner import AnomalyDraft, FoldResult, MiningState
from server.learning.patterns import Pattern
from server.learning.signature import render_step, structured
from server.learning.slots import slot_names

INSERT_INTERACTIONS = Insert(
    "INSERT INTO interactions (id, tenant, agent_type, success, session_id, recorded_at, body) VALUES",
    7,
)
_INTERACTION_COLUMNS = "id, recorded_at, body"
GET_INTERACTION = f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE tenant = ? AND id = ?"
LIST_INTERACTIONS = f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?"
SUCCESSFUL_SINCE = (
    f"SELECT {_INTERACTION_COLUMNS} FROM interactions "
    "WHERE tenant = ? AND success = 1 AND recorded_at >= ? ORDER BY id DESC LIMIT ?"
)
# json_extract reads the task in SQLite's thread, without the GIL; SQLite 3.40
# refuses a BLOB there (3.45 would read it as JSONB), hence the CAST
COMMITTED_AFTER = (
    f"SELECT tenant, {_INTERACTION_COLUMNS}, json_extract(CAST(body AS TEXT), '$.task_description') "
    "FROM interactions WHERE id > ? ORDER BY id LIMIT ?"
)
LAST_INTERACTION_ID = "SELECT coalesce(max(id), 0) FROM interactions"
COUNTS = """
SELECT (SELECT count(*) FROM interactions WHERE tenant = ?),
       (SELECT count(*) FROM learnings WHERE tenant = ? AND status = 'active')
"""
INSERT_CLUSTER = "INSERT INTO clusters (id, tenant, terms, example, vector) VALUES (?, ?, ?, ?, ?)"
ALL_CLUSTERS = "SELECT id, tenant, terms, example, vector FROM clusters ORDER BY id"
UPSERT_PATTERN = """
INSERT INTO patterns (tenant, key, state) VALUES (?, ?, ?)
ON CONFLICT (tenant, key) DO UPDATE SET state = excluded.state
"""
ALL_PATTERNS = "SELECT tenant, key, state FROM patterns"
UPSERT_EFFECT = """
INSERT INTO effects (tenant, subject, state) VALUES (?, ?, ?)
ON CONFLICT (tenant, subject) DO UPDATE SET state = excluded.state
"""
ALL_EFFECTS = "SELECT tenant, subject, state FROM effects"
GET_EFFECT = "SELECT state FROM effects WHERE tenant = ? AND subject = ?"
UPSERT_BEHAVIOUR = """
INSERT INTO behaviours (tenant, agent_type, state) VALUES (?, ?, ?)
ON CONFLICT (tenant, agent_type) DO UPDATE SET state = excluded.state
"""
ALL_BEHAVIOURS = "SELECT tenant, agent_type, state FROM behaviours"
UPSERT_LEARNING = """
INSERT INTO learnings (id, tenant, type, key, status, agent_type, confidence, last_seen,
    created_at, updated_at, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, agent_type = excluded.agent_type,
    confidence = excluded.confidence, last_seen = excluded.last_seen,
    updated_at = excluded.updated_at, body = excluded.body
"""
RETIRE_LEARNING = (
    "UPDATE learnings SET status = 'retired', updated_at = ? WHERE tenant = ? AND id = ?"
)
COUNT_ACTIVE_OF_TYPE = (
    "SELECT count(*) FROM learnings WHERE tenant = ? AND status = 'active' AND type = ?"
)
INSERT_DOCUMENT = "INSERT INTO learnings_fts (rowid, document) VALUES (?, ?)"
LEARNING_IDS = "SELECT type, tenant, key, id FROM learnings"
LAST_IDS = "SELECT (SELECT coalesce(max(id), 0) FROM learnings), (SELECT coalesce(max(id), 0) FROM anomalies)"
LEARNING_COLUMNS = (
    "id, type, status, agent_type, confidence, last_seen, created_at, updated_at, body"
)
ACTIVE_LEARNINGS = f"SELECT tenant, {LEARNING_COLUMNS} FROM learnings WHERE status = 'active'"
GET_LEARNING = f"SELECT {LEARNING_COLUMNS} FROM learnings WHERE tenant = ? AND id = ?"
SEARCH = """
SELECT l.id, bm25(learnings_fts) FROM learnings_fts JOIN learnings l ON l.id = learnings_fts.rowid
WHERE learnings_fts MATCH ? AND l.tenant = ? AND l.status = 'active'
ORDER BY bm25(learnings_fts) LIMIT ?
"""


def match_counts(count: int) -> str:
    """One row: for each of `count` FTS5 queries, how many documents match it."""
    each = "(SELECT count(*) FROM learnings_fts WHERE learnings_fts MATCH ?)"
    return "SELECT " + ", ".join([each] * count)


INSERT_ANOMALY = (
    "INSERT INTO anomalies (id, tenant, agent_type, score, seen_at, body) VALUES (?, ?, ?, ?, ?, ?)"
)


def learnings_by_ids(count: int) -> str:
    marks = ", ".join("?" * count)
    # `+tenant` keeps the planner off learnings_by_confidence: with no statistics it
    # took that index for an id list and read every learning of the tenant (30 ms
    # at 128k learnings, where the primary key finds ten rows in microseconds).
    return f"SELECT {LEARNING_COLUMNS} FROM learnings WHERE +tenant = ? AND id IN ({marks})"


def top_learnings(kind: bool, since: bool) -> str:
    where = ["tenant = ?", "status = 'active'", "confidence >= ?"]
    where += ["type = ?"] if kind else []
    where += ["last_seen >= ?"] if since else []
    return (
        f"SELECT {LEARNING_COLUMNS} FROM learnings WHERE {' AND '.join(where)} "
        "ORDER BY confidence DESC, id LIMIT ?"
    )


def anomalies(agent_type: bool, since: bool, before: bool) -> str:
    where = ["tenant = ?", "score >= ?"]
    where += ["agent_type = ?"] if agent_type else []
    where += ["seen_at >= ?"] if since else []
    where += ["id < ?"] if before else []
    return (
        "SELECT id, agent_type, score, seen_at, body FROM anomalies "
        f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    )


def _json(value: object) -> bytes:
    return orjson.dumps(value)


def cluster_values(c: Cluster) -> tuple[object, ...]:
    vector = c.vector.tobytes() if c.vector is not None else None
    return (c.id, c.tenant, _json(sorted(c.terms)).decode(), c.example, vector)


def learning_values(d: LearningDraft, now: float) -> tuple[object, ...]:
    return (
        d.id,
        d.tenant,
        d.type.value,
        d.key,
        d.status.value,
        d.agent_type,
        d.confidence,
        d.last_seen,
        now,
        now,
        _json(learning_body(d)),
    )


def _steps(d: LearningDraft) -> list[Any]:
    """The steps as JSON: a mined step is its action's canonical JSON already
    (`signature.step_of`), so it goes in as it is; a WORKFLOW's are shell commands."""
    if d.type is LearningType.WORKFLOW:
        return [structured(a) for a in d.actions]
    return [orjson.Fragment(a) for a in d.actions]


def effect_body(measured: Lift | None) -> dict[str, Any] | None:
    if measured is None:
        return None
    return {
        "applied": measured.applied.n,
        "applied_successes": measured.applied.k,
        "compared": measured.compared.n,
        "compared_successes": measured.compared.k,
        "lift": measured.lift,
        "low": measured.low,
        "high": measured.high,
    }


def learning_body(d: LearningDraft) -> dict[str, Any]:
    """The fields no query filters on, kept whole in `body`."""
    gain = d.gain
    return {
        "statement": d.statement,
        "task_example": d.task_example,
        "actions": [render_step(a) for a in d.actions],
        "steps": _steps(d),
        "slots": slot_names(d.actions),
        "avoid": d.avoid,
        "evidence_tasks": d.tasks,
        "effect": effect_body(d.effect),
        "effect_weight": d.effect_weight,
        "task_templates": d.templates,
        "template_shares": d.template_shares,
        "trigger": (
            {"action": render_step(d.trigger[0]), "error": d.trigger[1]} if d.trigger else None
        ),
        "gain": (
            {
                "metric": gain.metric,
                "value": gain.value,
                "achieved": gain.achieved,
                "baseline": gain.baseline,
            }
            if gain
            else None
        ),
        "scope": {"clusters": len(d.clusters), "agent_types": d.agent_types},
        "clusters": d.clusters,
        "evidence": d.evidence,
        "support": d.support,
        "successes": d.successes,
        "success_rate": d.success_rate,
        "avg_completion_time": d.avg_completion_time,
        "first_seen": d.first_seen,
    }


def anomaly_values(a: AnomalyDraft) -> tuple[object, ...]:
    reasons = [{"kind": r.kind, "detail": r.detail, "score": r.score} for r in a.reasons]
    body = {
        "interaction_id": a.interaction_id,
        "task_description": a.task_description,
        "reasons": reasons,
    }
    return (a.id, a.tenant, a.agent_type, a.score, a.at, _json(body))


@dataclass(frozen=True, slots=True)
class TenantCounts:
    interactions: int
    learnings: int


class InteractionStore:
    """Interactions, written through the group-committing writer; listeners hear
    of each batch right after its commit."""

    def __init__(self, writer: Callable[[], Writer], fetch: Fetch, clock: Clock) -> None:
        self._writer = writer
        self._fetch = fetch
        self._clock = clock
        self._next_id = 1
        self._listeners: list[Callable[[CommittedBatch], None]] = []

    async def open(self) -> None:
        rows = await self._fetch(LAST_INTERACTION_ID, ())
        self._next_id = int(rows[0][0]) + 1

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    def on_commit(self, listener: Callable[[CommittedBatch], None]) -> None:
        """Call `listener` with every batch of interactions, right after its commit
        and in commit (so id) order. Listeners must be quick and must not raise."""
        self._listeners.append(listener)

    async def insert(self, tenant: str, items: list[Interaction]) -> list[int]:
        """Insert atomically. Ids are assigned once the write has a place in the
        queue, so they grow in commit order (the extractor's cursor relies on it).
        Cancelling leaves the insert's fate unknown."""
        bodies = [interaction_body(item) for item in items]
        first = 0

        # annotated with an alias: a subscripted annotation would build its generic
        # aliases anew on every call (~0.6 µs, ~1.5% of the server's HTTP ingest CPU)
        def build() -> Built:
            nonlocal first
            first = self._next_id
            self._next_id += len(items)
            now = self._clock.now()
            rows = [
                interaction_values(first + n, tenant, item, body, now)
                for n, (item, body) in enumerate(zip(items, bodies, strict=True))
            ]
            batch = CommittedBatch(tenant, first, now, items, bodies)
            return [(INSERT_INTERACTIONS, rows)], lambda: self._notify(batch)

        await self._writer().submit_built(build)
        return list(range(first, first + len(items)))

    def _notify(self, batch: CommittedBatch) -> None:
        for listener in self._listeners:
            listener(batch)

    async def get(self, tenant: str, interaction_id: int) -> StoredInteraction | None:
        rows = await self._fetch(GET_INTERACTION, (tenant, interaction_id))
        return stored_interaction(rows[0]) if rows else None

    async def page(self, tenant: str, after_id: int, limit: int) -> list[StoredInteraction]:
        rows = await self._fetch(LIST_INTERACTIONS, (tenant, after_id, limit))
        return [stored_interaction(r) for r in rows]

    async def successful(self, tenant: str, since: float, limit: int) -> list[StoredInteraction]:
        """The tenant's successful interactions recorded since `since`, newest first."""
        rows = await self._fetch(SUCCESSFUL_SINCE, (tenant, since, limit))
        return [stored_interaction(r) for r in rows]

    async def committed_after(self, after_id: int, limit: int) -> list[CommittedBatch]:
        rows = await self._fetch(COMMITTED_AFTER, (after_id, limit))
        return committed_batches(rows)

    async def counts(self, tenant: str) -> TenantCounts:
        rows = await self._fetch(COUNTS, (tenant, tenant))
        return TenantCounts(int(rows[0][0]), int(rows[0][1]))


@dataclass(frozen=True, slots=True)
class AnomalyFilter:
    tenant: str
    agent_type: str | None
    since: float | None
    min_score: float
    before_id: int | None
    limit: int


class LearningStore:
    def __init__(self, writer: Callable[[], Writer], fetch: Fetch) -> None:
        self._writer = writer
        self._fetch = fetch

    async def save_fold(self, fold: FoldResult, now: float) -> None:
        """Persist a fold's clusters, patterns, models, learnings, full-text
        documents of new learnings, anomalies, retirements and cursor in one commit."""
        steps: list[Step] = [
            (INSERT_CLUSTER, [cluster_values(c) for c in fold.clusters]),
            (UPSERT_PATTERN, fold.patterns),
            (UPSERT_BEHAVIOUR, [(t, a, orjson.dumps(s)) for t, a, s in fold.behaviours]),
            (UPSERT_LEARNING, [learning_values(d, now) for d in fold.learnings]),
            (INSERT_DOCUMENT, [(d.id, d.document) for d in fold.learnings if d.new]),
            (INSERT_ANOMALY, [anomaly_values(a) for a in fold.anomalies]),
            (RETIRE_LEARNING, [(now, tenant, i) for tenant, i in fold.retired]),
            (UPSERT_EFFECT, [(t, s, orjson.dumps(v)) for t, s, v in fold.effects]),
        ]
        if fold.folded:
            steps.append((SET_META, [("extractor_cursor", str(fold.cursor))]))
        await self._writer().submit([s for s in steps if s[1]])

    async def mining_state(self) -> MiningState:
        clusters = [_cluster(r) for r in await self._fetch(ALL_CLUSTERS, ())]
        patterns = [
            Pattern.from_state(r[0], r[1], orjson.loads(r[2]))
            for r in await self._fetch(ALL_PATTERNS, ())
        ]
        behaviours = [
            (r[0], r[1], orjson.loads(r[2])) for r in await self._fetch(ALL_BEHAVIOURS, ())
        ]
        ids = {(LearningType(r[0]), r[1], r[2]): r[3] for r in await self._fetch(LEARNING_IDS, ())}
        last = (await self._fetch(LAST_IDS, ()))[0]
        meta = await self._fetch(GET_META, ("extractor_cursor",))
        cursor = int(meta[0][0]) if meta else 0
        effects = [(r[0], r[1], orjson.loads(r[2])) for r in await self._fetch(ALL_EFFECTS, ())]
        return MiningState(clusters, patterns, behaviours, ids, last[0], last[1], cursor, effects)

    async def tally(self, tenant: str, subject: str) -> list[int] | None:
        """A feedback tally as last committed (`effects.Feedback`)."""
        rows = await self._fetch(GET_EFFECT, (tenant, subject))
        return [int(v) for v in orjson.loads(rows[0][0])] if rows else None

    async def active(self) -> list[tuple[str, Entry]]:
        """(tenant, index entry) of every active learning."""
        rows = await self._fetch(ACTIVE_LEARNINGS, ())
        return [(r[0], _entry(r)) for r in rows]

    async def get(self, tenant: str, learning_id: int) -> Learning | None:
        rows = await self._fetch(GET_LEARNING, (tenant, learning_id))
        return learning(rows[0]) if rows else None

    async def count_active(self, tenant: str, kind: LearningType) -> int:
        rows = await self._fetch(COUNT_ACTIVE_OF_TYPE, (tenant, kind.value))
        return int(rows[0][0])

    async def by_ids(self, tenant: str, ids: Sequence[int]) -> dict[int, Learning]:
        if not ids:
            return {}
        rows = await self._fetch(learnings_by_ids(len(ids)), (tenant, *ids))
        return {r[0]: learning(r) for r in rows}

    async def top(
        self,
        tenant: str,
        min_confidence: float,
        kind: LearningType | None,
        since: float | None,
        limit: int,
    ) -> list[Learning]:
        """Active learnings by confidence, highest first."""
        params: list[Any] = [tenant, min_confidence]
        params += [kind.value] if kind else []
        params += [since] if since is not None else []
        query = top_learnings(kind is not None, since is not None)
        return [learning(r) for r in await self._fetch(query, (*params, limit))]

    async def search(self, tenant: str, match: str, limit: int) -> list[tuple[int, float]]:
        """(id, BM25) of active learnings matching an FTS5 query; FTS5's bm25() is
        negated so that higher is better."""
        rows = await self._fetch(SEARCH, (match, tenant, limit))
        return [(r[0], -r[1]) for r in rows]

    async def match_counts(self, matches: Sequence[str]) -> list[int]:
        """How many documents (of every tenant) match each FTS5 query: what a
        search for it would read. Safe to cancel: it only reads."""
        if not matches:
            return []
        rows = await self._fetch(match_counts(len(matches)), tuple(matches))
        return [int(n) for n in rows[0]]

    async def anomalies(self, f: AnomalyFilter) -> list[Anomaly]:
        params: list[Any] = [f.tenant, f.min_score]
        params += [f.agent_type] if f.agent_type else []
        params += [f.since] if f.since is not None else []
        params += [f.before_id] if f.before_id is not None else []
        query = anomalies(bool(f.agent_type), f.since is not None, f.before_id is not None)
        return [_anomaly(r) for r in await self._fetch(query, (*params, f.limit))]


def learning(r: Sequence[Any]) -> Learning:
    """Rebuild a learning from (id, type, status, agent_type, confidence, last_seen,
    created_at, updated_at, body)."""
    body = orjson.loads(r[8])
    del body["clusters"]
    body["first_seen"] = utc(body["first_seen"])
    return Learning.model_validate(
        {
            "id": r[0],
            "type": r[1],
            "status": r[2],
            "agent_type": r[3],
            "confidence": r[4],
            "confidence_level": confidence_level(r[4]),
            "last_seen": utc(r[5]),
            "created_at": utc(r[6]),
            "updated_at": utc(r[7]),
            **body,
        }
    )


def _entry(r: Sequence[Any]) -> Entry:
    body = orjson.loads(r[9])
    clusters, tasks = tuple(body["clusters"]), tuple(body.get("evidence_tasks", ()))
    templates = tuple(body.get("task_templates", ()))
    weight = float(body.get("effect_weight", 1.0))
    shares = tuple(body.get("template_shares", ()))
    return Entry(
        r[1], LearningType(r[2]), r[4], r[5], r[6], clusters, tasks, templates, weight, shares
    )


def _anomaly(r: Sequence[Any]) -> Anomaly:
    body = orjson.loads(r[4])
    return Anomaly.model_validate(
        {"id": r[0], "agent_type": r[1], "score": r[2], "seen_at": utc(r[3]), **body}
    )


def _cluster(r: Sequence[Any]) -> Cluster:
    return Cluster(r[0], r[1], frozenset(orjson.loads(r[2])), r[3], _vector(r[4]))


def _vector(blob: bytes | None) -> Any:
    """The stored embedding, or None without numpy (the `ml` extra): the cluster is
    then matched by its terms."""
    if blob is None:
        return None
    try:
        import numpy as np
    except ImportError:
        return None
    return np.frombuffer(blob, dtype=np.float32).copy()
