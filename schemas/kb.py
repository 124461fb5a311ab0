"""The knowledge base: versioned,
stateful knowledge items, their usage, export and import, pruning, consolidation, and
promotion of hub messages. A knowledge item is not a hub message (schemas/hub.py),
though a well-received hub message can be promoted into one."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    WithJsonSchema,
    model_validator,
)

from schemas.common import AwareTimestamp, Cursor, Id, ListQuery, Strict
from schemas.hub import Lax, Tag

MAX_CONTENT_BYTES = 64 << 10
"""Largest item content, as compact JSON."""
MAX_TAGS = 32
MAX_EXPORT_ITEMS = 1_000_000
MAX_VERSIONS = 1_000_000
"""Generous on purpose: whatever a store exports must import again. The body size limit
(Settings.max_body_bytes) is what bounds a document."""


class KnowledgeState(StrEnum):
    """See server/kb/states.py for the rule that moves items between states."""

    EXPERIMENTAL = "EXPERIMENTAL"
    VALIDATED = "VALIDATED"
    DEPRECATED = "DEPRECATED"
    ARCHIVED = "ARCHIVED"


def _bounded_object(value: Any) -> Any:
    if type(value) is not dict:
        raise ValueError("must be a JSON object")
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        raise ValueError("must be plain JSON") from None
    if size > MAX_CONTENT_BYTES:
        raise ValueError(f"must be at most {MAX_CONTENT_BYTES} bytes as JSON")
    return value


Content = Annotated[Any, AfterValidator(_bounded_object), WithJsonSchema({"type": "object"})]
"""A JSON object of at most 64 KiB."""
Category = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ItemKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""An item's stable identity across stores: export and import match items by it."""
Title = Annotated[str, Field(min_length=1, max_length=512, pattern=r"\S")]
ChangeNote = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
"""What changed and why; blank notes are refused."""
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
ContentHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
LaxTime = AwareTimestamp
"""Documents name their time zone: a naive time would be read in the server's."""
LaxState = Annotated[KnowledgeState, Lax]


# -- requests --------------------------------------------------------------------------


class KnowledgeCreate(Strict):
    """A new item; it starts EXPERIMENTAL with version 1. Without `key`, one is drawn."""

    category: Category
    title: Title
    content: Content = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    key: ItemKey | None = None
    change_note: ChangeNote = "created"


class KnowledgeUpdate(Strict):
    """A new version: the fields given replace the current ones. With `expected_version`,
    the update is refused (409) unless the item is still at that version."""

    change_note: ChangeNote
    category: Category | None = None
    title: Title | None = None
    content: Content | None = None
    tags: Tags | None = None
    expected_version: int | None = Field(default=None, ge=1, le=2**62)

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if (self.category, self.title, self.content, self.tags) == (None, None, None, None):
            raise ValueError("give at least one of category, title, content, tags")
        return self


class UsageReport(Strict):
    """One use of an item: an agent applied it to a task, which succeeded or not."""

    success: bool


class KnowledgeListQuery(Strict):
    """GET /kb/items; values arrive as text, so this one is lax. Oldest first, keyset pages."""

    model_config = Strict.model_config | {"strict": False}

    category: Category | None = None
    state: KnowledgeState | None = None
    tag: Tag | None = None
    limit: int = Field(default=100, ge=1, le=500)
    cursor: Cursor | None = None


class ValidatedQuery(Strict):
    """GET /kb/validated: VALIDATED items, oldest first, keyset pages."""

    model_config = Strict.model_config | {"strict": False}

    category: Category | None = None
    tag: Tag | None = None
    limit: int = Field(default=100, ge=1, le=500)
    cursor: Cursor | None = None


class BestPracticesQuery(Strict):
    """GET /kb/best-practices: the most confidently validated items."""

    model_config = Strict.model_config | {"strict": False}

    category: Category | None = None
    tag: Tag | None = None
    limit: int = Field(default=10, ge=1, le=100)


class VersionsQuery(ListQuery):
    """GET /kb/items/{id}/versions: oldest version first."""


