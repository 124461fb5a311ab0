"""SQL text of the learning engine's tables, and the rows it binds."""

from typing import Any

import orjson

from schemas import LearningType
from server.learning.claims import LearningDraft
from server.learning.clusters import Cluster
from server.learning.effects import Lift
from server.learning.miner import AnomalyDraft
from server.learning.signature import render_step, structured
from server.learning.slots import slot_names

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
