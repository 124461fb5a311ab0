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
Errors = tuple[str | None, ...]
"""The error name of each step that has a result, None where it did not fail."""


def step_errors(signature: Sequence[str], results: Sequence[Any]) -> Errors:
    return tuple(failure(results[i]) for i in range(min(len(signature), len(results))))


def recoveries(signature: Sequence[str], errors: Errors) -> list[Recovery]:
    """Each distinct (failed action, error, recovery) of one interaction, in order."""
    found: list[Recovery] = []
    for i, error in enumerate(errors):
        fix = _recovery(signature, errors, i) if error else None
        if error and fix and (signature[i], error, fix) not in found:
            found.append((signature[i], error, fix))
    return found


def _recovery(signature: Sequence[str], errors: Errors, failed: int) -> tuple[str, ...]:
    before = set(signature[:failed])
    start = failed + 1
    while start < len(signature) and signature[start] in before:
        start += 1
    for j in range(start, min(start + RECOVERY_MAX, len(signature))):
        if j < len(errors) and errors[j] is None:
            return tuple(signature[start : j + 1])
    return ()


def last_failed(errors: Errors) -> int | None:
    """The position of the last step whose result says it failed, if any."""
    return next((i for i in reversed(range(len(errors))) if errors[i] is not None), None)


def failed_steps(signature: Sequence[str], errors: Errors) -> list[str]:
    """Each distinct step whose last use in the interaction failed. A step that
    failed and then worked when done again failed for a passing reason (a
    transient error, a set-up not yet done): no evidence against the step."""
    last = {signature[i]: e for i, e in enumerate(errors)}
    return [step for step, error in last.items() if error is not None]


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
