"""The knowledge base: versioned,
stateful knowledge items, their usage, export and import, pruning, consolidation, and
promotion of hub messages.

Every change is read, decided and written under the tenant's lock: the store's writer
commits later than a read sees, and two changes decided from one read would lose one.
The lock is per tenant, so tenants never wait on each other.
"""

import asyncio
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import orjson

from schemas import HubMessage, Page
from schemas.kb import (
    MAX_CONTENT_BYTES,
    MAX_TAGS,
    ArchivedItem,
    BestPracticesQuery,
    ConsolidateRequest,
    ConsolidateResult,
    ExportedItem,
    ImportResult,
    KnowledgeCreate,
    KnowledgeExport,
    KnowledgeItem,
    KnowledgeListQuery,
    KnowledgeState,
    KnowledgeUpdate,
    KnowledgeVersion,
    MergeGroup,
    PromoteRequest,
    PromoteResult,
    PruneRequest,
    PruneResult,
    UsageReport,
    ValidatedQuery,
    VersionsQuery,
)
from server.core.clock import Clock, utc
from server.core.cursor import decode_cursor, keyset_page
from server.core.embedder import Embedder
from server.core.errors import Conflict, InvalidRequest, NotFound
from server.kb import portable
from server.kb.consolidate import (
    COSINE_THRESHOLD,
    JACCARD_THRESHOLD,
    MAX_CANDIDATES,
    Group,
    cosine_similarity,
    item_text,
    jaccard_similarity,
    leader_groups,
    leader_order,
    merge,
    merge_note,
)
from server.kb.items import Fields, ItemRecord, Origin, VersionRecord, fields_of
from server.kb.states import DEFAULT_RULES, StateRules, confidence, success_rate
from server.kb.store import ItemFilter, KnowledgeBaseStore

if TYPE_CHECKING:
    from server.core.embedder import Vector

Measure = Literal["cosine", "jaccard"]

DAY = 86_400.0
MIN_VOTES = 3
"""Votes a hub message needs before it can be promoted: several agents found it useful…"""
MIN_APPLICATIONS = 1
"""…and at least one applied it."""


class HubKnowledge(Protocol):
    """What promotion needs of the hub's MessageService."""

    async def get(self, tenant: str, knowledge_id: int) -> HubMessage: ...


