"""Error recoveries read off one interaction: "when X fails with E, doing Y".

Results align with actions by position. A step failed when its result says
`"success": false` or carries an error (`error_type`, `error`, `exception` or
`stderr`). Its recovery is what was done instead of it: the actions after it,
looking past repeats of the steps before it (redoing the set-up is not the fix),
up to and including the next step that did not fail, at most RECOVERY_MAX of
them. So A → B fails → A → C names C, not "repeat A". A failure that nothing
followed, or that nothing recovered from within RECOVERY_MAX steps, yields nothing.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

RECOVERY_MAX = 3
ERROR_KEYS = ("error_type", "error", "exception", "stderr")
ERROR_NAME_LEN = 64
_NAMED = re.compile(r"\b([A-Z][A-Za-z0-9]*(?:Error|Exception|Exit|Fault|Timeout|Denied|Refused))\b")
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")

Recovery = tuple[str, str, tuple[str, ...]]
"""(failed action, error name, recovery actions)"""


def recoveries(signature: Sequence[str], results: Sequence[Any]) -> list[Recovery]:
    """Each distinct (failed action, error, recovery) of one interaction, in order."""
    found: list[Recovery] = []
    for i, action in enumerate(signature):
        error = failure(results[i]) if i < len(results) else None
        fix = _recovery(signature, results, i) if error else None
        if error and fix and (action, error, fix) not in found:
            found.append((action, error, fix))
    return found


def _recovery(signature: Sequence[str], results: Sequence[Any], failed: int) -> tuple[str, ...]:
    before = set(signature[:failed])
    start = failed + 1
    while start < len(signature) and signature[start] in before:
        start += 1
    for j in range(start, min(start + RECOVERY_MAX, len(signature))):
        if j < len(results) and failure(results[j]) is None:
            return tuple(signature[start : j + 1])
    return ()


def last_failed(signature: Sequence[str], results: Sequence[Any]) -> int | None:
    """The position of the last step whose result says it failed, if any."""
    steps = min(len(signature), len(results))
    return next((i for i in reversed(range(steps)) if failure(results[i]) is not None), None)


def failed_steps(signature: Sequence[str], results: Sequence[Any]) -> list[str]:
    """Each distinct step that failed, in order of first failure."""
    steps = min(len(signature), len(results))
    failed = [signature[i] for i in range(steps) if failure(results[i]) is not None]
    return list(dict.fromkeys(failed))


def failure(result: Any) -> str | None:
    """The error name of a failed step's result, or None if the step did not fail."""
    if not isinstance(result, Mapping):
        return None
    text = next((v for k in ERROR_KEYS if isinstance(v := result.get(k), str) and v), None)
    if text is not None:
        return error_name(text)
    return "failed" if result.get("success") is False else None


def error_name(text: str) -> str:
    """An exception-like name if the text has one (`ModuleNotFoundError: No module…`
    → `ModuleNotFoundError`), else the text's first words with numbers masked, so
    `timeout after 30s` and `timeout after 45s` are one error."""
    named = _NAMED.search(text)
    if named:
        return named.group(1)[:ERROR_NAME_LEN]
    words = _SPACE.sub(" ", _DIGITS.sub("#", text.strip().lower())).split(" ")[:6]
    return " ".join(words)[:ERROR_NAME_LEN] or "failed"
