"""The knowledge base's storage: items and their version history, on the SQLite store's
writer and readers. Every row has a tenant, and every query filters by it."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.kb import KnowledgeState
from server.db.database import Fetch
from server.db.writer import Insert, Step, Writer
from server.kb.items import Fields, ItemRecord, VersionRecord
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


@dataclass(frozen=True, slots=True)
class ItemFilter:
    tenant: str
    category: str | None
    state: KnowledgeState | None
    tag: str | None
    after_id: int | None
    limit: int


class KnowledgeBaseStore:
    def __init__(self, writer: Callable[[], Writer], fetch: Fetch) -> None:
        self._writer = writer
        self._fetch = fetch
        self._next_id = 1

    async def open(self) -> None:
        self._next_id = int((await self._fetch(MAX_ID, ()))[0][0]) + 1

    def new_ids(self, count: int) -> int:
        """The first of `count` fresh item ids. Ids of a write that fails are skipped."""
        first = self._next_id
        self._next_id += count
        return first

    async def write(self, items: Sequence[ItemRecord], versions: Sequence[VersionRecord]) -> None:
        """Insert or update the items and add the versions, in one commit. Cancelling
        leaves its fate unknown."""
        steps: list[Step] = [
            (UPSERT_ITEM, [item_values(i) for i in items]),
            (INSERT_VERSION, [version_values(v) for v in versions]),
        ]
        await self._writer().submit([s for s in steps if s[1]])

    async def get(self, tenant: str, item_id: int) -> ItemRecord | None:
        rows = await self._fetch(GET_ITEM, (tenant, item_id))
        return _item(rows[0]) if rows else None

    async def by_keys(self, tenant: str, keys: Sequence[str]) -> dict[str, ItemRecord]:
        found: dict[str, ItemRecord] = {}
        for start in range(0, len(keys), KEYS_PER_QUERY):
            chunk = keys[start : start + KEYS_PER_QUERY]
            rows = await self._fetch(items_by_keys(len(chunk)), (tenant, *chunk))
            found.update((r[2], _item(r)) for r in rows)
        return found

    async def items(self, f: ItemFilter) -> list[ItemRecord]:
        params: list[Any] = [f.tenant]
        params += [f.category] if f.category is not None else []
        params += [f.state.value] if f.state is not None else []
        params += [tag_param(f.tag)] if f.tag is not None else []
        params += [f.after_id] if f.after_id is not None else []
        query = list_items(
            category=f.category is not None,
            state=f.state is not None,
            tag=f.tag is not None,
            after=f.after_id is not None,
        )
        return [_item(r) for r in await self._fetch(query, (*params, f.limit))]

    async def best(
        self, tenant: str, category: str | None, tag: str | None, limit: int
    ) -> list[ItemRecord]:
        params: list[Any] = [tenant]
        params += [category] if category is not None else []
        params += [tag_param(tag)] if tag is not None else []
        query = best_items(category=category is not None, tag=tag is not None)
        return [_item(r) for r in await self._fetch(query, (*params, limit))]

    async def candidates(self, tenant: str, category: str | None, limit: int) -> list[ItemRecord]:
        params = (tenant, category, limit) if category is not None else (tenant, limit)
        query = candidates(category=category is not None)
        return [_item(r) for r in await self._fetch(query, params)]

    async def prunable(self, tenant: str, stale_before: float) -> list[ItemRecord]:
        """DEPRECATED items, and the others not used or edited since `stale_before`."""
        return [_item(r) for r in await self._fetch(PRUNABLE, (tenant, stale_before))]

    async def versions(
        self, tenant: str, item_id: int, after: int, limit: int
    ) -> list[VersionRecord]:
        rows = await self._fetch(VERSIONS, (tenant, item_id, after, limit))
        return [_version(r) for r in rows]

    async def all_items(self, tenant: str) -> list[ItemRecord]:
        return [_item(r) for r in await self._fetch(ALL_ITEMS, (tenant,))]

    async def all_versions(self, tenant: str) -> list[VersionRecord]:
        return [_version(r) for r in await self._fetch(ALL_VERSIONS, (tenant,))]


def _item(r: Sequence[Any]) -> ItemRecord:
    """From the columns of `_ITEM_COLUMNS`."""
    body = orjson.loads(r[14])
    tags = tuple(t for t in r[5].split(",") if t)
    return ItemRecord(
        id=r[0],
        tenant=r[1],
        key=r[2],
        fields=Fields(r[3], body["title"], body["content"], tags),
        state=KnowledgeState(r[4]),
        version=r[6],
        uses=r[7],
        successes=r[8],
        origin=r[9],
        merged_into=r[10],
        created_at=r[11],
        updated_at=r[12],
        last_used_at=r[13],
    )


def _version(r: Sequence[Any]) -> VersionRecord:
    """From (tenant, item_id, version, created_at, body)."""
    b = orjson.loads(r[4])
    return VersionRecord(
        tenant=r[0],
        item_id=r[1],
        version=r[2],
        fields=Fields(b["category"], b["title"], b["content"], tuple(b["tags"])),
        state=KnowledgeState(b["state"]),
        change_note=b["change_note"],
        merged_from=tuple(b["merged_from"]),
        created_at=r[3],
    )
