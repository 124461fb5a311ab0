"""Workflow events: what POST /events carries, and which of them are commands.

The design monitors fifteen event types and maps each to a command name (its table:
`file_open → open_file`, `git_commit → commit_changes`, ...). We keep that table and
allow custom types: any lowercase name matching CUSTOM_TYPE (`deploy`, `ci.run`,
`agent:tool_call`), the seed's "custom event mapping" enhancement.

A command is the unit a workflow is made of. Every event is one, except
`process_end`: it closes a `process_start` already counted, and counting both
would make every shell command a pair (X, command_completed). `process_end` still
feeds outcome inference, where the seed names `command_completed` an indicator.

The command of an event is, in order:

1. `metadata.command` normalised by `canonical_command`, when the event has one
   (`process_start`, `test_run`, `build_start`, custom types): the seed is blind
   to what ran; a shell line says whether it was `pytest` or `ls`;
2. the seed's command name for a seed type (`edit_code`, `run_tests`, ...);
3. the custom type itself, normalised as a command line would be (`python3` →
   `python`), so that a query names it as the learner stored it.

Normalisation keeps what names the action and strips its arguments, so that
`pytest -x tests/test_api.py` and `python -m pytest -q` are both `pytest`:

- only the first simple command of a line counts (`cd src && make` → `cd`);
- leading `NAME=value` assignments and wrappers (`sudo`, `time`, `env`, `nohup`,
  `nice`, `exec`, `command`) are dropped;
- the executable is its lowercased basename, with versions folded (`python3.11` →
  `python`, `pip3` → `pip`);
- runners give way to what they run (`python -m X`, `npx X`, `uv run X`,
  `poetry run X`, `pipenv run X`, `pnpm exec X`, `bunx X` → X);
- tools with subcommands keep the first argument that is no option and no
  assignment (`git commit`, `cargo test`, `make build`, `docker compose`); package
  managers keep a script they run (`npm run build`). Options that take a value
  before the subcommand are known for git only (`git -C dir commit`);
- characters outside [A-Za-z0-9_.@+:/-] become `_`, and a token is at most
  COMMAND_MAX characters, which makes the normalisation idempotent: a canonical
  token normalises to itself, so `GET /workflows/next?after=git commit` may name
  commands either raw or canonical.
"""

import functools
import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final


class EventType(StrEnum):
    """The monitored event types."""

    FILE_OPEN = "file_open"
    FILE_SAVE = "file_save"
    FILE_CREATE = "file_create"
    FILE_DELETE = "file_delete"
    FILE_MODIFY = "file_modify"
    PROCESS_START = "process_start"
    PROCESS_END = "process_end"
    EDITOR_OPEN = "editor_open"
    EDITOR_CLOSE = "editor_close"
    CODE_EDIT = "code_edit"
    TEST_RUN = "test_run"
    BUILD_START = "build_start"
    GIT_COMMIT = "git_commit"
    GIT_PUSH = "git_push"
    GIT_PULL = "git_pull"


SEED_COMMANDS: Final[Mapping[str, str]] = {
    EventType.FILE_OPEN: "open_file",
    EventType.FILE_SAVE: "save_file",
    EventType.FILE_CREATE: "create_file",
    EventType.FILE_DELETE: "delete_file",
    EventType.FILE_MODIFY: "modify_file",
    EventType.PROCESS_START: "execute_command",
    EventType.PROCESS_END: "command_completed",
    EventType.EDITOR_OPEN: "open_editor",
    EventType.EDITOR_CLOSE: "close_editor",
    EventType.CODE_EDIT: "edit_code",
    EventType.TEST_RUN: "run_tests",
    EventType.BUILD_START: "build_project",
    EventType.GIT_COMMIT: "commit_changes",
    EventType.GIT_PUSH: "push_changes",
    EventType.GIT_PULL: "pull_changes",
}
"""The table: event type → command."""

NOT_COMMANDS: Final = frozenset({EventType.PROCESS_END.value})
CUSTOM_TYPE: Final = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
SESSION_ID_MAX = 128
COMMAND_MAX = 64

