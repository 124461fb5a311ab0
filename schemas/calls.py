"""Service calls over `/ws`: the strategy, performance, workflow, session, knowledge
base and training capabilities, one op each, with the same request models as
their HTTP routes (docs/protocol.md lists them). `args` is validated against the
op's model; the reply carries the same model as the HTTP reply."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from schemas.chat import ChatMessage, SessionKey
from schemas.common import Id, Strict
from schemas.interactions import JsonObject
from schemas.performance import ExecutionRecord
from schemas.strategy import OutcomeReport
from schemas.workflows import SessionId

CallName = Literal[
    "analyze_task",
    "select_strategy",
    "record_outcome",
    "strategy_statistics",
    "record_executions",
    "agent_performance",
    "compare_agents",
    "recommendations",
    "bottlenecks",
    "record_events",
    "workflows",
    "next_commands",
    "workflow_outcome",
    "workflow_stats",
    "session_start",
    "session_message",
    "session_end",
    "get_session",
    "memory_search",
    "session_stats",
    "kb_add",
    "kb_update",
    "kb_get",
    "kb_usage",
    "kb_validated",
    "kb_best_practices",
    "kb_export",
    "kb_import",
    "kb_prune",
    "kb_consolidate",
    "kb_promote",
    "fine_tune",
    "jobs",
    "get_job",
    "cancel_job",
    "models",
    "promote_model",
    "rollback_model",
]


class CallOp(Strict):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    op: CallName
    args: JsonObject = Field(default_factory=dict)


class CallReply(BaseModel):
    type: Literal["result"] = "result"
    op: str
    id: str
    data: Any


# -- args of the ops whose HTTP form has path parameters ---------------------------


class OutcomeArgs(OutcomeReport):
    strategy_id: Id


class AgentArgs(Strict):
    model_config = Strict.model_config | {"strict": False}

    agent_type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
    window_s: int = Field(default=86_400, ge=60, le=90 * 86_400)
    windows: int = Field(default=30, ge=2, le=366)


class ExecutionsArgs(Strict):
    executions: list[ExecutionRecord] = Field(min_length=1, max_length=1000)


class SessionArgs(Strict):
    session_id: SessionKey


class MessageArgs(ChatMessage):
    session_id: SessionKey


class WorkflowSessionArgs(Strict):
    session_id: SessionId


class ItemArgs(Strict):
    item_id: Id


class ItemPatchArgs(Strict):
    item_id: Id
    patch: JsonObject


class ItemUsageArgs(Strict):
    item_id: Id
    success: bool


class JobArgs(Strict):
    job_id: Id


class VersionArgs(Strict):
    version: Annotated[str, Field(pattern=r"^v\d{6}$")]
