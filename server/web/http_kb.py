"""HTTP routes of the knowledge base: items, versions, usage, lists, export and import,
pruning, consolidation and promotion of hub messages."""

from typing import TypeVar

from aiohttp import web
from pydantic import TypeAdapter

from schemas import Page
from schemas.kb import (
    BestPracticesQuery,
    ConsolidateRequest,
    ConsolidateResult,
    ImportResult,
    KnowledgeCreate,
    KnowledgeExport,
    KnowledgeItem,
    KnowledgeListQuery,
    KnowledgeUpdate,
    KnowledgeVersion,
    PromoteRequest,
    PromoteResult,
    PruneRequest,
    PruneResult,
    UsageReport,
    ValidatedQuery,
    VersionsQuery,
)
from server.kb.service import KnowledgeBaseService
from server.web.bodies import decode, path_id, read_body, read_query, reply
from server.web.context import principal, services
from server.web.route import Route

T = TypeVar("T")

CREATE = TypeAdapter(KnowledgeCreate)
UPDATE = TypeAdapter(KnowledgeUpdate)
USAGE = TypeAdapter(UsageReport)
DOCUMENT = TypeAdapter(KnowledgeExport)
PRUNE = TypeAdapter(PruneRequest)
CONSOLIDATE = TypeAdapter(ConsolidateRequest)
PROMOTE = TypeAdapter(PromoteRequest)


def _kb(request: web.Request) -> KnowledgeBaseService:
    return services(request).kb


def _tenant(request: web.Request) -> str:
    return principal(request).tenant


async def _options(request: web.Request, adapter: TypeAdapter[T]) -> T:
    """A body whose fields all have defaults: an empty body means `{}`."""
    raw = await request.read()
    return decode(raw if raw.strip() else b"{}", adapter)


async def add_item(request: web.Request) -> web.Response:
    body = await read_body(request, CREATE)
    return reply(await _kb(request).add(_tenant(request), body), status=201)


async def list_items(request: web.Request) -> web.Response:
    query = read_query(request, KnowledgeListQuery)
    return reply(await _kb(request).list_items(_tenant(request), query))


async def get_item(request: web.Request) -> web.Response:
    return reply(await _kb(request).get(_tenant(request), path_id(request)))


async def update_item(request: web.Request) -> web.Response:
    item_id = path_id(request)
    body = await read_body(request, UPDATE)
    return reply(await _kb(request).update(_tenant(request), item_id, body))


async def item_versions(request: web.Request) -> web.Response:
    item_id = path_id(request)
    query = read_query(request, VersionsQuery)
    return reply(await _kb(request).versions(_tenant(request), item_id, query))


async def record_usage(request: web.Request) -> web.Response:
    item_id = path_id(request)
    body = await read_body(request, USAGE)
    return reply(await _kb(request).record_usage(_tenant(request), item_id, body))


async def validated(request: web.Request) -> web.Response:
    query = read_query(request, ValidatedQuery)
    return reply(await _kb(request).validated(_tenant(request), query))


async def best_practices(request: web.Request) -> web.Response:
    query = read_query(request, BestPracticesQuery)
    return reply(await _kb(request).best_practices(_tenant(request), query))


async def export_items(request: web.Request) -> web.Response:
    return reply(await _kb(request).export(_tenant(request)))


async def import_items(request: web.Request) -> web.Response:
    body = await read_body(request, DOCUMENT)
    return reply(await _kb(request).import_document(_tenant(request), body))


async def prune(request: web.Request) -> web.Response:
    body = await _options(request, PRUNE)
    return reply(await _kb(request).prune(_tenant(request), body))


async def consolidate(request: web.Request) -> web.Response:
    body = await _options(request, CONSOLIDATE)
    return reply(await _kb(request).consolidate(_tenant(request), body))


async def promote(request: web.Request) -> web.Response:
    body = await read_body(request, PROMOTE)
    result = await _kb(request).promote(_tenant(request), body)
    return reply(result, status=201 if result.created else 200)


ITEM = r"/kb/items/{id:\d+}"

KB_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/kb/items",
        add_item,
        "Add a knowledge item (EXPERIMENTAL, version 1)",
        body=KnowledgeCreate,
        reply=KnowledgeItem,
        status=201,
    ),
    Route(
        "GET",
        "/kb/items",
        list_items,
        "Knowledge items by category, state and tag, oldest first",
        query=KnowledgeListQuery,
        reply=Page[KnowledgeItem],
    ),
    Route("GET", ITEM, get_item, "One knowledge item", reply=KnowledgeItem),
    Route(
        "PATCH",
        ITEM,
        update_item,
        "Change an item: a new version with its change note",
        body=KnowledgeUpdate,
        reply=KnowledgeItem,
    ),
    Route(
        "GET",
        ITEM + "/versions",
        item_versions,
        "An item's version history, oldest first",
        query=VersionsQuery,
        reply=Page[KnowledgeVersion],
    ),
    Route(
        "POST",
        ITEM + "/usage",
        record_usage,
        "Record one use of an item and whether it succeeded; the state follows",
        body=UsageReport,
        reply=KnowledgeItem,
    ),
    Route(
        "GET",
        "/kb/validated",
        validated,
        "VALIDATED items, oldest first",
        query=ValidatedQuery,
        reply=Page[KnowledgeItem],
    ),
    Route(
        "GET",
        "/kb/best-practices",
        best_practices,
        "VALIDATED items ranked by the Wilson lower bound of their success rate",
        query=BestPracticesQuery,
        reply=Page[KnowledgeItem],
    ),
    Route(
        "GET",
        "/kb/export",
        export_items,
        "Every item with its history, as a portable JSON document",
        reply=KnowledgeExport,
    ),
    Route(
        "POST",
        "/kb/import",
        import_items,
        "Import an export document: idempotent by item key, all or nothing",
        body=KnowledgeExport,
        reply=ImportResult,
    ),
    Route(
        "POST",
        "/kb/prune",
        prune,
        "Archive deprecated items and items unused and unedited for `stale_days`",
        body=PruneRequest,
        reply=PruneResult,
    ),
    Route(
        "POST",
        "/kb/consolidate",
        consolidate,
        "Merge near-duplicate items, keeping every history",
        body=ConsolidateRequest,
        reply=ConsolidateResult,
    ),
    Route(
        "POST",
        "/kb/promote",
        promote,
        "Promote a hub message with enough votes and applications into the knowledge base",
        body=PromoteRequest,
        reply=PromoteResult,
        status=201,
    ),
)
