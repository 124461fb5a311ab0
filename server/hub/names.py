"""Channel names and patterns (see `schemas.hub.ChannelName` for the rules)."""

from functools import lru_cache

from schemas import KnowledgeType

DEFAULT_CHANNELS = (
    "general",
    "solutions",
    "warnings",
    "optimizations",
    "code",
    "testing",
    "debugging",
    "jobs",
    "models",
)
"""Every tenant has these; they cannot be deleted."""

_CHANNEL_FOR_TYPE = {
    KnowledgeType.SOLUTION: "solutions",
    KnowledgeType.WARNING: "warnings",
    KnowledgeType.OPTIMIZATION: "optimizations",
}


def channel_for(kind: KnowledgeType) -> str:
    """Where a message goes when its publisher names no channel."""
    return _CHANNEL_FOR_TYPE.get(kind, "general")


def is_pattern(channel: str) -> bool:
    return "*" in channel or channel.endswith(">")


@lru_cache(maxsize=4096)
def matches(pattern: str, name: str) -> bool:
    """NATS subject matching: `*` matches exactly one segment; a final `>`
    matches one or more remaining segments; other segments match themselves."""
    want, have = pattern.split("."), name.split(".")
    for i, segment in enumerate(want):
        if segment == ">":
            return len(have) > i
        if i >= len(have) or (segment != "*" and segment != have[i]):
            return False
    return len(want) == len(have)
