"""The knowledge hub's contract: channels, knowledge messages, subscriptions and
engagement. See docs/protocol.md for the rules."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from schemas.common import Cursor, Name, Strict
from schemas.interactions import JsonObject

_SEGMENT = r"[a-z0-9_-]+"
CHANNEL_NAME_RE = rf"^{_SEGMENT}(\.{_SEGMENT}){{0,7}}$"
CHANNEL_PATTERN_RE = rf"^(>|({_SEGMENT}|\*)(\.({_SEGMENT}|\*)){{0,7}}(\.>)?)$"

ChannelName = Annotated[str, Field(min_length=1, max_length=128, pattern=CHANNEL_NAME_RE)]
"""Lower-case dotted segments of `a-z 0-9 _ -`, at most 8 segments and 128 bytes:
`code`, `code.python`, `team-a.code.review`."""
ChannelPattern = Annotated[str, Field(min_length=1, max_length=128, pattern=CHANNEL_PATTERN_RE)]
"""A channel name, or a pattern where `*` stands for exactly one segment and a
final `>` for one or more (the NATS subject rules): `code.*`, `*.review`, `code.>`."""
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s,]+$")]
Epoch = Annotated[str, Field(min_length=1, max_length=32)]

CLOSE_SLOW_CONSUMER = 4008
"""WebSocket close code for a subscriber that fell too far behind (private range,
RFC 6455 §7.4.2)."""


class Priority(StrEnum):
    """Ordered from least to most urgent; compare with `.rank`."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _PRIORITY_ORDER.index(self)


_PRIORITY_ORDER = list(Priority)


class KnowledgeType(StrEnum):
    SOLUTION = "SOLUTION"
    WARNING = "WARNING"
    DISCOVERY = "DISCOVERY"
    OPTIMIZATION = "OPTIMIZATION"
    BEST_PRACTICE = "BEST_PRACTICE"
    PATTERN = "PATTERN"
    ERROR_FIX = "ERROR_FIX"


Lax = Field(strict=False)
"""Enums arrive as JSON strings: let those fields accept their values."""


class MessageDraft(Strict):
    """What a publisher sends. Without `channel`, the
    type picks one: SOLUTION → solutions, WARNING → warnings, OPTIMIZATION →
    optimizations, anything else → general. Without `source_agent`, the token's agent."""

    knowledge_type: Annotated[KnowledgeType, Lax]
    title: str = Field(min_length=1, max_length=512)
    content: str = Field(default="", max_length=1 << 20)
    context: JsonObject = Field(default_factory=dict)
    priority: Annotated[Priority, Lax] = Priority.MEDIUM
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    channel: ChannelName | None = None
    source_agent: Name | None = None


class SolutionDraft(Strict):
    """share_solution: published to `solutions` as a SOLUTION."""

    problem: str = Field(min_length=1, max_length=512)
    solution: str = Field(min_length=1, max_length=1 << 20)
    context: JsonObject = Field(default_factory=dict)
    priority: Annotated[Priority, Lax] = Priority.MEDIUM
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    source_agent: Name | None = None


class DiscoveryDraft(Strict):
    """broadcast_discovery: published to `general` as a HIGH DISCOVERY."""

    title: str = Field(min_length=1, max_length=512)
    content: str = Field(default="", max_length=1 << 20)
    context: JsonObject = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    source_agent: Name | None = None


class KnowledgeMessage(BaseModel):
    """A published message as subscribers receive it."""

    id: int
    source_agent: str
    knowledge_type: KnowledgeType
    title: str
    content: str
    context: JsonObject
    priority: Priority
    tags: list[str]
    created_at: datetime


class HubMessage(KnowledgeMessage):
    """A published message as queries return it: where it sits, and how it was received."""

    channel: str
    offset: int
    epoch: str
    votes: int
    applications: int
    views: int
    popularity: float
    """votes + 2 · applications (see server/hub/popularity.py)."""


class Published(BaseModel):
    """The publisher's ack, sent once the message is committed."""

    id: int
    channel: str
    offset: int
    epoch: str


class StreamPosition(Strict):
    """Where a subscriber was on one channel: the last offset it saw, in which epoch."""

    offset: int = Field(ge=0, le=2**62)
    epoch: Epoch


class Subscription(Strict):
    """A subscription's options. With `since` (even `{}`), missed messages are
    replayed: from `since[channel]` for the channels it names, from the start of
    retained history for the other channels the pattern matches."""

    channel: ChannelPattern
    min_priority: Annotated[Priority, Lax] = Priority.LOW
    types: list[Annotated[KnowledgeType, Lax]] | None = Field(default=None, max_length=16)
    since: dict[ChannelName, StreamPosition] | None = Field(default=None, max_length=1024)


class Subscribed(BaseModel):
    channel: str
    """The subscription's name or pattern."""
    recovered: bool
    """False when some position in `since` is out of retention or from another epoch:
    the subscriber missed messages and should resync (GET /knowledge)."""
    lost: list[str]
    """The channels that could not be recovered."""
    replaying: int
    """Offsets about to be replayed, before `min_priority` and `types` filter them."""
    positions: dict[str, StreamPosition]
    """Each matching channel's latest offset and epoch at subscribe time."""


class Unsubscribed(BaseModel):
    channel: str


class ChannelCreate(Strict):
    name: ChannelName


class ChannelInfo(BaseModel):
    name: str
    epoch: str
    offset: int
    """The latest offset published; 0 when empty."""
    default: bool
    created_at: datetime


class Endorsement(Strict):
    """A vote or an application; `agent` defaults to the token's agent."""

    agent: Name | None = None


class Engagement(BaseModel):
    id: int
    votes: int
    applications: int
    views: int
    counted: bool
    """False when this agent had already voted: one vote per agent."""


class MessageQuery(Strict):
    """GET /knowledge; values arrive as text, so this one is lax. `query` ranks by
    BM25 (lexical); `tags` is comma separated and all must match."""

    model_config = Strict.model_config | {"strict": False}

    query: str | None = Field(default=None, min_length=1, max_length=512)
    min_priority: Priority = Priority.LOW
    type: KnowledgeType | None = None
    tags: str | None = Field(default=None, max_length=2048)
    channel: ChannelPattern | None = None
    limit: int = Field(default=20, ge=1, le=500)
    cursor: Cursor | None = None


class PopularQuery(Strict):
    model_config = Strict.model_config | {"strict": False}

    channel: ChannelPattern | None = None
    limit: int = Field(default=10, ge=1, le=100)


class HubLimits(BaseModel):
    max_message_bytes: int
    max_subscriptions: int
    publish_rate: float
    publish_burst: int