FAILED_MARK: Final = "!"
"""Ends a failed command in a context (`pytest!`): what follows a failed test is a
fix, what follows a passing one a commit. No token holds it (`_UNSAFE`)."""

_WRAPPERS = frozenset({"sudo", "time", "env", "nohup", "nice", "exec", "command"})
_RUNNERS: Final[Mapping[str, str | None]] = {
    "python": "-m",
    "npx": None,
    "bunx": None,
    "uv": "run",
    "poetry": "run",
    "pipenv": "run",
    "pnpm": "exec",
}
"""Runner → the argument that must precede the tool it runs (None: none)."""
_SUBCOMMAND_TOOLS = frozenset(
    "git npm yarn pnpm bun cargo go docker podman kubectl helm pip uv poetry make gh "
    "terraform dotnet mvn gradle just brew apt conda rustup deno tox nox hatch".split()
)
_SCRIPT_RUNNERS = frozenset({"npm", "yarn", "pnpm", "bun"})
_VALUE_OPTIONS: Final[Mapping[str, frozenset[str]]] = {"git": frozenset({"-C", "-c"})}
_VERSIONED = re.compile(r"(python|pip)[0-9.]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@+:/-]")
_SHELL_SPECIAL = re.compile(r"[\"'\\;&|<>()$`\n]")
_OPERATOR = re.compile(r"[;&|<>()\n]+")


@dataclass(slots=True)
class Event:
    """One event of a tenant's session; `timestamp` in epoch seconds."""

    tenant: str
    session_id: str
    event_type: str
    timestamp: float
    metadata: dict[str, Any] = field(default_factory=dict)


def is_known_type(event_type: str) -> bool:
    """A seed type, or a custom type matching CUSTOM_TYPE."""
    return event_type in SEED_COMMANDS or CUSTOM_TYPE.fullmatch(event_type) is not None


def seed_command(event_type: str) -> str | None:
    """The seed's command for a seed type (None for custom types)."""
    return SEED_COMMANDS.get(event_type)


def command_of(event: Event) -> str | None:
    """The event's command token, or None when the event is not a command."""
    if event.event_type in NOT_COMMANDS:
        return None
    line = event.metadata.get("command")
    if isinstance(line, str):
        token = canonical_command(line)
        if token:
            return token
    seed = SEED_COMMANDS.get(event.event_type)
    if seed is not None:
        return seed
    return canonical_command(event.event_type) or event.event_type


def failed(event: Event) -> bool:
    """Whether the event says its command failed: `exit_code` not 0 (process_end),
    or `passed`, `ok` or `success` false (test_run, build_start, custom types)."""
    meta = event.metadata
    if not meta:
        return False
    code = meta.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        return True
    return any(meta.get(key) is False for key in ("passed", "ok", "success"))


def marked(command: str, is_failed: bool = True) -> str:
    """The context token of a command: FAILED_MARK appended when it failed."""
    if is_failed and not command.endswith(FAILED_MARK):
        return command + FAILED_MARK
    return command


def unmarked(token: str) -> str:
    """The command of a context token."""
    return token.removesuffix(FAILED_MARK)


def contexts_of(events: Sequence[Event], commands: Sequence[str | None]) -> list[str]:
    """The context tokens of a session's commands (`commands[i]` is event i's, None
    for no command): a failed command is marked, and an event that is no command
    but says a failure (process_end's exit code) marks the command before it."""
    tokens: list[str] = []
    for event, command in zip(events, commands, strict=True):
        if command is not None:
            tokens.append(marked(command, failed(event)))
        elif tokens and failed(event):
            tokens[-1] = marked(tokens[-1])
    return tokens


def query_token(item: str) -> str:
    """A context token from a client's `after` item: a raw or canonical command,
    FAILED_MARK at its end when it failed (`pytest -x!`)."""
    text = item.strip()
    is_failed = text.endswith(FAILED_MARK)
    command = text.removesuffix(FAILED_MARK).strip()
    return marked(canonical_command(command) or command, is_failed)


