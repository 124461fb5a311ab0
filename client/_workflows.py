"""The workflow learner's SDK methods; mixed into `KaizenClient`."""

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from client._build import local
from client._ops import operation
from schemas import encode
from schemas.workflows import (
    ActivityEvent,
    EventBatch,
    EventsAccepted,
    NextCommands,
    NextQuery,
    OutcomeAccepted,
    RunOutcome,
    WorkflowPatternOut,
    Workflows,
    WorkflowsQuery,
    WorkflowStatsOut,
)

M = TypeVar("M", bound=BaseModel)


class WorkflowMethods:
    """Needs `_call` from the client it is mixed into."""

    async def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        raise NotImplementedError

    @operation("record_events")
    async def record_events(
        self, events: Sequence[ActivityEvent | dict[str, Any]]
    ) -> EventsAccepted:
        """Send activity events; returns once stored."""
        batch = local(EventBatch, events=[_event(e) for e in events])
        return await self._call("POST", "/events", EventsAccepted, body=encode(batch))

    @operation("workflows")
    async def get_workflows(
        self, *, min_support: int | None = None, min_length: int | None = None, limit: int = 50
    ) -> list[WorkflowPatternOut]:
        query = local(WorkflowsQuery, min_support=min_support, min_length=min_length, limit=limit)
        params = query.model_dump(exclude_none=True)
        return (await self._call("GET", "/workflows", Workflows, params=params)).items

    @operation("next_commands")
    async def next_commands(
        self, after: Sequence[str] = (), *, session_id: str | None = None, k: int = 3
    ) -> NextCommands:
        """The likely next commands after `after` (a failed command ends in "!"),
        or after what `session_id` has run; with both, the session's recent
        commands tell the developer's habits."""
        query = local(NextQuery, after=",".join(after) or None, session_id=session_id, k=k)
        params = query.model_dump(exclude_none=True)
        return await self._call("GET", "/workflows/next", NextCommands, params=params)

    @operation("workflow_outcome")
    async def report_workflow_outcome(self, session_id: str, success: bool) -> OutcomeAccepted:
        body = encode(local(RunOutcome, session_id=session_id, success=success))
        return await self._call("POST", "/workflows/outcome", OutcomeAccepted, body=body)

    @operation("workflow_stats")
    async def get_workflow_stats(self) -> WorkflowStatsOut:
        return await self._call("GET", "/workflows/stats", WorkflowStatsOut)


def _event(event: ActivityEvent | dict[str, Any]) -> ActivityEvent:
    return event if isinstance(event, ActivityEvent) else local(ActivityEvent, **event)
