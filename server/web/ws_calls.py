"""The `call` ops of `/ws` (schemas/calls.py): each validates its `args` with the
model its HTTP route reads, calls the same service method, and replies with the
same model, in a `result` frame."""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from schemas import RecordResult
from schemas.calls import (
    AgentArgs,
    CallOp,
    CallReply,
    ExecutionsArgs,
    ItemArgs,
    ItemPatchArgs,
    ItemUsageArgs,
    JobArgs,
    MessageArgs,
    OutcomeArgs,
    SessionArgs,
    VersionArgs,
)
from schemas.chat import ChatMessage, MemoryQuery, SessionStart
from schemas.kb import (
    BestPracticesQuery,
    ConsolidateRequest,
    KnowledgeCreate,
    KnowledgeExport,
    KnowledgeUpdate,
    PromoteRequest,
    PruneRequest,
    UsageReport,
    ValidatedQuery,
)
from schemas.performance import (
    BottlenecksQuery,
    CompareQuery,
    PerformanceQuery,
    RecommendationsQuery,
)
from schemas.strategy import OutcomeReport, SelectRequest, TaskDescription
from schemas.training import FineTuneRequest, JobsQuery, JobTrigger
from schemas.workflows import EventBatch, NextQuery, SessionOutcome, WorkflowsQuery
from server.web.context import Services
from server.web.errors import from_validation

if TYPE_CHECKING:
    from server.web.ws import Connection

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Services, str, dict[str, Any], str], Awaitable[BaseModel]]
"""(services, tenant, args, agent) → the reply's data."""


def args(model: type[M], raw: dict[str, Any]) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise from_validation(exc) from None


async def call(conn: "Connection", frame: CallOp) -> CallReply:
    handler = CALLS[frame.op]
    data = await handler(conn.svc, conn.caller.tenant, frame.args, conn.caller.agent or "anonymous")
    return CallReply(op=frame.op, id=frame.id, data=data.model_dump(mode="json"))


async def _outcome(svc: Services, tenant: str, raw: dict[str, Any], _: str) -> BaseModel:
    a = args(OutcomeArgs, raw)
    report = OutcomeReport.model_validate(a.model_dump(exclude={"strategy_id"}))
    return await svc.strategy.record_outcome(tenant, a.strategy_id, report)


async def _executions(svc: Services, tenant: str, raw: dict[str, Any], _: str) -> RecordResult:
    return await svc.performance.record(tenant, args(ExecutionsArgs, raw).executions)


async def _agent(svc: Services, tenant: str, raw: dict[str, Any], _: str) -> BaseModel:
    a = args(AgentArgs, raw)
    query = PerformanceQuery(window_s=a.window_s, windows=a.windows)
    return await svc.performance.agent(tenant, a.agent_type, query)


async def _message(svc: Services, tenant: str, raw: dict[str, Any], _: str) -> BaseModel:
    a = args(MessageArgs, raw)
    message = ChatMessage.model_validate(a.model_dump(exclude={"session_id"}))
    return await svc.sessions.add_message(tenant, a.session_id, message)


async def _kb_update(svc: Services, tenant: str, raw: dict[str, Any], _: str) -> BaseModel:
    a = args(ItemPatchArgs, raw)
    return await svc.kb.update(tenant, a.item_id, args(KnowledgeUpdate, a.patch))


async def _kb_usage(svc: Services, tenant: str, raw: dict[str, Any], _: str) -> BaseModel:
    a = args(ItemUsageArgs, raw)
    return await svc.kb.record_usage(tenant, a.item_id, UsageReport(success=a.success))


async def _sync(value: M) -> M:
    return value


CALLS: dict[str, Handler] = {
    "analyze_task": lambda s, t, r, _: s.strategy.analyze(t, args(TaskDescription, r)),
    "select_strategy": lambda s, t, r, _: s.strategy.select(t, args(SelectRequest, r)),
    "record_outcome": _outcome,
    "strategy_statistics": lambda s, t, r, _: s.strategy.statistics(t),
    "record_executions": _executions,
    "agent_performance": _agent,
    "compare_agents": lambda s, t, r, _: s.performance.compare(t, args(CompareQuery, r)),
    "recommendations": lambda s, t, r, _: s.performance.recommendations(
        t, args(RecommendationsQuery, r)
    ),
    "bottlenecks": lambda s, t, r, _: s.performance.bottlenecks(t, args(BottlenecksQuery, r)),
    "record_events": lambda s, t, r, _: s.workflows.ingest(t, args(EventBatch, r)),
    "workflows": lambda s, t, r, _: _sync(s.workflows.workflows(t, args(WorkflowsQuery, r))),
    "next_commands": lambda s, t, r, _: _sync(s.workflows.next_commands(t, args(NextQuery, r))),
    "workflow_outcome": lambda s, t, r, _: _sync(
        s.workflows.report_outcome(t, args(SessionOutcome, r))
    ),
    "workflow_stats": lambda s, t, r, _: _sync(s.workflows.stats(t)),
    "session_start": lambda s, t, r, agent: s.sessions.start_session(
        t, agent, args(SessionStart, r)
    ),
    "session_message": _message,
    "session_end": lambda s, t, r, _: s.sessions.end(t, args(SessionArgs, r).session_id),
    "get_session": lambda s, t, r, _: s.sessions.get(t, args(SessionArgs, r).session_id),
    "memory_search": lambda s, t, r, _: s.sessions.search(t, args(MemoryQuery, r)),
    "session_stats": lambda s, t, r, _: s.sessions.stats(t),
    "kb_add": lambda s, t, r, _: s.kb.add(t, args(KnowledgeCreate, r)),
    "kb_update": _kb_update,
    "kb_get": lambda s, t, r, _: s.kb.get(t, args(ItemArgs, r).item_id),
    "kb_usage": _kb_usage,
    "kb_validated": lambda s, t, r, _: s.kb.validated(t, args(ValidatedQuery, r)),
    "kb_best_practices": lambda s, t, r, _: s.kb.best_practices(t, args(BestPracticesQuery, r)),
    "kb_export": lambda s, t, r, _: s.kb.export(t),
    "kb_import": lambda s, t, r, _: s.kb.import_document(t, args(KnowledgeExport, r)),
    "kb_prune": lambda s, t, r, _: s.kb.prune(t, args(PruneRequest, r)),
    "kb_consolidate": lambda s, t, r, _: s.kb.consolidate(t, args(ConsolidateRequest, r)),
    "kb_promote": lambda s, t, r, _: s.kb.promote(t, args(PromoteRequest, r)),
    "fine_tune": lambda s, t, r, _: s.training.submit(
        t, JobTrigger.MANUAL, args(FineTuneRequest, r)
    ),
    "jobs": lambda s, t, r, _: s.training.jobs(t, args(JobsQuery, r)),
    "get_job": lambda s, t, r, _: s.training.get(t, args(JobArgs, r).job_id),
    "cancel_job": lambda s, t, r, _: s.training.cancel(t, args(JobArgs, r).job_id),
    "models": lambda s, t, r, _: s.training.models(t),
    "promote_model": lambda s, t, r, _: s.training.promote(t, args(VersionArgs, r).version),
    "rollback_model": lambda s, t, r, _: s.training.rollback(t),
}
