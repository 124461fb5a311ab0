"""Session outcomes: inferred from its commands, overridden by what a client reports.

The design ("Outcome Inference") reads the seed commands of a session (its table,
`events.SEED_COMMANDS`):

- success indicators: `commit_changes`, `push_changes`, `save_file`,
  `command_completed`;
- failure indicators: `delete_file`;
- "Default: Sessions are assumed successful unless failure indicators are present."

So a session fails exactly when it holds a failure indicator, whatever success
indicators it also holds, and succeeds otherwise; the success indicators change
no verdict, and we report them only to explain one. The inference reads event
types, never `metadata.command`: `rm x` in a shell is no `file_delete`.

A client knows better: an event whose `metadata.outcome` is "success" or "failure"
(or a boolean) reports the session's real outcome, as does an explicit report;
the latest report wins over the inference.
"""

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Final


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


SUCCESS_INDICATORS: Final = frozenset(
    {"commit_changes", "push_changes", "save_file", "command_completed"}
)
FAILURE_INDICATORS: Final = frozenset({"delete_file"})


def infer_outcome(seed_commands: Iterable[str | None]) -> Outcome:
    """The rule: failure when any failure indicator is present, else success."""
    if any(command in FAILURE_INDICATORS for command in seed_commands):
        return Outcome.FAILURE
    return Outcome.SUCCESS


def indicators(seed_commands: Iterable[str | None]) -> tuple[set[str], set[str]]:
    """The (success, failure) indicators present: why `infer_outcome` said what it said."""
    present = {command for command in seed_commands if command is not None}
    return present & SUCCESS_INDICATORS, present & FAILURE_INDICATORS


def parse_outcome(value: Any) -> Outcome | None:
    """An outcome from "success"/"failure" (any case) or a boolean; None otherwise."""
    if isinstance(value, bool):
        return Outcome.SUCCESS if value else Outcome.FAILURE
    if isinstance(value, str):
        try:
            return Outcome(value.lower())
        except ValueError:
            return None
    return None


def reported_outcome(metadata: Mapping[str, Any]) -> Outcome | None:
    """The outcome an event reports in `metadata.outcome`, if any."""
    value = metadata.get("outcome")
    return None if value is None else parse_outcome(value)


def resolve(inferred: Outcome, reported: Outcome | None) -> Outcome:
    """A reported outcome overrides the inferred one."""
    return inferred if reported is None else reported
