"""Channel patterns on the client side, to route pushes to subscriptions. The
rules are the server's (docs/protocol.md, "Channels"); schemas/ holds no logic,
so the few lines live on both sides."""

from functools import lru_cache


@lru_cache(maxsize=1024)
def matches(pattern: str, name: str) -> bool:
    """`*` matches exactly one segment; a final `>` one or more."""
    want, have = pattern.split("."), name.split(".")
    for i, segment in enumerate(want):
        if segment == ">":
            return len(have) > i
        if i >= len(have) or (segment != "*" and segment != have[i]):
            return False
    return len(want) == len(have)
