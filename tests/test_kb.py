"""The knowledge base: version history,
state transitions, lists, export and import, pruning, consolidation, promotion of hub
messages, tenant isolation and bad input. Driven through KnowledgeBaseService on a real
SQLite store, with the real MiniLM embedder and a manual clock; one test goes over HTTP
through the kb_ operations and the SDK mixin."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from client import KaizenClient
from client.errors import BadRequestError, ConflictError, NotFoundError
from schemas import Endorsement, KnowledgeType, MessageDraft, encode
from schemas.kb import (
    MAX_CONTENT_BYTES,
    BestPracticesQuery,
    ConsolidateRequest,
    KnowledgeCreate,
    KnowledgeExport,
    KnowledgeListQuery,
    KnowledgeState,
    KnowledgeUpdate,
    PromoteRequest,
    PruneRequest,
    UsageReport,
    ValidatedQuery,
    VersionsQuery,
)
from schemas.ops import OPS
from server.auth.service import Principal
from server.core.clock import ManualClock
from server.core.embedder import Embedder, make_embedder
from server.core.errors import Conflict, InvalidRequest, NotFound
from server.core.settings import Settings
from server.db.database import Database
from server.hub.messages import MessageService
from server.hub.service import HubService
from server.kb.items import ItemRecord, fields_of
from server.kb.service import KnowledgeBaseService
from server.kb.states import DEFAULT_RULES, state_for
from server.runner import KaizenServer
from server.stores import Stores

A, B = "acme", "globex"
DAY = 86_400.0
START = 1_700_000_000.0


@dataclass
class Kit:
    kb: KnowledgeBaseService
    clock: ManualClock
    hub: HubService
    knowledge: MessageService
    store: Stores


@pytest.fixture(scope="module")
async def embedder() -> AsyncIterator[Embedder]:
    loaded = make_embedder("all-MiniLM-L6-v2", device="cpu", batch_max=64, cache_size=1000)
    assert loaded is not None, "the ml extra is needed for these tests"
    await loaded.start()
    yield loaded
    await loaded.close()


@contextlib.asynccontextmanager
async def kit_at(path: Path, embedder: Embedder | None, **kwargs: Any) -> AsyncIterator[Kit]:
    store = Stores(Database(path / "kaizen.sqlite3"))
    await store.open()
    clock = ManualClock(START)
    hub = HubService(store.hub, Settings.load({"data_dir": path}, env={}), clock.now)
    await hub.start()
    knowledge = MessageService(store.hub, hub.channels)
    kb = KnowledgeBaseService(store.kb, embedder, clock, knowledge, **kwargs)
    try:
        yield Kit(kb, clock, hub, knowledge, store)
    finally:
        await hub.stop()
        await store.close()


@pytest.fixture
async def kit(tmp_path: Path, embedder: Embedder) -> AsyncIterator[Kit]:
    async with kit_at(tmp_path, embedder) as k:
        yield k


def draft(title: str = "Test-driven development", **fields: Any) -> KnowledgeCreate:
    values: dict[str, Any] = {
        "category": "patterns",
        "title": title,
        "content": {"description": "Write tests before implementation"},
        "tags": ["testing", "best_practice"],
    }
    return KnowledgeCreate(**(values | fields))


async def use(kit: Kit, item_id: int, outcomes: str, tenant: str = A) -> KnowledgeState:
    """Record uses spelled as 'S' (success) and 'F' (failure); the state after them."""
    state = KnowledgeState.EXPERIMENTAL
    for outcome in outcomes:
        item = await kit.kb.record_usage(tenant, item_id, UsageReport(success=outcome == "S"))
        state = item.state
    return state


# -- versions --------------------------------------------------------------------------


async def test_each_update_makes_a_version_with_its_change_note(kit: Kit) -> None:
    item = await kit.kb.add(A, draft())
    assert (item.version, item.state, item.origin) == (1, KnowledgeState.EXPERIMENTAL, "api")
    kit.clock.advance(60)
    content = {"description": "Write tests first", "benefits": ["Better quality", "Documentation"]}
    v2 = await kit.kb.update(
        A, item.id, KnowledgeUpdate(content=content, change_note="Added documentation benefit")
    )
    v3 = await kit.kb.update(
        A, item.id, KnowledgeUpdate(tags=["tdd", "testing"], change_note="Retagged")
    )
    assert (v2.version, v3.version, v3.content, v3.tags) == (2, 3, content, ["tdd", "testing"])
    assert len({item.content_hash, v2.content_hash, v3.content_hash}) == 3
    assert v3.updated_at > item.created_at

    first = await kit.kb.versions(A, item.id, VersionsQuery(limit=2))
    assert first.next_cursor is not None
    rest = await kit.kb.versions(A, item.id, VersionsQuery(limit=2, cursor=first.next_cursor))
    history = first.items + rest.items
    assert [v.version for v in history] == [1, 2, 3]
    assert [v.change_note for v in history] == [
        "created",
        "Added documentation benefit",
        "Retagged",
    ]
    assert history[0].content == {"description": "Write tests before implementation"}
    assert history[1].content == content and history[1].tags == ["best_practice", "testing"]
    assert history[2].content_hash == v3.content_hash


async def test_an_update_that_changes_nothing_makes_no_version(kit: Kit) -> None:
    item = await kit.kb.add(A, draft())
    same = await kit.kb.update(A, item.id, KnowledgeUpdate(title=item.title, change_note="again"))
    assert same.version == 1
    assert len((await kit.kb.versions(A, item.id, VersionsQuery())).items) == 1


async def test_an_update_from_a_stale_version_is_refused(kit: Kit) -> None:
    item = await kit.kb.add(A, draft())
    await kit.kb.update(A, item.id, KnowledgeUpdate(title="TDD", change_note="shorter"))
    stale = KnowledgeUpdate(title="Tests first", change_note="mine", expected_version=1)
    with pytest.raises(Conflict):
        await kit.kb.update(A, item.id, stale)
    fresh = KnowledgeUpdate(title="Tests first", change_note="mine", expected_version=2)
    assert (await kit.kb.update(A, item.id, fresh)).version == 3


async def test_a_key_in_use_is_a_conflict(kit: Kit) -> None:
    await kit.kb.add(A, draft(key="tdd"))
    with pytest.raises(Conflict):
        await kit.kb.add(A, draft(key="tdd"))
    assert (await kit.kb.add(B, draft(key="tdd"))).key == "tdd"


# -- states ----------------------------------------------------------------------------


async def test_states_change_exactly_at_the_thresholds(kit: Kit) -> None:
    item = await kit.kb.add(A, draft())
    assert await use(kit, item.id, "SSSS") is KnowledgeState.EXPERIMENTAL  # 4 uses: too few
    assert await use(kit, item.id, "F") is KnowledgeState.VALIDATED  # 4 of 5 = 80%
    assert await use(kit, item.id, "F") is KnowledgeState.EXPERIMENTAL  # 4 of 6
    assert await use(kit, item.id, "FFFF") is KnowledgeState.EXPERIMENTAL  # 4 of 10 = 40%
    assert await use(kit, item.id, "F") is KnowledgeState.DEPRECATED  # 4 of 11 < 40%
    assert await use(kit, item.id, "S") is KnowledgeState.EXPERIMENTAL  # 5 of 12: recovers
    got = await kit.kb.get(A, item.id)
    assert (got.uses, got.successes, got.version) == (12, 5, 1)
    assert got.success_rate == pytest.approx(5 / 12)
    assert 0 < got.confidence < 5 / 12


async def test_five_failures_deprecate_a_new_item(kit: Kit) -> None:
    item = await kit.kb.add(A, draft())
    assert await use(kit, item.id, "FFFF") is KnowledgeState.EXPERIMENTAL
    assert await use(kit, item.id, "F") is KnowledgeState.DEPRECATED


def documented_state(uses: int, successes: int) -> KnowledgeState:
    """server/kb/states.py's rule, restated with exact fractions."""
    if uses < 5:
        return KnowledgeState.EXPERIMENTAL
    rate = Fraction(successes, uses)
    if rate >= Fraction(4, 5):
        return KnowledgeState.VALIDATED
    return KnowledgeState.DEPRECATED if rate < Fraction(2, 5) else KnowledgeState.EXPERIMENTAL


