"""Knowledge items and their versions as the service and the store pass them around.

Records are immutable: every change makes a new record, and a change of the versioned
fields also makes the `VersionRecord` that the history keeps.
"""

import hashlib
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson

from schemas.kb import KnowledgeState
from server.kb.states import StateRules, next_state

Origin = Literal["api", "import", "hub"]
MAX_NOTE = 2000
"""The longest change note an export may carry (schemas.kb.ChangeNote)."""


def clip_note(note: str) -> str:
    """Notes the server writes stay importable: within the limit a document checks."""
    return note if len(note) <= MAX_NOTE else note[: MAX_NOTE - 1] + "…"


@dataclass(frozen=True, slots=True)
class Fields:
    """The versioned part of an item: what a version records and the content hash covers."""

    category: str
    title: str
    content: dict[str, Any]
    tags: tuple[str, ...]
    """Sorted and distinct, so that equal tag sets hash equal."""

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON (sorted keys, compact) of the four fields."""
        canonical = {
            "category": self.category,
            "title": self.title,
            "content": self.content,
            "tags": list(self.tags),
        }
        return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def fields_of(category: str, title: str, content: dict[str, Any], tags: list[str]) -> Fields:
    return Fields(category, title, content, tuple(sorted(set(tags))))


@dataclass(frozen=True, slots=True)
class VersionRecord:
    tenant: str
    item_id: int
    version: int
    fields: Fields
    state: KnowledgeState
    change_note: str
    merged_from: tuple[int, ...]
    created_at: float


@dataclass(frozen=True, slots=True)
class ItemRecord:
    id: int
    tenant: str
    key: str
    fields: Fields
    state: KnowledgeState
    version: int
    uses: int
    successes: int
    origin: Origin
    merged_into: int | None
    created_at: float
    updated_at: float
    last_used_at: float | None

    def first_version(self, note: str) -> VersionRecord:
        return self._version(note, ())

    def revise(
        self, fields: Fields, note: str, now: float, merged_from: tuple[int, ...] = ()
    ) -> "tuple[ItemRecord, VersionRecord]":
        """The item at its next version, and that version."""
        item = replace(self, fields=fields, version=self.version + 1, updated_at=now)
        return item, item._version(note, merged_from)

    def archive(
        self, note: str, now: float, merged_into: int | None = None
    ) -> "tuple[ItemRecord, VersionRecord]":
        """Archived at a new version whose note says why: the history shows the end too."""
        item = replace(self, state=KnowledgeState.ARCHIVED, merged_into=merged_into)
        return item.revise(self.fields, note, now)

    def used(self, success: bool, now: float, rules: StateRules) -> "ItemRecord":
        uses, successes = self.uses + 1, self.successes + int(success)
        state = next_state(self.state, uses, successes, rules)
        return replace(self, uses=uses, successes=successes, state=state, last_used_at=now)

    def _version(self, note: str, merged_from: tuple[int, ...]) -> VersionRecord:
        return VersionRecord(
            self.tenant,
            self.id,
            self.version,
            self.fields,
            self.state,
            note,
            merged_from,
            self.updated_at,
        )
