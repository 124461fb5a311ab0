"""SQL text and the row tuples it binds, for the SQLite store."""

import orjson

from schemas import Interaction
from server.errors import InvalidRequest
from server.learning.miner import Cluster, LearningDraft, Pattern
from server.store.writer import Insert

INSERT_INTERACTIONS = Insert(
    "INSERT INTO interactions (id, tenant, agent_type, success, session_id, recorded_at, body) VALUES",
    7,
)
_INTERACTION_COLUMNS = "id, recorded_at, body"
GET_INTERACTION = f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE tenant = ? AND id = ?"
LIST_INTERACTIONS = f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?"
COMMITTED_AFTER = (
    f"SELECT tenant, {_INTERACTION_COLUMNS} FROM interactions WHERE id > ? ORDER BY id LIMIT ?"
)

INSERT_CLUSTER = "INSERT INTO clusters (id, tenant, terms, example) VALUES (?, ?, ?, ?)"
ALL_CLUSTERS = "SELECT id, tenant, terms, example FROM clusters ORDER BY id"
UPSERT_PATTERN = """
INSERT INTO patterns (tenant, key, cluster_id, agent_type, signature, attempts, successes,
    success_time, failure_time, success_evidence, failure_evidence, claims)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, key) DO UPDATE SET attempts = excluded.attempts,
    successes = excluded.successes, success_time = excluded.success_time,
    failure_time = excluded.failure_time, success_evidence = excluded.success_evidence,
    failure_evidence = excluded.failure_evidence, claims = excluded.claims
"""
ALL_PATTERNS = """
SELECT tenant, cluster_id, agent_type, signature, attempts, successes, success_time,
    failure_time, success_evidence, failure_evidence, claims FROM patterns
"""
UPSERT_LEARNING = """
INSERT INTO learnings (tenant, type, pattern_key, agent_type, statement, task_example, actions,
    evidence, support, successes, success_rate, confidence, avg_completion_time, terms,
    created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, type, pattern_key) DO UPDATE SET statement = excluded.statement,
    task_example = excluded.task_example, evidence = excluded.evidence,
    support = excluded.support, successes = excluded.successes,
    success_rate = excluded.success_rate, confidence = excluded.confidence,
    avg_completion_time = excluded.avg_completion_time, terms = excluded.terms,
    updated_at = excluded.updated_at
"""
_LEARNING_COLUMNS = """id, type, agent_type, statement, task_example, actions, evidence, support,
    successes, success_rate, confidence, avg_completion_time, created_at, updated_at"""
GET_LEARNING = f"SELECT {_LEARNING_COLUMNS} FROM learnings WHERE tenant = ? AND id = ?"

SET_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
GET_META = "SELECT value FROM meta WHERE key = ?"

INSERT_TOKEN = "INSERT INTO tokens (id, tenant, agent, hash, created_at) VALUES (?, ?, ?, ?, ?)"
_TOKEN_COLUMNS = "id, tenant, agent, created_at, revoked_at"
FIND_TOKEN = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?"
LIST_TOKENS = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?"
TOKEN_ACTIVE_IN_TENANT = "SELECT 1 FROM tokens WHERE tenant = ? AND id = ? AND revoked_at IS NULL"
REVOKE_TOKEN = "UPDATE tokens SET revoked_at = ? WHERE tenant = ? AND id = ? AND revoked_at IS NULL"
COUNT_ACTIVE_TOKENS = "SELECT count(*) FROM tokens WHERE revoked_at IS NULL"

COUNTS = """
SELECT (SELECT count(*) FROM interactions WHERE tenant = ?),
       (SELECT count(*) FROM learnings WHERE tenant = ?)
"""


def learning_candidates(kinds: int) -> str:
    marks = ", ".join("?" * kinds)
    return (
        f"SELECT {_LEARNING_COLUMNS}, terms FROM learnings WHERE tenant = ? AND confidence >= ? "
        f"AND type IN ({marks}) ORDER BY confidence DESC, id LIMIT ?"
    )


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


REPLY_NESTING = 58
"""Spare levels proved when a body is first encoded. orjson writes 254 levels and
pydantic's JSON parser (the SDK) reads 200, and a stored interaction sits 3 levels
down in a page: 254 - 58 leaves fields at most 195 deep, so every reply carrying
one stays under 200."""


def interaction_body(item: Interaction) -> bytes:
    """An interaction's fields, whole, for the `body` column.

    orjson reads JSON nested up to 1024 levels but writes only 254, so a body could
    be accepted yet never be sent back. Encoding it once inside REPLY_NESTING arrays
    proves every reply that carries it can be written and read; that costs one C call,
    where walking every value in Python to measure depth cost ~10% of WebSocket
    ingest (bench/ingest.py). Raises InvalidRequest for deeper bodies."""
    try:
        wrapped = orjson.dumps(_nest(item.__dict__), option=orjson.OPT_NAIVE_UTC)
    except orjson.JSONEncodeError:
        raise InvalidRequest(
            "JSON nested too deep to store", max_depth=253 - REPLY_NESTING
        ) from None
    return wrapped[REPLY_NESTING:-REPLY_NESTING]


def _nest(value: object) -> object:
    for _ in range(REPLY_NESTING):
        value = [value]
    return value


def interaction_values(
    interaction_id: int, tenant: str, item: Interaction, body: bytes, now: float
) -> tuple[object, ...]:
    """The row of one interaction: its fields go whole into `body` (one encode,
    few bound parameters: binding is GIL-held work on the writer thread); the
    columns beside it are the ones queries filter on."""
    return (interaction_id, tenant, item.agent_type, item.success, item.session_id, now, body)


def cluster_values(c: Cluster) -> tuple[object, ...]:
    return (c.id, c.tenant, _json(sorted(c.terms)), c.example)


def pattern_values(p: Pattern) -> tuple[object, ...]:
    return (
        p.tenant,
        p.key,
        p.cluster_id,
        p.agent_type,
        _json(p.signature),
        p.attempts,
        p.successes,
        p.success_time,
        p.failure_time,
        _json(list(p.success_evidence)),
        _json(list(p.failure_evidence)),
        _json(sorted(p.claims)),
    )


def learning_values(d: LearningDraft, now: float) -> tuple[object, ...]:
    return (
        d.tenant,
        d.type.value,
        d.pattern_key,
        d.agent_type,
        d.statement,
        d.task_example,
        _json(d.actions),
        _json(d.evidence),
        d.support,
        d.successes,
        d.success_rate,
        d.confidence,
        d.avg_completion_time,
        _json(sorted(d.terms)),
        now,
        now,
    )