def fresh_record() -> ItemRecord:
    fields = fields_of("patterns", "t", {}, [])
    return ItemRecord(
        1, A, "k", fields, KnowledgeState.EXPERIMENTAL, 1, 0, 0, "api", None, 0.0, 0.0, None
    )


@given(st.lists(st.booleans(), max_size=60))
def test_any_sequence_of_outcomes_gives_the_documented_state(outcomes: list[bool]) -> None:
    item = fresh_record()
    for n, success in enumerate(outcomes, start=1):
        item = item.used(success, float(n), DEFAULT_RULES)
        assert item.state is documented_state(item.uses, item.successes)
        assert item.state is state_for(item.uses, item.successes)
    assert (item.uses, item.successes) == (len(outcomes), sum(outcomes))


@given(st.lists(st.booleans(), max_size=20))
def test_an_archived_item_stays_archived(outcomes: list[bool]) -> None:
    item, _ = fresh_record().archive("done", 0.0)
    for success in outcomes:
        item = item.used(success, 1.0, DEFAULT_RULES)
    assert item.state is KnowledgeState.ARCHIVED


async def test_validated_and_best_practices(kit: Kit) -> None:
    proven = await kit.kb.add(A, draft("Small commits"))
    well_proven = await kit.kb.add(A, draft("Code review", tags=["review"]))
    middling = await kit.kb.add(A, draft("Pair programming"))
    other = await kit.kb.add(A, draft("Cache reads", category="performance"))
    await use(kit, proven.id, "SSSSS")
    await use(kit, well_proven.id, "S" * 20)
    await use(kit, middling.id, "SSFFF")
    await use(kit, other.id, "SSSSS")

    page = await kit.kb.validated(A, ValidatedQuery(limit=2))
    assert [i.id for i in page.items] == [proven.id, well_proven.id]
    rest = await kit.kb.validated(A, ValidatedQuery(limit=2, cursor=page.next_cursor))
    assert [i.id for i in rest.items] == [other.id] and rest.next_cursor is None
    in_patterns = await kit.kb.validated(A, ValidatedQuery(category="patterns"))
    assert [i.id for i in in_patterns.items] == [proven.id, well_proven.id]

    best = await kit.kb.best_practices(A, BestPracticesQuery())
    assert [i.id for i in best.items][:1] == [well_proven.id]  # 20 of 20 before 5 of 5
    assert middling.id not in {i.id for i in best.items}
    tagged = await kit.kb.best_practices(A, BestPracticesQuery(tag="review"))
    assert [i.id for i in tagged.items] == [well_proven.id]


