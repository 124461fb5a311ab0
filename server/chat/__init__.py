"""The session pipeline's pure stages: topics, preferences, training examples, logs.

No aiohttp and no SQL: the session service persists sessions, stores memory items
(as a stage it supplies) and runs `run_pipeline` in a worker thread.
"""

from server.chat.conversation import Message, SessionRecord
from server.chat.examples import DroppedTurn, ExamplesResult, TrainingExample, prepare_examples
from server.chat.logs import PipelineStats, SessionCounts
from server.chat.pipeline import (
    FineTuneResult,
    LogResult,
    MemoryResult,
    PipelineReport,
    Stage,
    StageOutcome,
    make_log_stage,
    run_pipeline,
    session_stages,
)
from server.chat.preferences import (
    Preference,
    PreferenceSignal,
    PreferencesResult,
    detect_preferences,
)
from server.chat.topics import EmbedFn, Topic, TopicsResult, extract_topics

__all__ = [
    "DroppedTurn",
    "EmbedFn",
    "ExamplesResult",
    "FineTuneResult",
    "LogResult",
    "MemoryResult",
    "Message",
    "PipelineReport",
    "PipelineStats",
    "Preference",
    "PreferenceSignal",
    "PreferencesResult",
    "SessionCounts",
    "SessionRecord",
    "Stage",
    "StageOutcome",
    "Topic",
    "TopicsResult",
    "TrainingExample",
    "detect_preferences",
    "extract_topics",
    "make_log_stage",
    "prepare_examples",
    "run_pipeline",
    "session_stages",
]
