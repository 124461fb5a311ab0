"""The learning service: record interactions, serve the learnings mined from them."""

from schemas import (
    Interaction,
    Learning,
    LearningsQuery,
    Page,
    RecordResult,
    ScoredLearning,
    StoredInteraction,
)
from server.errors import BatchTooLarge, NotFound
from server.learning.confidence import level_floor
from server.learning.ranking import RankQuery, rank
from server.services.cursor import decode_cursor, encode_cursor, keyset_page
from server.store import Store

CANDIDATE_CAP = 5000
"""Learnings considered per query, most confident first (lexical ranking is in Python)."""


class LearningService:
    def __init__(self, store: Store, *, max_batch: int, cross_agent_weight: float) -> None:
        self._store = store
        self._max_batch = max_batch
        self._cross_agent_weight = cross_agent_weight

    async def record(self, tenant: str, items: list[Interaction]) -> RecordResult:
        """Store interactions atomically; returns once they are committed.
        Cancelling leaves the write's fate unknown (it may still commit)."""
        if len(items) > self._max_batch:
            raise BatchTooLarge(
                f"at most {self._max_batch} interactions per batch", max_batch=self._max_batch
            )
        ids = await self._store.insert_interactions(tenant, items)
        return RecordResult(ids=ids)

    async def get_interaction(self, tenant: str, interaction_id: int) -> StoredInteraction:
        found = await self._store.get_interaction(tenant, interaction_id)
        if found is None:
            raise NotFound("no such interaction", id=interaction_id)
        return found

    async def list_interactions(
        self, tenant: str, limit: int, cursor: str | None
    ) -> Page[StoredInteraction]:
        after = decode_cursor(cursor, "after", int) or 0
        rows = await self._store.list_interactions(tenant, after, limit + 1)
        items, next_cursor = keyset_page(rows, limit, lambda row: row.id)
        return Page[StoredInteraction](items=items, next_cursor=next_cursor)

    async def get_learning(self, tenant: str, learning_id: int) -> Learning:
        found = await self._store.get_learning(tenant, learning_id)
        if found is None:
            raise NotFound("no such learning", id=learning_id)
        return found

    async def learnings(self, tenant: str, query: LearningsQuery) -> Page[ScoredLearning]:
        """Learnings ranked by relevance × confidence (see `ranking`). Pages are
        offsets into the ranking, which may shift between pages as learning goes on."""
        floor = level_floor(query.min_confidence)
        candidates = await self._store.learning_candidates(tenant, query.type, floor, CANDIDATE_CAP)
        ranked = rank(RankQuery(query.task, query.agent_type, self._cross_agent_weight), candidates)
        offset = decode_cursor(query.cursor, "offset", int) or 0
        end = offset + query.limit
        next_cursor = encode_cursor(offset=end) if end < len(ranked) else None
        return Page[ScoredLearning](items=ranked[offset:end], next_cursor=next_cursor)