async def test_list_filters_by_category_state_and_tag(kit: Kit) -> None:
    tdd = await kit.kb.add(A, draft())
    cache = await kit.kb.add(A, draft("Cache reads", category="performance", tags=["cache"]))
    await use(kit, cache.id, "FFFFF")
    everything = await kit.kb.list_items(A, KnowledgeListQuery())
    assert [i.id for i in everything.items] == [tdd.id, cache.id]
    by_category = await kit.kb.list_items(A, KnowledgeListQuery(category="performance"))
    assert [i.id for i in by_category.items] == [cache.id]
    deprecated = await kit.kb.list_items(A, KnowledgeListQuery(state=KnowledgeState.DEPRECATED))
    assert [i.id for i in deprecated.items] == [cache.id]
    assert [
        i.id for i in (await kit.kb.list_items(A, KnowledgeListQuery(tag="testing"))).items
    ] == [tdd.id]
    # a tag is matched whole: "test" is not "testing"
    assert (await kit.kb.list_items(A, KnowledgeListQuery(tag="test"))).items == []


async def test_concurrent_changes_are_not_lost(kit: Kit) -> None:
    item = await kit.kb.add(A, draft())
    outcomes = [n % 4 != 0 for n in range(20)]
    await asyncio.gather(
        *(kit.kb.record_usage(A, item.id, UsageReport(success=s)) for s in outcomes)
    )
    got = await kit.kb.get(A, item.id)
    assert (got.uses, got.successes, got.state) == (20, 15, KnowledgeState.EXPERIMENTAL)
    doc = through_json(await kit.kb.export(A))
    first, second = await asyncio.gather(
        kit.kb.import_document(B, doc), kit.kb.import_document(B, doc)
    )
    assert sorted([first.created, second.created]) == [0, 1]
    assert len((await kit.kb.list_items(B, KnowledgeListQuery())).items) == 1


# -- pruning ---------------------------------------------------------------------------


async def test_prune_archives_deprecated_and_stale_items(kit: Kit) -> None:
    failing = await kit.kb.add(A, draft("Failing"))
    forgotten = await kit.kb.add(A, draft("Forgotten"))
    busy = await kit.kb.add(A, draft("Busy"))
    edited = await kit.kb.add(A, draft("Edited"))
    await use(kit, failing.id, "FFFFF")
    kit.clock.advance(100 * DAY)
    await use(kit, busy.id, "S")
    await kit.kb.update(A, edited.id, KnowledgeUpdate(title="Edited again", change_note="fresh"))

    result = await kit.kb.prune(A, PruneRequest(stale_days=90))
    assert {(a.id, a.reason) for a in result.archived} == {
        (failing.id, "deprecated"),
        (forgotten.id, "stale"),
    }
    assert result.stale_before.timestamp() == pytest.approx(START + 10 * DAY)
    for kept in (busy.id, edited.id):
        assert (await kit.kb.get(A, kept)).state is not KnowledgeState.ARCHIVED
    archived = await kit.kb.get(A, failing.id)
    assert (archived.state, archived.version) == (KnowledgeState.ARCHIVED, 2)
    history = (await kit.kb.versions(A, failing.id, VersionsQuery())).items
    assert history[-1].change_note.startswith("archived by prune: deprecated")
    assert history[-1].state is KnowledgeState.ARCHIVED
    assert (await kit.kb.prune(A, PruneRequest(stale_days=90))).archived == []

    with pytest.raises(Conflict):
        await kit.kb.record_usage(A, failing.id, UsageReport(success=True))
    with pytest.raises(Conflict):
        await kit.kb.update(A, forgotten.id, KnowledgeUpdate(title="x", change_note="revive"))


