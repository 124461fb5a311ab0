"""An interaction's action signature: the sequence of its action types."""

from collections.abc import Mapping, Sequence
from typing import Any

ACTION_KEYS = ("type", "action", "tool", "name")
MAX_STEPS = 32
MAX_STEP_LEN = 64


def action_signature(actions: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The upper-cased type of each action, in order. An action names its type
    under the first of `type`, `action`, `tool` or `name` it has; others are `?`."""
    steps: list[str] = []
    for action in actions[:MAX_STEPS]:
        kind = action.get("type")
        if type(kind) is str and 0 < len(kind) <= MAX_STEP_LEN and kind.isupper():
            steps.append(kind)
        else:
            steps.append(_step(action))
    return tuple(steps)


def _step(action: Mapping[str, Any]) -> str:
    for key in ACTION_KEYS:
        value = action.get(key)
        if isinstance(value, str) and value:
            return value.strip().upper()[:MAX_STEP_LEN] or "?"
    return "?"


def render(signature: Sequence[str]) -> str:
    return " → ".join(signature)
