"""SQL text of the knowledge base's tables (migration 5), and the rows it binds.

`tags` is stored as `,a,b,` so that `instr` finds `,a,` whole; `body` holds what no
query filters on."""

from typing import Any

import orjson

from server.db.writer import Insert
from server.kb.items import ItemRecord, VersionRecord
from server.kb.states import confidence

MAX_ID = "SELECT coalesce(max(id), 0) FROM kb_items"
_ITEM_COLUMNS = (
    "id, tenant, key, category, state, tags, version, uses, successes, origin, merged_into, "
    "created_at, updated_at, last_used_at, body"
)
UPSERT_ITEM = f"""
INSERT INTO kb_items ({_ITEM_COLUMNS}, confidence)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET category = excluded.category, state = excluded.state,
    tags = excluded.tags, version = excluded.version, uses = excluded.uses,
    successes = excluded.successes, confidence = excluded.confidence,
    merged_into = excluded.merged_into, updated_at = excluded.updated_at,
    last_used_at = excluded.last_used_at, body = excluded.body
WHERE kb_items.tenant = excluded.tenant
"""
INSERT_VERSION = Insert(
    "INSERT INTO kb_versions (tenant, item_id, version, created_at, body) VALUES", 5
)
GET_ITEM = f"SELECT {_ITEM_COLUMNS} FROM kb_items WHERE tenant = ? AND id = ?"
ALL_ITEMS = f"SELECT {_ITEM_COLUMNS} FROM kb_items WHERE tenant = ? ORDER BY id"
_VERSION_COLUMNS = "tenant, item_id, version, created_at, body"
VERSIONS = f"""
SELECT {_VERSION_COLUMNS} FROM kb_versions WHERE tenant = ? AND item_id = ? AND version > ?
ORDER BY version LIMIT ?
"""
ALL_VERSIONS = (
    f"SELECT {_VERSION_COLUMNS} FROM kb_versions WHERE tenant = ? ORDER BY item_id, version"
)
PRUNABLE = f"""
SELECT {_ITEM_COLUMNS} FROM kb_items WHERE tenant = ? AND (state = 'DEPRECATED'
    OR (state IN ('EXPERIMENTAL', 'VALIDATED') AND max(updated_at, coalesce(last_used_at, 0)) < ?))
ORDER BY id
"""
KEYS_PER_QUERY = 500


def items_by_keys(count: int) -> str:
    marks = ", ".join("?" * count)
    return f"SELECT {_ITEM_COLUMNS} FROM kb_items WHERE tenant = ? AND key IN ({marks})"


def list_items(*, category: bool, state: bool, tag: bool, after: bool) -> str:
    """Oldest first from `after` (keyset); parameters in the order of the arguments."""
    where = ["tenant = ?", *_filters(category, state, tag)]
    where += ["id > ?"] if after else []
    return f"SELECT {_ITEM_COLUMNS} FROM kb_items WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"


def best_items(*, category: bool, tag: bool) -> str:
    """VALIDATED items, most confident first."""
    where = ["tenant = ?", "state = 'VALIDATED'", *_filters(category, False, tag)]
    return (
        f"SELECT {_ITEM_COLUMNS} FROM kb_items WHERE {' AND '.join(where)} "
        "ORDER BY confidence DESC, id LIMIT ?"
    )


def candidates(*, category: bool) -> str:
    """Items consolidation compares: EXPERIMENTAL and VALIDATED, newest first."""
    where = [
        "tenant = ?",
        "state IN ('EXPERIMENTAL', 'VALIDATED')",
        *_filters(category, False, False),
    ]
    return (
        f"SELECT {_ITEM_COLUMNS} FROM kb_items WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    )


def _filters(category: bool, state: bool, tag: bool) -> list[str]:
    where = ["category = ?"] if category else []
    where += ["state = ?"] if state else []
    where += ["instr(tags, ?) > 0"] if tag else []
    return where


def tag_param(tag: str) -> str:
    return f",{tag},"


def item_values(i: ItemRecord) -> tuple[Any, ...]:
    f = i.fields
    body = orjson.dumps({"title": f.title, "content": f.content})
    return (
        i.id,
        i.tenant,
        i.key,
        f.category,
        i.state.value,
        tag_param(",".join(f.tags)) if f.tags else ",",
        i.version,
        i.uses,
        i.successes,
        i.origin,
        i.merged_into,
        i.created_at,
        i.updated_at,
        i.last_used_at,
        body,
        confidence(i.uses, i.successes),
    )


def version_values(v: VersionRecord) -> tuple[Any, ...]:
    f = v.fields
    body = {
        "category": f.category,
        "title": f.title,
        "content": f.content,
        "tags": list(f.tags),
        "state": v.state.value,
        "change_note": v.change_note,
        "merged_from": list(v.merged_from),
    }
    return (v.tenant, v.item_id, v.version, v.created_at, orjson.dumps(body))
