"""The session pipeline: stages run in order, each isolated, the log stage last.

As in the seed's error-handling flow, a stage that raises is recorded (its name,
the error's type and message) and the next stage still runs; the log stage runs
after all of them, even when one raised, and writes which stages failed. Stages see
the report so far, so the memory stage (supplied by the session service, which
owns the SQL) can store the topics and preferences found before it; a stage whose
input stage failed finds None there and must cope.

The stages are synchronous: the service runs `run_pipeline` in a worker thread.
Nothing here does I/O except the log stage's writes to DATA_DIR/logs.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from server.chat.conversation import SessionRecord
from server.chat.examples import ExamplesResult, prepare_examples
from server.chat.logs import PipelineStats, record_session
from server.chat.preferences import PreferenceSignal, PreferencesResult, detect_preferences
from server.chat.topics import DEFAULT_TOP_K, EmbedFn, TopicsResult, extract_topics
from server.core.clock import utc

log = logging.getLogger("kaizen.sessions")

T = TypeVar("T")
ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    run: "Callable[[SessionRecord, PipelineReport], object]"


@dataclass(frozen=True, slots=True)
class StageOutcome:
    name: str
    ok: bool
    seconds: float
    result: object = None
    error_type: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MemoryResult:
    """What the service's memory stage returns: rows stored for GET /memory/search."""

    items_created: int


@dataclass(frozen=True, slots=True)
class FineTuneResult:
    applied: bool
    loss: float | None = None
    examples: int = 0


@dataclass(frozen=True, slots=True)
class LogResult:
    session_log: Path
    stats: PipelineStats


@dataclass(slots=True)
class PipelineReport:
    """Every stage's outcome, in the order they ran. Stages read it; only
    run_pipeline adds to it."""

    tenant: str
    session_id: str
    outcomes: list[StageOutcome] = field(default_factory=list)

    def find(self, kind: type[T]) -> T | None:
        """The result of the first successful stage that returned a `kind`."""
        return next((o.result for o in self.outcomes if isinstance(o.result, kind)), None)

    @property
    def topics(self) -> TopicsResult | None:
        return self.find(TopicsResult)

    @property
    def preferences(self) -> PreferencesResult | None:
        return self.find(PreferencesResult)

    @property
    def examples(self) -> ExamplesResult | None:
        return self.find(ExamplesResult)

    @property
    def memory(self) -> MemoryResult | None:
        return self.find(MemoryResult)

    @property
    def fine_tune(self) -> FineTuneResult | None:
        return self.find(FineTuneResult)

    @property
    def log(self) -> LogResult | None:
        return self.find(LogResult)

    @property
    def failed(self) -> list[StageOutcome]:
        return [o for o in self.outcomes if not o.ok]


def run_pipeline(
    record: SessionRecord, stages: Sequence[Stage], *, log_stage: Stage | None = None
) -> PipelineReport:
    """Run `stages` in order, each isolated (an Exception is recorded, the next
    stage runs), then `log_stage`, always: also after a BaseException such as
    KeyboardInterrupt, which is recorded and re-raised once the log is written."""
    report = PipelineReport(record.tenant, record.session_id)
    try:
        for stage in stages:
            _run_isolated(stage, record, report)
    finally:
        if log_stage is not None:
            _run_isolated(log_stage, record, report)
    return report


def _run_isolated(stage: Stage, record: SessionRecord, report: PipelineReport) -> None:
    started = time.perf_counter()
    try:
        result = stage.run(record, report)
    except Exception as exc:
        log.warning("stage %s failed on session %s", stage.name, record.session_id, exc_info=True)
        report.outcomes.append(_failure(stage, exc, started))
        return
    except BaseException as exc:
        report.outcomes.append(_failure(stage, exc, started))
        raise
    report.outcomes.append(StageOutcome(stage.name, True, _since(started), result))


def _failure(stage: Stage, exc: BaseException, started: float) -> StageOutcome:
    message = str(exc)[:ERROR_CHARS]
    return StageOutcome(stage.name, False, _since(started), None, type(exc).__name__, message)


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 6)


def session_stages(
    embed: EmbedFn | None = None,
    *,
    store_memory: "Callable[[SessionRecord, PipelineReport], MemoryResult] | None" = None,
    fine_tune: "Callable[[SessionRecord, PipelineReport], FineTuneResult] | None" = None,
    top_k: int = DEFAULT_TOP_K,
) -> list[Stage]:
    """The seed's order: topics, preferences, memory storage, training data,
    fine-tuning; memory and fine-tuning only when the caller supplies them."""
    stages = [
        Stage("topics", lambda record, _: extract_topics(record, embed, top_k=top_k)),
        Stage("preferences", lambda record, _: detect_preferences(record)),
    ]
    if store_memory is not None:
        stages.append(Stage("memory", store_memory))
    stages.append(Stage("examples", lambda record, _: prepare_examples(record)))
    if fine_tune is not None:
        stages.append(Stage("fine_tune", fine_tune))
    return stages