@functools.lru_cache(maxsize=8192)
def canonical_command(line: str) -> str:
    """`line` reduced to the token that names its action (the module's rules)."""
    words = _strip_prefixes(_first_simple_command(line))
    if not words:
        return ""
    exe = _executable(words[0])
    ran = _ran_by_runner(exe, words[1:])
    if ran is not None:
        return canonical_command(" ".join(ran)) or exe
    return _with_subcommand(exe, words[1:])[:COMMAND_MAX].rstrip()


def _first_simple_command(line: str) -> list[str]:
    """The words before the first shell operator; shlex only when quoting matters
    (a plain split is ten times faster and equal on lines without specials)."""
    if _SHELL_SPECIAL.search(line) is None:
        return line.split()
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        words = line.split()
    return _until_operator(words)


def _until_operator(words: list[str]) -> list[str]:
    for i, word in enumerate(words):
        if _OPERATOR.fullmatch(word):
            return words[:i]
    return words


def _strip_prefixes(words: list[str]) -> list[str]:
    """Drop leading `NAME=value` assignments and wrappers (and a wrapper's options)."""
    i = 0
    while i < len(words) and (
        "=" in words[i]
        or _executable(words[i]) in _WRAPPERS
        or (i > 0 and words[i].startswith("-"))
    ):
        i += 1
    return words[i:]


def _executable(word: str) -> str:
    name = word.rstrip("/").rsplit("/", 1)[-1].lower() or word.lower()
    versioned = _VERSIONED.fullmatch(name)
    if versioned:
        name = versioned.group(1)
    return _UNSAFE.sub("_", name)[:COMMAND_MAX]


def _ran_by_runner(exe: str, args: list[str]) -> list[str] | None:
    """What a runner runs (`python -m pytest -q` → `pytest -q`), else None."""
    if exe not in _RUNNERS:
        return None
    marker = _RUNNERS[exe]
    if marker is None:
        rest = [a for a in args if not a.startswith("-")]
        return args[args.index(rest[0]) :] if rest else None
    if marker in args and args.index(marker) + 1 < len(args):
        return args[args.index(marker) + 1 :]
    return None


def _with_subcommand(exe: str, args: list[str]) -> str:
    if exe not in _SUBCOMMAND_TOOLS:
        return exe
    words = _plain_arguments(exe, args)
    if not words:
        return exe
    if exe in _SCRIPT_RUNNERS and words[0] == "run" and len(words) > 1:
        return f"{exe} run {words[1]}"
    return f"{exe} {words[0]}"


def _plain_arguments(exe: str, args: list[str]) -> list[str]:
    """Arguments that are no option, no assignment, no option's value."""
    takes_value = _VALUE_OPTIONS.get(exe, frozenset())
    plain: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif not arg.startswith("-") and "=" not in arg:
            plain.append(_UNSAFE.sub("_", arg))
    return plain


# -- parsing -------------------------------------------------------------------


def event_from_dict(tenant: str, raw: Mapping[str, Any]) -> Event:
    """An `Event` from a POST /events item; ValueError says what is wrong."""
    return Event(
        tenant=tenant,
        session_id=_session_id(raw.get("session_id")),
        event_type=_event_type(raw.get("event_type")),
        timestamp=parse_timestamp(raw.get("timestamp")),
        metadata=_metadata(raw.get("metadata")),
    )


def _session_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= SESSION_ID_MAX:
        raise ValueError(f"session_id must be a string of 1 to {SESSION_ID_MAX} characters")
    return value


def _event_type(value: Any) -> str:
    if not isinstance(value, str) or not is_known_type(value):
        raise ValueError(f"event_type must be a seed type or match {CUSTOM_TYPE.pattern}")
    return value


def parse_timestamp(value: Any) -> float:
    """Epoch seconds from a number or an ISO 8601 string (naive means UTC)."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("timestamp must be epoch seconds or ISO 8601") from None
        value = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("timestamp must be epoch seconds or ISO 8601")
    return float(value)


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("metadata must be an object")
    return dict(value)
