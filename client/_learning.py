"""The learning engine's SDK methods (get_relevant_learnings,
get_learnings_by_type, get_high_confidence_learnings, get_statistics), plus
anomalies; mixed into `KaizenClient`."""

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from client._build import local
from client._ops import operation
from schemas import (
    AnomaliesQuery,
    Anomaly,
    ConfidenceLevel,
    Learning,
    LearningsPage,
    LearningsQuery,
    LearningType,
    Page,
    ScoredLearning,
    Stats,
    TenantEffect,
)

M = TypeVar("M", bound=BaseModel)


class LearningMethods:
    """Needs `_call` from the client it is mixed into."""

    async def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        raise NotImplementedError

    @operation("learnings")
    async def get_relevant_learnings(
        self,
        task_description: str | None = None,
        *,
        agent_type: str | None = None,
        min_confidence: ConfidenceLevel | str = ConfidenceLevel.LOW,
        type: LearningType | str | None = None,
        since: datetime | None = None,
        limit: int = 10,
    ) -> list[ScoredLearning]:
        """The learnings that best fit a task, best first, each with `why` it matched."""
        page = await self.learnings(
            task=task_description,
            agent_type=agent_type,
            min_confidence=min_confidence,
            type=type,
            since=since,
            limit=limit,
        )
        return page.items

    @operation("learnings")
    async def get_learnings_by_type(
        self, type: LearningType | str, *, limit: int = 100
    ) -> list[ScoredLearning]:
        """Active learnings of one type, most confident first."""
        return (await self.learnings(type=type, limit=limit)).items

    @operation("learnings")
    async def get_high_confidence_learnings(
        self, *, min_confidence: ConfidenceLevel | str = ConfidenceLevel.HIGH, limit: int = 100
    ) -> list[ScoredLearning]:
        """Active learnings at HIGH confidence or above (or `min_confidence`)."""
        return (await self.learnings(min_confidence=min_confidence, limit=limit)).items

    @operation("learnings")
    async def learnings(
        self,
        *,
        task: str | None = None,
        agent_type: str | None = None,
        min_confidence: ConfidenceLevel | str = ConfidenceLevel.LOW,
        type: LearningType | str | None = None,
        since: datetime | None = None,
        limit: int = 10,
        cursor: str | None = None,
    ) -> LearningsPage:
        """One page of `GET /learnings`; pass `next_cursor` back as `cursor`."""
        query = local(
            LearningsQuery,
            task=task,
            agent_type=agent_type,
            min_confidence=min_confidence,
            type=type,
            since=since,
            limit=limit,
            cursor=cursor,
        )
        params = query.model_dump(mode="json", exclude_none=True)
        return await self._call("GET", "/learnings", LearningsPage, params=params)

    @operation("get_learning")
    async def get_learning(self, learning_id: int) -> Learning:
        return await self._call("GET", f"/learnings/{learning_id}", Learning)

    @operation("learning_effect")
    async def learning_effect(self) -> TenantEffect:
        """The tenant's measured lift: attempts offered learnings against attempts
        whose learnings were held out (`learning_holdout_fraction`)."""
        return await self._call("GET", "/learnings/effect", TenantEffect)

    @operation("stats")
    async def get_statistics(self) -> Stats:
        """The get_statistics: counts, queues, retrieval mode and the hub."""
        return await self._call("GET", "/stats", Stats)

    @operation("anomalies")
    async def anomalies(
        self,
        *,
        agent_type: str | None = None,
        since: datetime | None = None,
        min_score: float = 0.0,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Anomaly]:
        """Interactions unusual for their agent type, newest first."""
        query = local(
            AnomaliesQuery,
            agent_type=agent_type,
            since=since,
            min_score=min_score,
            limit=limit,
            cursor=cursor,
        )
        params = query.model_dump(mode="json", exclude_none=True)
        return await self._call("GET", "/anomalies", Page[Anomaly], params=params)