def make_log_stage(logs_dir: Path, now: Callable[[], float] = time.time) -> Stage:
    """The last stage: the session's log, its master-log line and the totals."""

    def write(record: SessionRecord, report: PipelineReport) -> LogResult:
        at = now()
        entry = session_log_entry(record, report, at)
        return LogResult(*record_session(logs_dir, entry, log_summary(entry), at))

    return Stage("log", write)


def session_log_entry(record: SessionRecord, report: PipelineReport, now: float) -> dict[str, Any]:
    """A session log in the seed's shape (session_id, start_time, end_time,
    messages_count, memory_items_created, fine_tune_applied, fine_tune_loss,
    improvements) plus what each stage found and which failed."""
    ended = record.ended_at if record.ended_at is not None else now
    memory, fine_tune, examples = report.memory, report.fine_tune, report.examples
    return {
        "session_id": record.session_id,
        "tenant": record.tenant,
        "agent_id": record.agent_id,
        "start_time": utc(record.started_at).isoformat(),
        "end_time": utc(ended).isoformat(),
        "end_ts": ended,
        "messages_count": len(record.messages),
        "memory_items_created": memory.items_created if memory else 0,
        "examples_prepared": len(examples.examples) if examples else 0,
        "examples_dropped": examples.dropped_counts if examples else {},
        "fine_tune_applied": bool(fine_tune and fine_tune.applied),
        "fine_tune_loss": fine_tune.loss if fine_tune else None,
        "topics": _topics_json(report.topics),
        "preferences": _preferences_json(report.preferences),
        "improvements": improvements(report),
        "stages": [_outcome_json(o) for o in report.outcomes],
        "failed_stages": [_outcome_json(o) for o in report.failed],
        "processed_at": utc(now).isoformat(),
        "processed_at_ts": now,
    }


_SUMMARY_FIELDS = (
    "session_id",
    "tenant",
    "agent_id",
    "start_time",
    "end_time",
    "messages_count",
    "memory_items_created",
    "examples_prepared",
    "fine_tune_applied",
    "processed_at",
    "processed_at_ts",
)


def log_summary(entry: dict[str, Any]) -> dict[str, Any]:
    """The master-log line: the counts, topic phrases and failed stage names."""
    summary = {name: entry[name] for name in _SUMMARY_FIELDS}
    summary["topics"] = [topic["phrase"] for topic in entry["topics"]]
    summary["failed_stages"] = [stage["name"] for stage in entry["failed_stages"]]
    return summary


def improvements(report: PipelineReport) -> list[str]:
    """The seed's human-readable list of what the session taught."""
    lines = []
    if report.topics and report.topics.topics:
        lines.append("Extracted topics: " + ", ".join(report.topics.phrases))
    if report.preferences and report.preferences.preferences:
        lines.append("Identified preferences: " + ", ".join(report.preferences.labels))
    if report.memory:
        lines.append(f"Stored {report.memory.items_created} memory items")
    if report.examples:
        lines.append(f"Prepared {len(report.examples.examples)} training examples")
    if report.fine_tune and report.fine_tune.applied:
        lines.append(f"Fine-tuned with {report.fine_tune.examples} examples")
    return lines


def _topics_json(topics: TopicsResult | None) -> list[dict[str, Any]]:
    if topics is None:
        return []
    return [{"phrase": t.phrase, "score": t.score, "method": topics.method} for t in topics.topics]


def _preferences_json(preferences: PreferencesResult | None) -> list[dict[str, Any]]:
    if preferences is None:
        return []
    return [
        {
            "name": p.name,
            "value": p.value,
            "confidence": p.confidence,
            "evidence": [_evidence_json(e) for e in p.evidence],
        }
        for p in preferences.preferences
    ]


def _evidence_json(evidence: PreferenceSignal) -> dict[str, Any]:
    return {
        "message": evidence.index,
        "signal": evidence.signal,
        "weight": evidence.weight,
        "excerpt": evidence.excerpt,
    }


def _outcome_json(outcome: StageOutcome) -> dict[str, Any]:
    return {
        "name": outcome.name,
        "ok": outcome.ok,
        "seconds": outcome.seconds,
        "error_type": outcome.error_type,
        "error": outcome.error,
    }
