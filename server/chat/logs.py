"""Learning logs in DATA_DIR/logs, laid out so:

    session_log_<tenant>.<session id>_<end, UTC yyyymmddTHHMMSSZ>.json  one per session
    master_log.jsonl                                                    one line per session
    daemon_stats.json                                                   running totals

Crash safety: a JSON file is written to a temporary file in the same directory,
fsynced, and renamed over the old one (rename is atomic on POSIX), then the
directory is fsynced so the rename itself survives a power cut. A master-log line is
one write on an O_APPEND descriptor, then fsync; a line torn by a crash is ended
before the next append, so it costs only itself. The totals can be rebuilt from the
master log when the stats file is unreadable.

Synchronous on purpose: the session service runs the pipeline in a worker thread.
One process owns DATA_DIR, and a lock serialises its appends and stats updates.
"""

import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from server.core.clock import utc

log = logging.getLogger("kaizen.sessions")

SESSION_LOG_PREFIX = "session_log_"
MASTER_LOG = "master_log.jsonl"
STATS_FILE = "daemon_stats.json"
_NAME_PART_CHARS = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_LOCK = threading.Lock()


def session_log_name(tenant: str, session_id: str, ended_at: float) -> str:
    """session_log_<tenant>.<session id>_<UTC end>.json. Characters outside
    [A-Za-z0-9_-] become '-' and a hash of the original is added, so names never
    collide; the '.' between tenant and session cannot occur inside either."""
    stamp = utc(ended_at).strftime("%Y%m%dT%H%M%SZ")
    return f"{SESSION_LOG_PREFIX}{_safe(tenant)}.{_safe(session_id)}_{stamp}.json"


def _safe(part: str) -> str:
    cleaned = _UNSAFE.sub("-", part)[:_NAME_PART_CHARS]
    if cleaned == part and part:
        return part
    return f"{cleaned}-{hashlib.sha256(part.encode()).hexdigest()[:10]}"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Replace `path` with the JSON of `payload` (indented), all or nothing."""
    data = orjson.dumps(payload, option=orjson.OPT_INDENT_2, default=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_jsonl(path: Path, rows: Iterable[Any]) -> None:
    """Append one JSON line per row in a single write, then fsync."""
    lines = b"".join(orjson.dumps(row, default=str) + b"\n" for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, _after_torn_line(path) + lines)
            os.fsync(fd)
        finally:
            os.close(fd)


def _after_torn_line(path: Path) -> bytes:
    """A newline when the file's last line is unfinished (a crash mid-append)."""
    with path.open("rb") as existing:
        if existing.seek(0, os.SEEK_END) == 0:
            return b""
        existing.seek(-1, os.SEEK_END)
        return b"" if existing.read(1) == b"\n" else b"\n"


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file, skipping (and logging) lines that do not
    parse: a torn last line must not hide the others."""
    if not path.exists():
        return
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("skipping unreadable line %d of %s", number, path)
                continue
            if isinstance(row, dict):
                yield row


@dataclass(frozen=True, slots=True)
class SessionCounts:
    """What one processed session adds to the totals (a master-log line holds them)."""

    messages: int = 0
    memory_items: int = 0
    examples: int = 0
    fine_tunes: int = 0
    failed: bool = False


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """daemon_stats.json: the seed's totals plus examples prepared and sessions
    with a failed stage; uptime is the running service's to report, not the file's."""

    sessions_processed: int = 0
    total_messages: int = 0
    total_memory_items: int = 0
    total_examples: int = 0
    total_fine_tunes: int = 0
    sessions_with_failures: int = 0
    last_updated: str | None = None  # ISO 8601, UTC

    def added(self, counts: SessionCounts, now: float) -> "PipelineStats":
        return PipelineStats(
            self.sessions_processed + 1,
            self.total_messages + counts.messages,
            self.total_memory_items + counts.memory_items,
            self.total_examples + counts.examples,
            self.total_fine_tunes + counts.fine_tunes,
            self.sessions_with_failures + int(counts.failed),
            utc(now).isoformat(),
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PipelineStats":
        """Known fields only; a missing count is 0, so older files still load.
        Raises ValueError or TypeError on a count that is not a whole number."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "last_updated"]
        counts = {name: int(data.get(name, 0)) for name in names}
        updated = data.get("last_updated")
        return cls(**counts, last_updated=None if updated is None else str(updated))

    @classmethod
    def load(cls, logs_dir: Path) -> "PipelineStats":
        """The saved totals; zero when there are none yet, rebuilt from the master
        log when the file is unreadable."""
        saved = _saved_stats(logs_dir)
        return saved if saved is not None else stats_from_master_log(logs_dir)

    def save(self, logs_dir: Path) -> None:
        write_json_atomic(logs_dir / STATS_FILE, self.to_json())


def _saved_stats(logs_dir: Path) -> PipelineStats | None:
    """daemon_stats.json's totals: zero when absent, None when unreadable."""
    path = logs_dir / STATS_FILE
    if not path.exists():
        return PipelineStats()
    try:
        return PipelineStats.from_json(orjson.loads(path.read_bytes()))
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        log.warning("%s is unreadable: rebuilding the totals from %s", path, MASTER_LOG)
        return None


def stats_from_master_log(logs_dir: Path) -> PipelineStats:
    """The totals recomputed from every master-log line."""
    stats = PipelineStats()
    for row in read_jsonl(logs_dir / MASTER_LOG):
        stats = stats.added(counts_of(row), float(row.get("processed_at_ts", 0.0)))
    return stats


def counts_of(row: Mapping[str, Any]) -> SessionCounts:
    """The counts a master-log line records (see pipeline.session_log_entry)."""
    return SessionCounts(
        messages=int(row.get("messages_count", 0)),
        memory_items=int(row.get("memory_items_created", 0)),
        examples=int(row.get("examples_prepared", 0)),
        fine_tunes=int(bool(row.get("fine_tune_applied", False))),
        failed=bool(row.get("failed_stages")),
    )


def update_stats(logs_dir: Path, counts: SessionCounts, now: float) -> PipelineStats:
    """Add one session, whose master-log line is already written, to
    daemon_stats.json (read, add, replace atomically). An unreadable file is
    replaced by the totals of the master log, which count that line already."""
    with _LOCK:
        saved = _saved_stats(logs_dir)
        stats = saved.added(counts, now) if saved is not None else stats_from_master_log(logs_dir)
        stats.save(logs_dir)
    return stats


def write_session_log(logs_dir: Path, entry: Mapping[str, Any]) -> Path:
    """Write one session's log, named by session_log_name from the entry's tenant,
    session_id and end time (end_ts); returns its path."""
    name = session_log_name(entry["tenant"], entry["session_id"], entry["end_ts"])
    path = logs_dir / name
    write_json_atomic(path, entry)
    return path


def record_session(
    logs_dir: Path, entry: Mapping[str, Any], summary: Mapping[str, Any], now: float
) -> tuple[Path, PipelineStats]:
    """The three writes for one processed session, in order: its log, its
    master-log line, the totals. A crash between them leaves the totals one behind."""
    path = write_session_log(logs_dir, entry)
    append_jsonl(logs_dir / MASTER_LOG, [{**summary, "log_file": path.name}])
    return path, update_stats(logs_dir, counts_of(summary), now)
