"""Workflow learning: events grouped into sessions, frequent command
sequences mined from them, and the next command predicted. Pure: no I/O, no
asyncio; the service owns the clock, persistence and transport."""

from server.workflows.events import (
    Event,
    EventType,
    canonical_command,
    command_of,
    event_from_dict,
    is_known_type,
)
from server.workflows.learner import WorkflowConfig, WorkflowLearner
from server.workflows.mining import WorkflowMiner, WorkflowPattern
from server.workflows.outcome import Outcome, infer_outcome
from server.workflows.predict import NextCommandModel
from server.workflows.runs import CloseReason, RunGrouper, WorkflowRun
from server.workflows.stats import WorkflowStats

__all__ = [
    "CloseReason",
    "Event",
    "EventType",
    "NextCommandModel",
    "Outcome",
    "RunGrouper",
    "WorkflowConfig",
    "WorkflowLearner",
    "WorkflowMiner",
    "WorkflowPattern",
    "WorkflowRun",
    "WorkflowStats",
    "canonical_command",
    "command_of",
    "event_from_dict",
    "infer_outcome",
    "is_known_type",
]