# -- export and import -----------------------------------------------------------------


async def populate(kit: Kit) -> None:
    tdd = await kit.kb.add(A, draft())
    await kit.kb.update(A, tdd.id, KnowledgeUpdate(title="TDD", change_note="shorter title"))
    await use(kit, tdd.id, "SSSSS")
    failing = await kit.kb.add(A, draft("Big-bang releases", category="delivery"))
    await use(kit, failing.id, "FFFFF")
    await kit.kb.prune(A, PruneRequest(stale_days=90))
    await kit.kb.add(
        A, draft("Feature flags", category="delivery", content={"why": "safe rollout"})
    )


def through_json(doc: KnowledgeExport) -> KnowledgeExport:
    """As a file written by one server and read by another."""
    return KnowledgeExport.model_validate_json(encode(doc))


def snapshot(doc: KnowledgeExport) -> list[tuple[Any, ...]]:
    return [
        (i.key, i.content_hash, i.state, i.uses, i.successes, [v.content_hash for v in i.versions])
        for i in doc.items
    ]


async def test_export_then_import_twice_duplicates_nothing(
    kit: Kit, tmp_path: Path, embedder: Embedder
) -> None:
    await populate(kit)
    doc = through_json(await kit.kb.export(A))
    assert (doc.format, doc.schema_version, len(doc.items)) == ("kaizen.kb", 1, 3)

    async with kit_at(tmp_path / "other", embedder) as other:
        first = await other.kb.import_document(A, doc)
        assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
        again = await other.kb.import_document(A, doc)
        assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
        assert again.item_ids == first.item_ids
        listed = await other.kb.list_items(A, KnowledgeListQuery())
        assert len(listed.items) == 3
        assert snapshot(await other.kb.export(A)) == snapshot(doc)

    # into a fresh tenant of the same store, and back into the tenant it came from
    into_b = await kit.kb.import_document(B, doc)
    assert into_b.created == 3
    assert snapshot(await kit.kb.export(B)) == snapshot(doc)
    home = await kit.kb.import_document(A, doc)
    assert (home.created, home.unchanged) == (0, 3)


async def test_an_updated_export_adds_a_version_not_an_item(kit: Kit) -> None:
    item = await kit.kb.add(A, draft())
    await kit.kb.import_document(B, through_json(await kit.kb.export(A)))
    await kit.kb.update(A, item.id, KnowledgeUpdate(title="TDD", change_note="shorter title"))
    await use(kit, item.id, "SS")

    result = await kit.kb.import_document(B, through_json(await kit.kb.export(A)))
    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    [mine] = (await kit.kb.list_items(B, KnowledgeListQuery())).items
    assert (mine.title, mine.version, mine.uses) == ("TDD", 2, 0)  # usage is B's own evidence
    history = (await kit.kb.versions(B, mine.id, VersionsQuery())).items
    assert history[-1].change_note == "imported: shorter title"


async def test_merge_pointers_survive_export_and_import(
    kit: Kit, tmp_path: Path, embedder: Embedder
) -> None:
    await kit.kb.add(A, draft("Write the unit tests before you implement the feature"))
    await kit.kb.add(A, draft("Write unit tests before implementing a feature"))
    result = await kit.kb.consolidate(A, ConsolidateRequest())
    assert len(result.groups) == 1
    doc = through_json(await kit.kb.export(A))
    async with kit_at(tmp_path / "other", embedder) as other:
        await other.kb.import_document(A, doc)
        items = {i.key: i for i in (await other.kb.list_items(A, KnowledgeListQuery())).items}
        merged = next(i for i in items.values() if i.merged_into is not None)
        survivor = next(i for i in items.values() if i.merged_into is None)
        assert merged.merged_into == survivor.id
        history = (await other.kb.versions(A, survivor.id, VersionsQuery())).items
        assert history[-1].merged_from == [merged.id]


