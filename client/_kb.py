"""The knowledge base's SDK methods (add_knowledge, update_knowledge,
record_usage, get_validated_knowledge, export and import), plus best practices, pruning,
consolidation and promotion of hub messages; mixed into `KaizenClient`."""

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from client._build import local
from client._ops import operation
from schemas import Page, encode
from schemas.kb import (
    BestPracticesQuery,
    ConsolidateRequest,
    ConsolidateResult,
    ImportResult,
    KnowledgeCreate,
    KnowledgeExport,
    KnowledgeItem,
    KnowledgeListQuery,
    KnowledgeState,
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

M = TypeVar("M", bound=BaseModel)


class KnowledgeBaseMixin:
    """Needs `_call` from the client it is mixed into."""

    async def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        raise NotImplementedError

    @operation("kb_add")
    async def add_knowledge(
        self,
        *,
        category: str,
        title: str,
        content: dict[str, Any] | None = None,
        tags: Iterable[str] = (),
        key: str | None = None,
        change_note: str = "created",
    ) -> KnowledgeItem:
        """A new EXPERIMENTAL item at version 1; returns once stored."""
        draft = local(
            KnowledgeCreate,
            category=category,
            title=title,
            content=content or {},
            tags=list(tags),
            key=key,
            change_note=change_note,
        )
        return await self._call(
            "POST", "/kb/items", KnowledgeItem, body=encode(draft, exclude_none=True)
        )

    @operation("kb_update")
    async def update_knowledge(
        self,
        item_id: int,
        *,
        change_note: str,
        category: str | None = None,
        title: str | None = None,
        content: dict[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        expected_version: int | None = None,
    ) -> KnowledgeItem:
        """A new version with the fields given and the change note."""
        patch = local(
            KnowledgeUpdate,
            change_note=change_note,
            category=category,
            title=title,
            content=content,
            tags=list(tags) if tags is not None else None,
            expected_version=expected_version,
        )
        body = encode(patch, exclude_none=True)
        return await self._call("PATCH", f"/kb/items/{item_id}", KnowledgeItem, body=body)

    @operation("kb_get")
    async def get_knowledge_item(self, item_id: int) -> KnowledgeItem:
        return await self._call("GET", f"/kb/items/{item_id}", KnowledgeItem)

    @operation("kb_versions")
    async def knowledge_versions(
        self, item_id: int, *, limit: int = 100, cursor: str | None = None
    ) -> Page[KnowledgeVersion]:
        """An item's history, oldest version first."""
        params = _params(local(VersionsQuery, limit=limit, cursor=cursor))
        path = f"/kb/items/{item_id}/versions"
        return await self._call("GET", path, Page[KnowledgeVersion], params=params)

    @operation("kb_list")
    async def list_knowledge(
        self,
        *,
        category: str | None = None,
        state: KnowledgeState | str | None = None,
        tag: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[KnowledgeItem]:
        query = local(
            KnowledgeListQuery, category=category, state=state, tag=tag, limit=limit, cursor=cursor
        )
        return await self._call("GET", "/kb/items", Page[KnowledgeItem], params=_params(query))

    @operation("kb_usage")
    async def record_usage(self, item_id: int, success: bool) -> KnowledgeItem:
        """One use of the item; the reply carries its state after it."""
        body = encode(local(UsageReport, success=success))
        return await self._call("POST", f"/kb/items/{item_id}/usage", KnowledgeItem, body=body)

    @operation("kb_validated")
    async def get_validated_knowledge(
        self,
        *,
        category: str | None = None,
        tag: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[KnowledgeItem]:
        """VALIDATED items, oldest first; pass `next_cursor` back as `cursor`."""
        query = local(ValidatedQuery, category=category, tag=tag, limit=limit, cursor=cursor)
        return await self._call("GET", "/kb/validated", Page[KnowledgeItem], params=_params(query))

    @operation("kb_best_practices")
    async def get_best_practices(
        self, *, category: str | None = None, tag: str | None = None, limit: int = 10
    ) -> list[KnowledgeItem]:
        """VALIDATED items, the most confidently proven first."""
        query = local(BestPracticesQuery, category=category, tag=tag, limit=limit)
        page = await self._call(
            "GET", "/kb/best-practices", Page[KnowledgeItem], params=_params(query)
        )
        return page.items

    @operation("kb_export")
    async def export_knowledge(self) -> KnowledgeExport:
        """Every item with its history; `model_dump(mode="json")` makes it a file."""
        return await self._call("GET", "/kb/export", KnowledgeExport)

    @operation("kb_import")
    async def import_knowledge(self, document: KnowledgeExport | dict[str, Any]) -> ImportResult:
        """Import an export document: items are matched by key, so importing twice
        creates nothing the second time. All or nothing."""
        doc = document if isinstance(document, KnowledgeExport) else _document(document)
        return await self._call("POST", "/kb/import", ImportResult, body=encode(doc))

    @operation("kb_prune")
    async def prune_knowledge(self, *, stale_days: float = 90.0) -> PruneResult:
        body = encode(local(PruneRequest, stale_days=stale_days))
        return await self._call("POST", "/kb/prune", PruneResult, body=body)

    @operation("kb_consolidate")
    async def consolidate_knowledge(
        self, *, threshold: float | None = None, category: str | None = None
    ) -> ConsolidateResult:
        request = local(ConsolidateRequest, threshold=threshold, category=category)
        body = encode(request, exclude_none=True)
        return await self._call("POST", "/kb/consolidate", ConsolidateResult, body=body)

    @operation("kb_promote")
    async def promote_message(self, message_id: int, *, category: str) -> PromoteResult:
        """Promote a hub message with enough votes and applications into the base."""
        body = encode(local(PromoteRequest, message_id=message_id, category=category))
        return await self._call("POST", "/kb/promote", PromoteResult, body=body)


def _params(query: BaseModel) -> dict[str, Any]:
    return query.model_dump(mode="json", exclude_none=True)


def _document(raw: dict[str, Any]) -> KnowledgeExport:
    """A document read from a file, e.g. `orjson.loads(path.read_bytes())`."""
    return local(KnowledgeExport, **raw)
