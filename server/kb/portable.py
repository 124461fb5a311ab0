"""Export and import of a tenant's knowledge base as one JSON document.

The document (`schemas.kb.KnowledgeExport`, format "kaizen.kb", schema_version 1) holds
every item with its whole version history. Ids belong to one store, so items are named
by their `key`, which export and import keep, and merge pointers by the keys they point
to. Every item and version carries `content_hash`: SHA-256 of the canonical JSON of its
(category, title, content, tags), see `records.Fields.content_hash`.

Import matches items by key, which makes it idempotent:

    key unknown here                       → the item is created with its history
    key known, same current content_hash   → nothing changes
    key known, different content_hash      → one new version with the document's content

An import never changes the usage counts or the state of an item that exists here: those
are this store's evidence. A document is checked whole before anything is written (hashes,
version numbering, keys, pointers), and is written in one transaction: a document with
one bad item imports nothing.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from schemas.kb import ExportedItem, ExportedVersion, KnowledgeExport, KnowledgeState
from server.core.clock import utc
from server.core.errors import InvalidRequest
from server.kb.items import Fields, ItemRecord, VersionRecord, clip_note, fields_of
from server.kb.states import StateRules, state_for


@dataclass(slots=True)
class ImportPlan:
    new: list[ExportedItem] = field(default_factory=list)
    changed: list[tuple[ExportedItem, ItemRecord]] = field(default_factory=list)
    unchanged: list[ItemRecord] = field(default_factory=list)


# -- export ----------------------------------------------------------------------------


def export_document(
    items: Sequence[ItemRecord], versions: Sequence[VersionRecord], now: float
) -> KnowledgeExport:
    key_of = {i.id: i.key for i in items}
    history: dict[int, list[VersionRecord]] = defaultdict(list)
    for v in versions:
        history[v.item_id].append(v)
    exported = [_exported_item(i, history[i.id], key_of) for i in items]
    return KnowledgeExport(exported_at=utc(now), items=exported)


def _exported_item(
    item: ItemRecord, versions: list[VersionRecord], key_of: Mapping[int, str]
) -> ExportedItem:
    f = item.fields
    return ExportedItem.model_construct(
        key=item.key,
        category=f.category,
        title=f.title,
        content=f.content,
        tags=list(f.tags),
        state=item.state,
        uses=item.uses,
        successes=item.successes,
        merged_into=key_of.get(item.merged_into) if item.merged_into is not None else None,
        created_at=utc(item.created_at),
        updated_at=utc(item.updated_at),
        last_used_at=utc(item.last_used_at) if item.last_used_at is not None else None,
        content_hash=f.content_hash(),
        versions=[_exported_version(v, key_of) for v in versions],
    )


def _exported_version(v: VersionRecord, key_of: Mapping[int, str]) -> ExportedVersion:
    f = v.fields
    return ExportedVersion.model_construct(
        version=v.version,
        category=f.category,
        title=f.title,
        content=f.content,
        tags=list(f.tags),
        state=v.state,
        change_note=v.change_note,
        merged_from=[key_of[i] for i in v.merged_from if i in key_of],
        created_at=utc(v.created_at),
        content_hash=f.content_hash(),
    )


# -- checks ----------------------------------------------------------------------------


def verify(doc: KnowledgeExport) -> None:
    """Raise InvalidRequest, naming the item, unless every item is self-consistent."""
    seen: set[str] = set()
    for index, item in enumerate(doc.items):
        if item.key in seen:
            raise InvalidRequest("the document has the key twice", index=index, key=item.key)
        seen.add(item.key)
        _verify_item(index, item)


def _verify_item(index: int, item: ExportedItem) -> None:
    numbers = [v.version for v in item.versions]
    if numbers != list(range(1, len(numbers) + 1)):
        raise _bad(index, item, "versions must be numbered 1, 2, 3… in order")
    for v in item.versions:
        if _fields(v).content_hash() != v.content_hash:
            raise _bad(index, item, f"version {v.version}: content_hash does not match")
    if _fields(item).content_hash() != item.content_hash:
        raise _bad(index, item, "content_hash does not match the item")
    if item.versions[-1].content_hash != item.content_hash:
        raise _bad(index, item, "the last version is not the item's content")
    if item.merged_into is not None and item.state is not KnowledgeState.ARCHIVED:
        raise _bad(index, item, "only an archived item can be merged into another")


def _bad(index: int, item: ExportedItem, why: str) -> InvalidRequest:
    return InvalidRequest(f"item {index}: {why}", index=index, key=item.key)


def referenced_keys(doc: KnowledgeExport) -> set[str]:
    """Keys the document points to (merges) but does not hold."""
    held = {i.key for i in doc.items}
    pointed = {i.merged_into for i in doc.items if i.merged_into is not None}
    pointed |= {k for i in doc.items for v in i.versions for k in v.merged_from}
    return pointed - held


# -- import ----------------------------------------------------------------------------


def plan(doc: KnowledgeExport, existing: Mapping[str, ItemRecord]) -> ImportPlan:
    result = ImportPlan()
    for item in doc.items:
        found = existing.get(item.key)
        if found is None:
            result.new.append(item)
        elif found.fields.content_hash() == item.content_hash:
            result.unchanged.append(found)
        else:
            result.changed.append((item, found))
    return result


def imported(
    item: ExportedItem, tenant: str, id_of: Mapping[str, int], rules: StateRules
) -> tuple[ItemRecord, list[VersionRecord]]:
    """A new item with its history; its state follows its counts unless archived."""
    item_id = id_of[item.key]
    archived = item.state is KnowledgeState.ARCHIVED
    record = ItemRecord(
        id=item_id,
        tenant=tenant,
        key=item.key,
        fields=_fields(item),
        state=KnowledgeState.ARCHIVED if archived else state_for(item.uses, item.successes, rules),
        version=len(item.versions),
        uses=item.uses,
        successes=item.successes,
        origin="import",
        merged_into=id_of[item.merged_into] if item.merged_into is not None else None,
        created_at=item.created_at.timestamp(),
        updated_at=item.updated_at.timestamp(),
        last_used_at=item.last_used_at.timestamp() if item.last_used_at else None,
    )
    return record, [_version(v, tenant, item_id, id_of) for v in item.versions]


def _version(
    v: ExportedVersion, tenant: str, item_id: int, id_of: Mapping[str, int]
) -> VersionRecord:
    return VersionRecord(
        tenant=tenant,
        item_id=item_id,
        version=v.version,
        fields=_fields(v),
        state=v.state,
        change_note=v.change_note,
        merged_from=tuple(id_of[k] for k in v.merged_from),
        created_at=v.created_at.timestamp(),
    )


def import_update(
    found: ItemRecord, item: ExportedItem, now: float
) -> tuple[ItemRecord, VersionRecord]:
    """The document's content as one new version of the item here."""
    note = clip_note(f"imported: {item.versions[-1].change_note}")
    return found.revise(_fields(item), note, now)


def _fields(source: ExportedItem | ExportedVersion) -> Fields:
    return fields_of(source.category, source.title, source.content, source.tags)