def tampered(doc: KnowledgeExport, index: int, **changes: Any) -> KnowledgeExport:
    raw = orjson.loads(encode(doc))
    raw["items"][index] |= changes
    return KnowledgeExport.model_validate(raw)


async def test_a_document_with_one_bad_item_imports_nothing(kit: Kit) -> None:
    await populate(kit)
    doc = through_json(await kit.kb.export(A))
    last = doc.items[-1]
    bad_documents = [
        tampered(doc, 2, title="Changed without its hash"),
        tampered(doc, 2, content_hash="0" * 64),
        tampered(doc, 2, key=doc.items[0].key),
        tampered(doc, 2, merged_into="nowhere"),
        tampered(doc, 1, merged_into="nowhere"),
        tampered(
            doc, 2, versions=[v.model_dump(mode="json") | {"version": 2} for v in last.versions]
        ),
    ]
    for bad in bad_documents:
        with pytest.raises(InvalidRequest):
            await kit.kb.import_document(B, bad)
    assert (await kit.kb.list_items(B, KnowledgeListQuery())).items == []
    assert (await kit.kb.import_document(B, doc)).created == 3


def test_a_malformed_document_fails_validation() -> None:
    good = {"exported_at": "2024-01-01T00:00:00Z", "items": []}
    KnowledgeExport.model_validate(good)
    item = {
        "key": "k",
        "category": "c",
        "title": "t",
        "content": {},
        "tags": [],
        "state": "EXPERIMENTAL",
        "uses": 1,
        "successes": 2,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "content_hash": "0" * 64,
        "versions": [],
    }
    for bad in [
        good | {"schema_version": 2},
        good | {"format": "other"},
        good | {"exported_at": "2024-01-01T00:00:00"},  # no time zone
        good | {"extra": 1},
        good | {"items": [item]},  # more successes than uses, and no versions
        good | {"items": [item | {"successes": 0, "state": "GONE"}]},
    ]:
        with pytest.raises(ValidationError):
            KnowledgeExport.model_validate(bad)


# -- consolidation ---------------------------------------------------------------------

PARAPHRASES = [
    ("Test-driven development", "Write the unit tests before implementing the feature."),
    ("Test first development", "Write unit tests before you implement a feature."),
    (
        "Connection pooling",
        "Reuse database connections from a pool instead of opening one per request.",
    ),
    (
        "Use a pool of database connections",
        "Reuse connections instead of opening a new one for each request.",
    ),
]
DIFFERENT = [
    (
        "Retry with exponential backoff",
        "Retry failed network calls with exponential backoff and jitter.",
    ),
    ("Integration testing", "Write integration tests for the database layer."),
]


async def add_all(kit: Kit, pairs: list[tuple[str, str]], category: str = "patterns") -> list[int]:
    ids = []
    for title, text in pairs:
        item = await kit.kb.add(
            A, draft(title, category=category, content={"text": text}, tags=[category])
        )
        ids.append(item.id)
    return ids


async def test_consolidation_merges_paraphrases_only(kit: Kit) -> None:
    tdd, tdd2, pool, pool2 = await add_all(kit, PARAPHRASES)
    retry, integration = await add_all(kit, DIFFERENT)
    [elsewhere] = await add_all(kit, PARAPHRASES[1:2], category="testing")
    await use(kit, tdd2, "SSSSS")  # validated: it survives its paraphrase
    await use(kit, tdd, "SF")

    result = await kit.kb.consolidate(A, ConsolidateRequest())
    assert (result.measure, result.threshold, result.candidates) == ("cosine", 0.85, 7)
    groups = {g.survivor_id: g.merged_ids for g in result.groups}
    assert groups == {tdd2: [tdd], pool: [pool2]}
    assert all(g.similarity >= 0.85 for g in result.groups)

    survivor = await kit.kb.get(A, tdd2)
    assert (survivor.version, survivor.uses, survivor.successes) == (2, 7, 6)
    assert survivor.tags == ["patterns"]
    history = (await kit.kb.versions(A, tdd2, VersionsQuery())).items
    assert [v.merged_from for v in history] == [[], [tdd]]
    assert f"#{tdd}" in history[-1].change_note

    merged = await kit.kb.get(A, tdd)
    assert (merged.state, merged.merged_into, merged.version) == (KnowledgeState.ARCHIVED, tdd2, 2)
    merged_history = (await kit.kb.versions(A, tdd, VersionsQuery())).items
    assert merged_history[0].change_note == "created"
    assert merged_history[-1].change_note == f"merged into #{tdd2}"
    for kept in (retry, integration, elsewhere):
        assert (await kit.kb.get(A, kept)).state is KnowledgeState.EXPERIMENTAL

    assert (await kit.kb.consolidate(A, ConsolidateRequest())).groups == []


