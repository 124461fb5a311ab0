"""The contract between the Kaizen server and its clients: every HTTP body and
WebSocket frame is one of these pydantic models, encoded with orjson."""

from schemas.codec import encode
from schemas.common import ListQuery, Page
from schemas.enums import ConfidenceLevel, ErrorCode, LearningType
from schemas.errors import ErrorBody, ErrorDetail
from schemas.frames import (
    ClientFrame,
    ErrorFrame,
    HelloFrame,
    LearningsOp,
    LearningsReply,
    Limits,
    PingOp,
    PongReply,
    PushFrame,
    RecordOp,
    RecordReply,
    ServerFrame,
)
from schemas.interactions import (
    Interaction,
    InteractionBatch,
    RecordRequest,
    RecordResult,
    StoredInteraction,
)
from schemas.learnings import Learning, LearningsQuery, ScoredLearning
from schemas.system import Counts, ExtractorStats, Health, Stats, WriterStats
from schemas.tokens import TokenCreate, TokenCreated, TokenInfo

__all__ = [
    "ClientFrame",
    "ConfidenceLevel",
    "Counts",
    "ErrorBody",
    "ErrorCode",
    "ErrorDetail",
    "ErrorFrame",
    "ExtractorStats",
    "Health",
    "HelloFrame",
    "Interaction",
    "InteractionBatch",
    "Learning",
    "LearningType",
    "LearningsOp",
    "LearningsQuery",
    "LearningsReply",
    "Limits",
    "ListQuery",
    "Page",
    "PingOp",
    "PongReply",
    "PushFrame",
    "RecordOp",
    "RecordReply",
    "RecordRequest",
    "RecordResult",
    "ScoredLearning",
    "ServerFrame",
    "Stats",
    "StoredInteraction",
    "TokenCreate",
    "TokenCreated",
    "TokenInfo",
    "WriterStats",
    "encode",
]