class PruneRequest(Strict):
    stale_days: float = Field(
        default=90.0, gt=0, le=36_500, description="Archive items unused and unedited this long."
    )


class ConsolidateRequest(Strict):
    threshold: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Similarity at which two items are duplicates; default by measure.",
    )
    category: Category | None = Field(default=None, description="Only this category.")


class PromoteRequest(Strict):
    message_id: Id = Field(description="The hub message to promote.")
    category: Category


# -- portable documents (export replies, import bodies) --------------------------------


class ExportedVersion(Strict):
    version: int = Field(ge=1, le=2**62)
    category: Category
    title: Title
    content: Content
    tags: Tags
    state: LaxState
    change_note: ChangeNote
    merged_from: list[ItemKey] = Field(default_factory=list, max_length=MAX_EXPORT_ITEMS)
    created_at: LaxTime
    content_hash: ContentHash


class ExportedItem(Strict):
    """One item with its whole history. Ids are local to a store: items and merge
    pointers are named by `key`."""

    key: ItemKey
    category: Category
    title: Title
    content: Content
    tags: Tags
    state: LaxState
    uses: int = Field(ge=0, le=2**62)
    successes: int = Field(ge=0, le=2**62)
    merged_into: ItemKey | None = None
    created_at: LaxTime
    updated_at: LaxTime
    last_used_at: LaxTime | None = None
    content_hash: ContentHash
    versions: list[ExportedVersion] = Field(min_length=1, max_length=MAX_VERSIONS)

    @model_validator(mode="after")
    def _successes_within_uses(self) -> Self:
        if self.successes > self.uses:
            raise ValueError("successes cannot exceed uses")
        return self


class KnowledgeExport(Strict):
    """The export document, and the import body. `content_hash` is SHA-256 of the
    canonical JSON of (category, title, content, tags): see server/kb/portable.py."""

    format: Literal["kaizen.kb"] = "kaizen.kb"
    schema_version: Literal[1] = 1
    exported_at: LaxTime
    items: list[ExportedItem] = Field(max_length=MAX_EXPORT_ITEMS)


# -- replies ---------------------------------------------------------------------------


class KnowledgeItem(BaseModel):
    id: int
    key: str
    category: str
    title: str
    content: dict[str, Any]
    tags: list[str]
    state: KnowledgeState
    version: int
    uses: int
    successes: int
    success_rate: float | None = Field(description="successes / uses; null before any use.")
    confidence: float = Field(description="Wilson lower bound of the success rate (95%).")
    origin: Literal["api", "import", "hub"]
    merged_into: int | None = Field(description="The item this one was consolidated into.")
    content_hash: str
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None


class KnowledgeVersion(BaseModel):
    item_id: int
    version: int
    category: str
    title: str
    content: dict[str, Any]
    tags: list[str]
    state: KnowledgeState = Field(description="The item's state when this version was made.")
    change_note: str
    merged_from: list[int] = Field(description="Items consolidated into this one here.")
    content_hash: str
    created_at: datetime


class ImportResult(BaseModel):
    created: int
    updated: int = Field(description="Existing items that got a new version.")
    unchanged: int
    item_ids: list[int] = Field(description="The local id of each document item, in order.")


class ArchivedItem(BaseModel):
    id: int
    reason: Literal["deprecated", "stale"]


class PruneResult(BaseModel):
    archived: list[ArchivedItem]
    stale_before: datetime = Field(description="Items last used or edited before this are stale.")


class MergeGroup(BaseModel):
    survivor_id: int
    merged_ids: list[int]
    similarity: float = Field(description="The lowest similarity of a merged item to the survivor.")


class ConsolidateResult(BaseModel):
    measure: Literal["cosine", "jaccard"] = Field(
        description="cosine of sentence embeddings, or Jaccard of terms without an embedder."
    )
    threshold: float
    candidates: int = Field(description="Items compared.")
    groups: list[MergeGroup]


class PromoteResult(BaseModel):
    item: KnowledgeItem
    created: bool = Field(description="False when the message had been promoted already.")
    votes: int
    applications: int