async def test_consolidation_by_category_and_threshold(kit: Kit) -> None:
    await add_all(kit, PARAPHRASES)
    only_testing = await kit.kb.consolidate(A, ConsolidateRequest(category="testing"))
    assert (only_testing.candidates, only_testing.groups) == (0, [])
    strict = await kit.kb.consolidate(A, ConsolidateRequest(threshold=0.99))
    assert strict.groups == []


async def test_consolidation_without_an_embedder_is_lexical(tmp_path: Path) -> None:
    async with kit_at(tmp_path, None) as kit:
        same, copy = await add_all(
            kit,
            [
                ("Test-driven development", "Write the unit tests before implementing the feature"),
                ("Test-driven development", "Write unit tests before implementing each feature"),
            ],
        )
        await add_all(kit, DIFFERENT)
        result = await kit.kb.consolidate(A, ConsolidateRequest())
        assert (result.measure, result.threshold) == ("jaccard", 0.6)
        assert [(g.survivor_id, g.merged_ids) for g in result.groups] == [(same, [copy])]


# -- promotion -------------------------------------------------------------------------


async def publish(kit: Kit, tenant: str = A) -> int:
    message = MessageDraft(
        knowledge_type=KnowledgeType.SOLUTION,
        title="Pin the lockfile",
        content="Commit the lockfile so CI installs what you tested.",
        tags=["ci", "deps"],
    )
    return (await kit.hub.announce(tenant, message)).id


async def endorse(kit: Kit, message_id: int, votes: int, applications: int) -> None:
    for n in range(votes):
        await kit.knowledge.vote(Principal(A, f"agent-{n}", None), message_id, Endorsement())
    for _ in range(applications):
        await kit.knowledge.applied(Principal(A, "agent-0", None), message_id)


async def test_a_well_received_hub_message_is_promoted_once(kit: Kit) -> None:
    message_id = await publish(kit)
    request = PromoteRequest(message_id=message_id, category="ci")
    await endorse(kit, message_id, votes=2, applications=1)
    with pytest.raises(Conflict):
        await kit.kb.promote(A, request)  # 2 votes: one short
    await endorse(kit, message_id, votes=3, applications=0)  # agent-0, -1 again, -2 new
    promoted = await kit.kb.promote(A, request)
    assert (promoted.created, promoted.votes, promoted.applications) == (True, 3, 1)
    item = promoted.item
    assert (item.origin, item.category, item.title, item.tags) == (
        "hub",
        "ci",
        "Pin the lockfile",
        ["ci", "deps"],
    )
    assert item.content["hub_message_id"] == message_id
    assert item.content["text"].startswith("Commit the lockfile")
    history = (await kit.kb.versions(A, item.id, VersionsQuery())).items
    assert history[0].change_note.startswith(f"promoted from hub message #{message_id}")

    again = await kit.kb.promote(A, request)
    assert (again.created, again.item.id) == (False, item.id)
    with pytest.raises(NotFound):
        await kit.kb.promote(B, request)
    with pytest.raises(NotFound):
        await kit.kb.promote(A, PromoteRequest(message_id=10**9, category="ci"))


async def test_promotion_thresholds_are_configurable(tmp_path: Path) -> None:
    async with kit_at(tmp_path, None, min_votes=0, min_applications=0) as kit:
        message_id = await publish(kit)
        promoted = await kit.kb.promote(A, PromoteRequest(message_id=message_id, category="ci"))
        assert promoted.created


# -- isolation and errors --------------------------------------------------------------