class KnowledgeBaseService:
    def __init__(
        self,
        store: KnowledgeBaseStore,
        embedder: Embedder | None,
        clock: Clock,
        hub_knowledge: HubKnowledge,
        *,
        rules: StateRules = DEFAULT_RULES,
        min_votes: int = MIN_VOTES,
        min_applications: int = MIN_APPLICATIONS,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._clock = clock
        self._hub = hub_knowledge
        self._rules = rules
        self._min_votes = min_votes
        self._min_applications = min_applications
        self._locks: dict[str, asyncio.Lock] = {}

    # -- items -------------------------------------------------------------------------

    async def add(self, tenant: str, draft: KnowledgeCreate) -> KnowledgeItem:
        """A new EXPERIMENTAL item at version 1. A `key` in use is a Conflict."""
        fields = fields_of(draft.category, draft.title, draft.content, draft.tags)
        async with self._lock(tenant):
            if draft.key is not None and (found := await self._by_key(tenant, draft.key)):
                raise Conflict("the key is in use", key=draft.key, id=found.id)
            item = self._new_item(tenant, draft.key or uuid.uuid4().hex, fields, "api")
            await self._write([item], [item.first_version(draft.change_note)])
        return item_model(item)

    async def update(self, tenant: str, item_id: int, patch: KnowledgeUpdate) -> KnowledgeItem:
        """A new version with the change note. An update that changes nothing makes no
        version (a retried PATCH is harmless); archived items cannot change."""
        async with self._lock(tenant):
            item = _writable(await self._existing(tenant, item_id))
            if patch.expected_version not in (None, item.version):
                raise Conflict("the item has moved on", id=item_id, version=item.version)
            fields = _patched(item.fields, patch)
            if fields == item.fields:
                return item_model(item)
            item, version = item.revise(fields, patch.change_note, self._clock.now())
            await self._write([item], [version])
        return item_model(item)

    async def get(self, tenant: str, item_id: int) -> KnowledgeItem:
        return item_model(await self._existing(tenant, item_id))

    async def versions(self, tenant: str, item_id: int, q: VersionsQuery) -> Page[KnowledgeVersion]:
        """The item's history, oldest version first."""
        await self._existing(tenant, item_id)
        after = decode_cursor(q.cursor, "after", int) or 0
        rows = await self._store.versions(tenant, item_id, after, q.limit + 1)
        page, cursor = keyset_page(rows, q.limit, lambda v: v.version)
        return Page[KnowledgeVersion](items=[version_model(v) for v in page], next_cursor=cursor)

    async def list_items(self, tenant: str, q: KnowledgeListQuery) -> Page[KnowledgeItem]:
        return await self._page(tenant, q.category, q.state, q.tag, q.limit, q.cursor)

    async def record_usage(self, tenant: str, item_id: int, usage: UsageReport) -> KnowledgeItem:
        """Count one use; the state follows the counts (server/kb/states.py)."""
        async with self._lock(tenant):
            item = _writable(await self._existing(tenant, item_id))
            item = item.used(usage.success, self._clock.now(), self._rules)
            await self._write([item], [])
        return item_model(item)

    async def validated(self, tenant: str, q: ValidatedQuery) -> Page[KnowledgeItem]:
        """The get_validated_knowledge: VALIDATED items, oldest first."""
        validated = KnowledgeState.VALIDATED
        return await self._page(tenant, q.category, validated, q.tag, q.limit, q.cursor)

    async def best_practices(self, tenant: str, q: BestPracticesQuery) -> Page[KnowledgeItem]:
        """VALIDATED items ranked by confidence, the Wilson lower bound of their success
        rate: well-tried items first, so 50 of 50 ranks above 5 of 5. One page."""
        rows = await self._store.best(tenant, q.category, q.tag, q.limit)
        return Page[KnowledgeItem](items=[item_model(i) for i in rows])

    # -- export and import -------------------------------------------------------------

    async def export(self, tenant: str) -> KnowledgeExport:
        """Every item of the tenant, archived ones included, with its history."""
        # Under the lock, so that no commit lands between reading items and versions.
        async with self._lock(tenant):
            items = await self._store.all_items(tenant)
            versions = await self._store.all_versions(tenant)
        return portable.export_document(items, versions, self._clock.now())

    async def import_document(self, tenant: str, doc: KnowledgeExport) -> ImportResult:
        """Idempotent by key (server/kb/portable.py); all or nothing."""
        portable.verify(doc)
        async with self._lock(tenant):
            existing = await self._store.by_keys(tenant, [i.key for i in doc.items])
            existing |= await self._referenced(tenant, doc)
            plan = portable.plan(doc, existing)
            id_of = self._ids_for(existing, plan.new)
            items, versions = self._import_writes(tenant, plan, id_of)
            await self._write(items, versions)
        return ImportResult(
            created=len(plan.new),
            updated=len(plan.changed),
            unchanged=len(plan.unchanged),
            item_ids=[id_of[i.key] for i in doc.items],
        )

    async def _referenced(self, tenant: str, doc: KnowledgeExport) -> dict[str, ItemRecord]:
        """The items here that the document's merge pointers name but it does not hold."""
        wanted = portable.referenced_keys(doc)
        found = await self._store.by_keys(tenant, sorted(wanted))
        if missing := wanted - found.keys():
            raise InvalidRequest("the document points to unknown keys", keys=sorted(missing)[:20])
        return found

    def _ids_for(
        self, existing: dict[str, ItemRecord], new: Sequence[ExportedItem]
    ) -> dict[str, int]:
        first = self._store.new_ids(len(new))
        id_of = {key: item.id for key, item in existing.items()}
        id_of.update((item.key, first + n) for n, item in enumerate(new))
        return id_of

    def _import_writes(
        self, tenant: str, plan: portable.ImportPlan, id_of: dict[str, int]
    ) -> tuple[list[ItemRecord], list[VersionRecord]]:
        items: list[ItemRecord] = []
        versions: list[VersionRecord] = []
        for new in plan.new:
            item, history = portable.imported(new, tenant, id_of, self._rules)
            items.append(item)
            versions += history
        now = self._clock.now()
        for exported, found in plan.changed:
            item, version = portable.import_update(found, exported, now)
            items.append(item)
            versions.append(version)
        return items, versions

    # -- upkeep ------------------------------------------------------------------------

    async def prune(self, tenant: str, request: PruneRequest) -> PruneResult:
        """Archive every DEPRECATED item, and every other item neither used nor edited for
        `stale_days`. Each archived item gets a version saying why."""
        now = self._clock.now()
        stale_before = now - request.stale_days * DAY
        async with self._lock(tenant):
            found = await self._store.prunable(tenant, stale_before)
            archived = [i.archive(_prune_note(i, request.stale_days), now) for i in found]
            await self._write([a for a, _ in archived], [v for _, v in archived])
        reasons = [ArchivedItem(id=i.id, reason=_prune_reason(i)) for i in found]
        return PruneResult(archived=reasons, stale_before=utc(stale_before))

    async def consolidate(self, tenant: str, request: ConsolidateRequest) -> ConsolidateResult:
        """Merge near-duplicates (server/kb/consolidate.py) among the newest
        EXPERIMENTAL and VALIDATED items."""
        measure: Measure = "cosine" if self._embedder is not None else "jaccard"
        threshold = request.threshold or _default_threshold(measure)
        limit = MAX_CANDIDATES
        # Embed once outside the lock: under it, the same texts are cache hits.
        await self._vectors(await self._store.candidates(tenant, request.category, limit))
        async with self._lock(tenant):
            found = await self._store.candidates(tenant, request.category, limit)
            items = leader_order(found)
            groups = await self._groups(items, threshold)
            await self._merge(items, groups, f"{measure} ≥ {threshold:g}")
        return ConsolidateResult(
            measure=measure,
            threshold=threshold,
            candidates=len(items),
            groups=[_merge_group(items, g) for g in groups],
        )

    async def _groups(self, items: list[ItemRecord], threshold: float) -> list[Group]:
        vectors = await self._vectors(items)
        texts = [item_text(i.fields) for i in items]
        similarity = (
            cosine_similarity(vectors) if vectors is not None else jaccard_similarity(texts)
        )
        categories = [i.fields.category for i in items]
        return leader_groups(categories, similarity, threshold)

    async def _vectors(self, items: Sequence[ItemRecord]) -> "Vector | None":
        if self._embedder is None or not items:
            return None
        return await self._embedder.embed([item_text(i.fields) for i in items])

    async def _merge(self, items: list[ItemRecord], groups: list[Group], why: str) -> None:
        writes: list[ItemRecord] = []
        versions: list[VersionRecord] = []
        now = self._clock.now()
        for g in groups:
            merged = [items[index] for index, _ in g.members]
            note = merge_note([m.id for m in merged], why)
            changed, history = merge(items[g.leader], merged, note, now, self._rules)
            writes += changed
            versions += history
        await self._write(writes, versions)

    # -- promotion ---------------------------------------------------------------------

    async def promote(self, tenant: str, request: PromoteRequest) -> PromoteResult:
        """Copy a hub message that enough agents voted for and applied into the base, as
        an EXPERIMENTAL item. Promoting a message again returns the item it became."""
        message = await self._hub.get(tenant, request.message_id)
        self._check_endorsed(message)
        key = f"hub:{message.channel}:{message.epoch}:{message.offset}"
        async with self._lock(tenant):
            item = await self._by_key(tenant, key)
            created = item is None
            if item is None:
                item = self._new_item(tenant, key, _promoted_fields(message, request), "hub")
                note = f"promoted from hub message #{message.id} ({_endorsement(message)})"
                await self._write([item], [item.first_version(note)])
        return PromoteResult(
            item=item_model(item),
            created=created,
            votes=message.votes,
            applications=message.applications,
        )

    def _check_endorsed(self, message: HubMessage) -> None:
        if message.votes >= self._min_votes and message.applications >= self._min_applications:
            return
        raise Conflict(
            "the message needs more votes or applications to be promoted",
            id=message.id,
            votes=message.votes,
            applications=message.applications,
            min_votes=self._min_votes,
            min_applications=self._min_applications,
        )

    # -- plumbing ----------------------------------------------------------------------

    def _lock(self, tenant: str) -> asyncio.Lock:
        return self._locks.setdefault(tenant, asyncio.Lock())

    async def _write(self, items: list[ItemRecord], versions: list[VersionRecord]) -> None:
        """Commit, keeping the caller's tenant lock until the write has settled even if
        the caller is cancelled: the next holder must not read around a queued write."""
        if not items and not versions:
            return
        write = asyncio.ensure_future(self._store.write(items, versions))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait([write])
            raise

    def _new_item(self, tenant: str, key: str, fields: Fields, origin: Origin) -> ItemRecord:
        now = self._clock.now()
        return ItemRecord(
            id=self._store.new_ids(1),
            tenant=tenant,
            key=key,
            fields=fields,
            state=KnowledgeState.EXPERIMENTAL,
            version=1,
            uses=0,
            successes=0,
            origin=origin,
            merged_into=None,
            created_at=now,
            updated_at=now,
            last_used_at=None,
        )

    async def _existing(self, tenant: str, item_id: int) -> ItemRecord:
        found = await self._store.get(tenant, item_id)
        if found is None:
            raise NotFound("no such knowledge item", id=item_id)
        return found

    async def _by_key(self, tenant: str, key: str) -> ItemRecord | None:
        return (await self._store.by_keys(tenant, [key])).get(key)

    async def _page(
        self,
        tenant: str,
        category: str | None,
        state: KnowledgeState | None,
        tag: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[KnowledgeItem]:
        after = decode_cursor(cursor, "after", int)
        f = ItemFilter(tenant, category, state, tag, after, limit + 1)
        page, next_cursor = keyset_page(await self._store.items(f), limit, lambda i: i.id)
        return Page[KnowledgeItem](items=[item_model(i) for i in page], next_cursor=next_cursor)


# -- models ----------------------------------------------------------------------------


def item_model(i: ItemRecord) -> KnowledgeItem:
    f = i.fields
    return KnowledgeItem(
        id=i.id,
        key=i.key,
        category=f.category,
        title=f.title,
        content=f.content,
        tags=list(f.tags),
        state=i.state,
        version=i.version,
        uses=i.uses,
        successes=i.successes,
        success_rate=success_rate(i.uses, i.successes),
        confidence=confidence(i.uses, i.successes),
        origin=i.origin,
        merged_into=i.merged_into,
        content_hash=f.content_hash(),
        created_at=utc(i.created_at),
        updated_at=utc(i.updated_at),
        last_used_at=utc(i.last_used_at) if i.last_used_at is not None else None,
    )


def version_model(v: VersionRecord) -> KnowledgeVersion:
    f = v.fields
    return KnowledgeVersion(
        item_id=v.item_id,
        version=v.version,
        category=f.category,
        title=f.title,
        content=f.content,
        tags=list(f.tags),
        state=v.state,
        change_note=v.change_note,
        merged_from=list(v.merged_from),
        content_hash=f.content_hash(),
        created_at=utc(v.created_at),
    )


# -- helpers ---------------------------------------------------------------------------


def _writable(item: ItemRecord) -> ItemRecord:
    if item.state is KnowledgeState.ARCHIVED:
        raise Conflict("the item is archived", id=item.id, merged_into=item.merged_into)
    return item


def _patched(fields: Fields, patch: KnowledgeUpdate) -> Fields:
    return fields_of(
        patch.category if patch.category is not None else fields.category,
        patch.title if patch.title is not None else fields.title,
        patch.content if patch.content is not None else fields.content,
        patch.tags if patch.tags is not None else list(fields.tags),
    )


def _prune_reason(item: ItemRecord) -> Literal["deprecated", "stale"]:
    return "deprecated" if item.state is KnowledgeState.DEPRECATED else "stale"


def _prune_note(item: ItemRecord, stale_days: float) -> str:
    if item.state is KnowledgeState.DEPRECATED:
        return f"archived by prune: deprecated ({item.successes} of {item.uses} uses succeeded)"
    return f"archived by prune: neither used nor edited for {stale_days:g} days"


def _default_threshold(measure: Measure) -> float:
    return COSINE_THRESHOLD if measure == "cosine" else JACCARD_THRESHOLD


def _merge_group(items: list[ItemRecord], g: Group) -> MergeGroup:
    return MergeGroup(
        survivor_id=items[g.leader].id,
        merged_ids=[items[index].id for index, _ in g.members],
        similarity=min(similarity for _, similarity in g.members),
    )


def _endorsement(message: HubMessage) -> str:
    return f"{message.votes} votes, {message.applications} applications"


def _promoted_fields(message: HubMessage, request: PromoteRequest) -> Fields:
    """The message's text, type, context and author as content. Too large → 422."""
    content = {
        "text": message.content,
        "knowledge_type": message.knowledge_type.value,
        "context": message.context,
        "source_agent": message.source_agent,
        "hub_message_id": message.id,
    }
    if len(orjson.dumps(content)) > MAX_CONTENT_BYTES:
        raise InvalidRequest("the message is too large for the knowledge base", id=message.id)
    title = message.title.strip() or f"hub message #{message.id}"
    return fields_of(request.category, title, content, message.tags[:MAX_TAGS])
