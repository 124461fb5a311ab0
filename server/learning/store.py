"""The learning engine's storage: clusters, patterns, behaviour models, learnings,
their full-text index and anomalies, on the SQLite store's writer and readers."""

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from schemas import Learning, LearningType
from schemas.anomalies import Anomaly
from server.core.clock import utc
from server.core.stats import confidence_level
from server.db.sql import GET_META, SET_META
from server.db.writer import Step, Writer
from server.learning import store_sql as sql
from server.learning.clusters import Cluster
from server.learning.index import Entry
from server.learning.miner import FoldResult, MiningState
from server.learning.patterns import Pattern

Fetch = Callable[[str, tuple[Any, ...]], Awaitable[list[sqlite3.Row]]]


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
            (sql.INSERT_CLUSTER, [sql.cluster_values(c) for c in fold.clusters]),
            (sql.UPSERT_PATTERN, fold.patterns),
            (sql.UPSERT_BEHAVIOUR, [(t, a, orjson.dumps(s)) for t, a, s in fold.behaviours]),
            (sql.UPSERT_LEARNING, [sql.learning_values(d, now) for d in fold.learnings]),
            (sql.INSERT_DOCUMENT, [(d.id, d.document) for d in fold.learnings if d.new]),
            (sql.INSERT_ANOMALY, [sql.anomaly_values(a) for a in fold.anomalies]),
            (sql.RETIRE_LEARNING, [(now, tenant, i) for tenant, i in fold.retired]),
            (sql.UPSERT_EFFECT, [(t, s, orjson.dumps(v)) for t, s, v in fold.effects]),
        ]
        if fold.folded:
            steps.append((SET_META, [("extractor_cursor", str(fold.cursor))]))
        await self._writer().submit([s for s in steps if s[1]])

    async def mining_state(self) -> MiningState:
        clusters = [_cluster(r) for r in await self._fetch(sql.ALL_CLUSTERS, ())]
        patterns = [
            Pattern.from_state(r[0], r[1], orjson.loads(r[2]))
            for r in await self._fetch(sql.ALL_PATTERNS, ())
        ]
        behaviours = [
            (r[0], r[1], orjson.loads(r[2])) for r in await self._fetch(sql.ALL_BEHAVIOURS, ())
        ]
        ids = {
            (LearningType(r[0]), r[1], r[2]): r[3] for r in await self._fetch(sql.LEARNING_IDS, ())
        }
        last = (await self._fetch(sql.LAST_IDS, ()))[0]
        meta = await self._fetch(GET_META, ("extractor_cursor",))
        cursor = int(meta[0][0]) if meta else 0
        effects = [(r[0], r[1], orjson.loads(r[2])) for r in await self._fetch(sql.ALL_EFFECTS, ())]
        return MiningState(clusters, patterns, behaviours, ids, last[0], last[1], cursor, effects)

    async def tally(self, tenant: str, subject: str) -> list[int] | None:
        """A feedback tally as last committed (`effects.Feedback`)."""
        rows = await self._fetch(sql.GET_EFFECT, (tenant, subject))
        return [int(v) for v in orjson.loads(rows[0][0])] if rows else None

    async def active(self) -> list[tuple[str, Entry]]:
        """(tenant, index entry) of every active learning."""
        rows = await self._fetch(sql.ACTIVE_LEARNINGS, ())
        return [(r[0], _entry(r)) for r in rows]

    async def get(self, tenant: str, learning_id: int) -> Learning | None:
        rows = await self._fetch(sql.GET_LEARNING, (tenant, learning_id))
        return learning(rows[0]) if rows else None

    async def count_active(self, tenant: str, kind: LearningType) -> int:
        rows = await self._fetch(sql.COUNT_ACTIVE_OF_TYPE, (tenant, kind.value))
        return int(rows[0][0])

    async def by_ids(self, tenant: str, ids: Sequence[int]) -> dict[int, Learning]:
        if not ids:
            return {}
        rows = await self._fetch(sql.learnings_by_ids(len(ids)), (tenant, *ids))
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
        query = sql.top_learnings(kind is not None, since is not None)
        return [learning(r) for r in await self._fetch(query, (*params, limit))]

    async def search(self, tenant: str, match: str, limit: int) -> list[tuple[int, float]]:
        """(id, BM25) of active learnings matching an FTS5 query; FTS5's bm25() is
        negated so that higher is better."""
        rows = await self._fetch(sql.SEARCH, (match, tenant, limit))
        return [(r[0], -r[1]) for r in rows]

    async def match_counts(self, matches: Sequence[str]) -> list[int]:
        """How many documents (of every tenant) match each FTS5 query: what a
        search for it would read. Safe to cancel: it only reads."""
        if not matches:
            return []
        rows = await self._fetch(sql.match_counts(len(matches)), tuple(matches))
        return [int(n) for n in rows[0]]

    async def anomalies(self, f: AnomalyFilter) -> list[Anomaly]:
        params: list[Any] = [f.tenant, f.min_score]
        params += [f.agent_type] if f.agent_type else []
        params += [f.since] if f.since is not None else []
        params += [f.before_id] if f.before_id is not None else []
        query = sql.anomalies(bool(f.agent_type), f.since is not None, f.before_id is not None)
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