async def test_another_tenants_items_are_not_found(kit: Kit) -> None:
    item = await kit.kb.add(A, draft())
    calls = [
        kit.kb.get(B, item.id),
        kit.kb.update(B, item.id, KnowledgeUpdate(title="mine", change_note="taken")),
        kit.kb.versions(B, item.id, VersionsQuery()),
        kit.kb.record_usage(B, item.id, UsageReport(success=True)),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            await call
    assert (await kit.kb.list_items(B, KnowledgeListQuery())).items == []
    assert (await kit.kb.export(B)).items == []
    await use(kit, item.id, "FFFFF")
    assert (await kit.kb.prune(B, PruneRequest())).archived == []
    assert (await kit.kb.consolidate(B, ConsolidateRequest())).candidates == 0
    assert (await kit.kb.get(A, item.id)).state is KnowledgeState.DEPRECATED


async def test_unknown_ids_and_bad_cursors(kit: Kit) -> None:
    for call in [
        kit.kb.get(A, 999),
        kit.kb.update(A, 999, KnowledgeUpdate(title="x", change_note="y")),
        kit.kb.versions(A, 999, VersionsQuery()),
        kit.kb.record_usage(A, 999, UsageReport(success=False)),
    ]:
        with pytest.raises(NotFound):
            await call
    with pytest.raises(InvalidRequest):
        await kit.kb.list_items(A, KnowledgeListQuery(cursor="not-a-cursor"))
    item = await kit.kb.add(A, draft())
    with pytest.raises(InvalidRequest):
        await kit.kb.versions(A, item.id, VersionsQuery(cursor="eyJiZWZvcmUiOjF9"))


BIG = {"text": "x" * MAX_CONTENT_BYTES}
GOOD_CREATE = {"category": "patterns", "title": "TDD", "content": {}, "tags": ["t"]}
BAD_BODIES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (KnowledgeCreate, GOOD_CREATE | {"surprise": 1}),
    (KnowledgeCreate, GOOD_CREATE | {"title": ""}),
    (KnowledgeCreate, GOOD_CREATE | {"title": "   "}),
    (KnowledgeCreate, GOOD_CREATE | {"title": "t" * 513}),
    (KnowledgeCreate, GOOD_CREATE | {"title": 5}),
    (KnowledgeCreate, GOOD_CREATE | {"category": "has space"}),
    (KnowledgeCreate, GOOD_CREATE | {"category": ""}),
    (KnowledgeCreate, GOOD_CREATE | {"content": []}),
    (KnowledgeCreate, GOOD_CREATE | {"content": "text"}),
    (KnowledgeCreate, GOOD_CREATE | {"content": BIG}),
    (KnowledgeCreate, GOOD_CREATE | {"tags": [f"t{n}" for n in range(33)]}),
    (KnowledgeCreate, GOOD_CREATE | {"tags": ["a,b"]}),
    (KnowledgeCreate, GOOD_CREATE | {"tags": ["x" * 65]}),
    (KnowledgeCreate, GOOD_CREATE | {"tags": "t"}),
    (KnowledgeCreate, GOOD_CREATE | {"key": "no spaces please"}),
    (KnowledgeCreate, GOOD_CREATE | {"state": "VALIDATED"}),
    (KnowledgeCreate, {"title": "TDD"}),
    (KnowledgeUpdate, {"title": "x"}),
    (KnowledgeUpdate, {"title": "x", "change_note": ""}),
    (KnowledgeUpdate, {"title": "x", "change_note": " \n "}),
    (KnowledgeUpdate, {"title": "x", "change_note": "n" * 2001}),
    (KnowledgeUpdate, {"change_note": "nothing to change"}),
    (KnowledgeUpdate, {"content": BIG, "change_note": "big"}),
    (KnowledgeUpdate, {"title": "x", "change_note": "y", "expected_version": 0}),
    (KnowledgeUpdate, {"title": "x", "change_note": "y", "state": "ARCHIVED"}),
    (UsageReport, {}),
    (UsageReport, {"success": "yes"}),
    (UsageReport, {"success": 1}),
    (UsageReport, {"success": True, "agent": "a"}),
    (PruneRequest, {"stale_days": 0}),
    (PruneRequest, {"stale_days": -1}),
    (PruneRequest, {"stale_days": "30"}),
    (PruneRequest, {"stale_days": 1e9}),
    (ConsolidateRequest, {"threshold": 0}),
    (ConsolidateRequest, {"threshold": 1.5}),
    (ConsolidateRequest, {"threshold": "high"}),
    (ConsolidateRequest, {"category": "a b"}),
    (PromoteRequest, {"message_id": 1}),
    (PromoteRequest, {"message_id": 0, "category": "ci"}),
    (PromoteRequest, {"message_id": "1", "category": "ci"}),
    (PromoteRequest, {"message_id": 1, "category": "ci", "title": "x"}),
]
BAD_QUERIES: list[tuple[type[BaseModel], dict[str, str]]] = [
    (KnowledgeListQuery, {"state": "GONE"}),
    (KnowledgeListQuery, {"state": "validated"}),
    (KnowledgeListQuery, {"limit": "0"}),
    (KnowledgeListQuery, {"limit": "501"}),
    (KnowledgeListQuery, {"tag": "a,b"}),
    (KnowledgeListQuery, {"category": "a b"}),
    (KnowledgeListQuery, {"colour": "red"}),
    (ValidatedQuery, {"state": "VALIDATED"}),
    (ValidatedQuery, {"limit": "x"}),
    (BestPracticesQuery, {"limit": "101"}),
    (BestPracticesQuery, {"cursor": "abc"}),
    (VersionsQuery, {"limit": "-1"}),
]


