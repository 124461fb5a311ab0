"""An interaction's action signature: each action's identity, in order.

An action's identity is its type and its arguments: every field of the action
but the volatile ones, which say how a step went rather than what it did (ids,
timestamps, durations, outputs: `DEFAULT_VOLATILE`, plus any field the client
names in the interaction's `volatile_fields`). The client's spelling and case are
kept, since real commands are case-sensitive. A step is held as the canonical
JSON of its identity (keys sorted), so equal actions are one string, which the
miner counts, and the structured action can be read back from it (`structured`).

Limits, generous for real tool calls and documented in docs/protocol.md: the
first MAX_STEPS actions of an interaction, ARGS_MAX fields an action (by sorted
name), text values cut to VALUE_MAX characters and nested values to VALUE_MAX
characters of their JSON.
"""

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson

TYPE_KEYS = ("type", "action", "tool", "name")
"""Where an action names its type: the first of these it has."""
MAX_STEPS = 64
ARGS_MAX = 16
VALUE_MAX = 256
DEFAULT_VOLATILE = frozenset(
    {
        "id",
        "timestamp",
        "time",
        "ts",
        "duration",
        "elapsed",
        "latency",
        "output",
        "outputs",
        "stdout",
        "stderr",
        "result",
        "results",
        "status",
        "exit_code",
        "return_code",
        "error",
        "success",
    }
)
VOLATILE_SUFFIXES = ("_id", "_at", "_ms", "_s")
"""`call_id`, `started_at`, `duration_ms`, `elapsed_s` are volatile too."""
UNKNOWN = "?"
INT_LIMIT = 2**63


def action_signature(
    actions: Sequence[Mapping[str, Any]], volatile: Collection[str] = ()
) -> tuple[str, ...]:
    """The identity of each of the first MAX_STEPS actions, as canonical JSON."""
    return tuple(step_of(action, volatile) for action in actions[:MAX_STEPS])


def step_of(action: Mapping[str, Any], volatile: Collection[str] = ()) -> str:
    fields = {k: _bounded(v) for k, v in action.items() if not _volatile(k, volatile)}
    kept = dict(sorted(fields.items())[:ARGS_MAX])
    kind = type_key(action)
    if kind is not None and kind not in kept:
        kept[kind] = fields[kind]
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode()


def type_key(action: Mapping[str, Any]) -> str | None:
    """The field that names the action's type, if it has one with text in it."""
    for key in TYPE_KEYS:
        value = action.get(key)
        if value and isinstance(value, str):
            return key
    return None


def _volatile(key: str, volatile: Collection[str]) -> bool:
    if key in TYPE_KEYS:
        return False
    return key in volatile or key in DEFAULT_VOLATILE or key.endswith(VOLATILE_SUFFIXES)


def _bounded(value: Any) -> Any:
    if isinstance(value, str):
        return value[:VALUE_MAX]
    if isinstance(value, int) and not -INT_LIMIT <= value < INT_LIMIT:
        return str(value)[:VALUE_MAX]  # JSON numbers past 64 bits do not round-trip
    if isinstance(value, dict | list):
        try:
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            return str(value)[:VALUE_MAX]
        return value if len(text) <= VALUE_MAX else text[:VALUE_MAX]
    return value


def structured(step: str) -> dict[str, Any]:
    """The action a step stands for, as the client recorded it (less volatile
    fields). A step that is not an action's JSON (a WORKFLOW's shell command)
    stands for an action of that type."""
    if not step.startswith("{"):
        return {"type": step}
    try:
        value = orjson.loads(step)
    except orjson.JSONDecodeError:
        return {"type": step}
    return value if isinstance(value, dict) else {"type": step}


@functools.lru_cache(maxsize=65_536)
def step_type(step: str) -> str:
    """The step's type as the client spelled it, or `?`."""
    action = structured(step)
    kind = type_key(action)
    return str(action[kind]) if kind else UNKNOWN


@functools.lru_cache(maxsize=65_536)
def render_step(step: str) -> str:
    """A step as text: its type, then its arguments as name=value (JSON-quoted
    when a value is not a plain word): `take object="red apple"`."""
    return render_action(structured(step))


def render_action(action: Mapping[str, Any]) -> str:
    kind = type_key(action)
    args = [f"{k}={_text(v)}" for k, v in action.items() if k != kind]
    return " ".join([str(action[kind]) if kind else UNKNOWN, *args])


def _text(value: Any) -> str:
    if isinstance(value, str) and value and value.replace("_", "").replace("-", "").isalnum():
        return value
    return orjson.dumps(value).decode()


def render(signature: Sequence[str]) -> str:
    return " → ".join(render_step(s) for s in signature)