@pytest.mark.parametrize(("model", "payload"), BAD_BODIES + BAD_QUERIES)
def test_bad_requests_fail_validation(model: type[BaseModel], payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(payload)


def test_good_requests_pass_and_every_route_has_a_json_schema() -> None:
    KnowledgeCreate.model_validate(GOOD_CREATE)
    KnowledgeUpdate.model_validate({"content": {"a": 1}, "change_note": "why"})
    KnowledgeListQuery.model_validate({"state": "VALIDATED", "limit": "5", "tag": "t"})
    PruneRequest.model_validate({"stale_days": 30})
    ConsolidateRequest.model_validate({})
    for route in (op for op in OPS if op.name.startswith("kb_")):
        for kind in (route.body, route.query, route.reply):
            if kind is not None:
                assert TypeAdapter(kind).json_schema()


# -- over HTTP, through the real server and the SDK ----------------------------------


async def test_the_routes_and_the_sdk(tenants: tuple[KaizenServer, str, str]) -> None:
    server, token_a, token_b = tenants
    async with (
        KaizenClient(server.url, token=token_a) as kz,
        KaizenClient(server.url, token=token_b) as other,
    ):
        assert await sdk_round_trip(kz, other) > 0


async def sdk_round_trip(kz: KaizenClient, other: KaizenClient) -> int:
    """Every KB route through the SDK; returns the item it made."""
    item = await kz.add_knowledge(category="patterns", title="TDD", tags=["testing"])
    updated = await kz.update_knowledge(item.id, change_note="why", content={"a": 1})
    assert (await kz.get_knowledge_item(item.id)).version == updated.version == 2
    assert len((await kz.knowledge_versions(item.id)).items) == 2
    for _ in range(5):
        used = await kz.record_usage(item.id, True)
    assert used.state is KnowledgeState.VALIDATED
    assert [i.id for i in (await kz.get_validated_knowledge()).items] == [item.id]
    assert [i.id for i in await kz.get_best_practices(tag="testing")] == [item.id]
    assert [i.id for i in (await kz.list_knowledge(state="VALIDATED")).items] == [item.id]
    doc = await kz.export_knowledge()
    assert (await kz.import_knowledge(doc)).unchanged == 1
    assert (await kz.import_knowledge(doc.model_dump(mode="json"))).unchanged == 1
    assert (await kz.consolidate_knowledge()).groups == []
    assert (await kz.prune_knowledge(stale_days=1)).archived == []
    message = await kz.share_solution("CI installs drift", "Commit the lockfile.")
    with pytest.raises(ConflictError):  # no votes yet
        await kz.promote_message(message.id, category="ci")

    with pytest.raises(NotFoundError):
        await kz.get_knowledge_item(item.id + 1000)
    with pytest.raises(BadRequestError):
        await kz.update_knowledge(item.id, change_note="")  # refused before sending
    session = kz.http
    for method, path, body, status in [
        ("POST", "/kb/items", b'{"category": "c", "title": "t", "extra": 1}', 422),
        ("POST", "/kb/items", b"{not json", 400),
        ("PATCH", f"/kb/items/{item.id}", b'{"title": "t"}', 422),
        ("POST", f"/kb/items/{item.id}/usage", b'{"success": "yes"}', 422),
        ("GET", "/kb/items?state=GONE", None, 422),
        ("GET", f"/kb/items/{item.id}/versions?limit=0", None, 422),
        ("GET", "/kb/validated?limit=1000", None, 422),
        ("GET", "/kb/best-practices?limit=0", None, 422),
        ("POST", "/kb/import", b'{"exported_at": "2024-01-01T00:00:00Z"}', 422),
        ("POST", "/kb/prune", b'{"stale_days": 0}', 422),
        ("POST", "/kb/consolidate", b'{"threshold": 2}', 422),
        ("POST", "/kb/promote", b'{"message_id": 1}', 422),
        ("GET", "/kb/items/99999999999999999999", None, 404),
    ]:
        async with session.request(method, path, data=body) as resp:
            assert resp.status == status, (method, path, await resp.text())
    with pytest.raises(NotFoundError):
        await other.get_knowledge_item(item.id)
    with pytest.raises(NotFoundError):
        await other.record_usage(item.id, True)
    async with session.post("/kb/prune") as resp:
        assert resp.status == 200  # an empty body takes the defaults
    return item.id
