"""The adapter registry: numbered, verified adapter versions on disk, and which serves.

Layout under `root`:

    versions/v000001/adapter_config.json     the files peft's save_pretrained wrote
    versions/v000001/adapter_model.safetensors
    versions/v000001/manifest.json           what, from which data, how good, sha256s
    pointers.json                            {"current", "previous", "best", "history"}
    tmp-*/                                   a version being written (ignored)

Atomic writes: a version is written into root/tmp-<random>, every file fsynced, then
renamed into versions/ in one os.rename, so a crash leaves either no version or a
whole one; stray tmp-* directories are ignored (and removed by `sweep`). The adapter
files never change after that. The manifest is replaced (tmp file, fsync, os.replace)
only to record a status change; pointers.json is written the same way.

Verification: a version counts only when its manifest parses, its name matches its
directory, and every file it lists has the SHA-256 it lists (the two peft files must
be among them). A corrupt or half-written version is skipped with a warning, as if
absent. Results are cached per version on the files' sizes and mtimes, so an
unchanged version is hashed once per process.

Pointers. `history` lists promoted versions, oldest first, and `current` is its last
valid entry (None: the base model serves). `promote(v)` moves v to the end of history
and marks it promoted. `rollback()` marks the current version rolled_back, drops it
from history and so makes the one promoted before it current again; when no promoted
version is left, current is None and the base model serves. Repeated rollbacks walk
further back. `previous` is the entry before current; `best` is the promoted version
with the lowest held-out loss in its manifest (a rough guide only: each version was
measured on the held-out split of its own data window).

Synchronous file I/O, guarded by a lock for threads of one process; the service calls
it in a worker thread. One process should own a root at a time.
"""

import builtins
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

log = logging.getLogger("kaizen.training.registry")

REQUIRED_FILES = ("adapter_config.json", "adapter_model.safetensors")
MANIFEST = "manifest.json"
POINTERS = "pointers.json"
_VERSION = re.compile(r"v(\d{6})")
_CHUNK = 1 << 20


class VersionStatus(StrEnum):
    CANDIDATE = "candidate"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"


class VersionNotFound(KeyError):
    """No valid version by that name (missing, corrupt or half-written)."""


class NothingToRollBack(RuntimeError):
    """rollback() while the base model serves."""


@dataclass(frozen=True, slots=True)
class Manifest:
    version: str
    base_model: str
    job_id: str
    created_at: float
    status: VersionStatus
    reason: str
    window: tuple[float, float] | None  # (start, end] of the training data
    counts: dict[str, int]  # example counts: train, held_out, replayed...
    metrics: dict[str, float | None]  # losses: train first/last, held_out, base, current
    files: dict[str, str]  # file name → sha256 hex
    extra: dict[str, Any] = field(default_factory=dict)  # anything else worth keeping

    @property
    def held_out_loss(self) -> float | None:
        return self.metrics.get("held_out_loss")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["window"] = list(self.window) if self.window else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Manifest":
        window = data.get("window")
        return cls(
            version=str(data["version"]),
            base_model=str(data["base_model"]),
            job_id=str(data["job_id"]),
            created_at=float(data["created_at"]),
            status=VersionStatus(data["status"]),
            reason=str(data.get("reason", "")),
            window=(float(window[0]), float(window[1])) if window else None,
            counts={str(k): int(v) for k, v in data.get("counts", {}).items()},
            metrics={str(k): _maybe_float(v) for k, v in data.get("metrics", {}).items()},
            files={str(k): str(v) for k, v in data["files"].items()},
            extra=dict(data.get("extra", {})),
        )


@dataclass(frozen=True, slots=True)
class Pointers:
    current: str | None = None
    previous: str | None = None
    best: str | None = None
    history: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "history": list(self.history)}


def _maybe_float(value: Any) -> float | None:
    return None if value is None else float(value)


class AdapterRegistry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # version → (stamp of its files, manifest or None when invalid)
        self._verified: dict[str, tuple[tuple[tuple[int, int], ...], Manifest | None]] = {}

    # -- versions -----------------------------------------------------------------

    def add(
        self,
        staging_dir: str | Path,
        *,
        base_model: str,
        job_id: str,
        window: tuple[float, float] | None = None,
        counts: Mapping[str, int] | None = None,
        metrics: Mapping[str, float | None] | None = None,
        status: VersionStatus = VersionStatus.CANDIDATE,
        reason: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> Manifest:
        """Copy the adapter files in `staging_dir` (its top-level regular files) into a
        new version, numbered one past the highest number ever used under versions/.
        Raises ValueError when a peft file is missing. The staging dir is left as is."""
        staging = Path(staging_dir)
        files = sorted(p for p in staging.iterdir() if p.is_file() and p.name != MANIFEST)
        if missing := set(REQUIRED_FILES) - {p.name for p in files}:
            raise ValueError(f"{staging} lacks {', '.join(sorted(missing))}")
        with self._lock:
            tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=self.root))
            try:
                hashes = {p.name: _copy_synced(p, tmp / p.name) for p in files}
                fields = {
                    "base_model": base_model,
                    "job_id": job_id,
                    "window": window,
                    "counts": dict(counts or {}),
                    "metrics": dict(metrics or {}),
                    "status": status,
                    "reason": reason,
                    "extra": dict(extra or {}),
                }
                return self._publish(tmp, hashes, fields)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # gone already when published

    def _publish(self, tmp: Path, hashes: dict[str, str], fields: dict[str, Any]) -> Manifest:
        """Name the version, write its manifest and rename tmp into versions/."""
        version = _version_name(self._highest_number() + 1)
        manifest = Manifest(version=version, created_at=time.time(), files=hashes, **fields)
        _write_json_synced(tmp / MANIFEST, manifest.to_json())
        _fsync_dir(tmp)
        os.rename(tmp, self.versions_dir / version)  # atomic; fails if the name is taken
        _fsync_dir(self.versions_dir)
        log.info("adapter %s added (job %s, %s)", version, manifest.job_id, manifest.status.value)
        return manifest

    def list(self) -> list[Manifest]:
        """Every valid version, oldest first."""
        with self._lock:
            return [m for name in self._names() if (m := self._load(name)) is not None]

    def get(self, version: str) -> Manifest:
        with self._lock:
            manifest = self._load(version) if _VERSION.fullmatch(version) else None
            if manifest is None:
                raise VersionNotFound(version)
            return manifest

    def path_of(self, version: str) -> Path:
        """The version's directory (for PeftModel.from_pretrained); raises
        VersionNotFound unless the version is valid."""
        return self.versions_dir / self.get(version).version

    def archive_bytes(self, version: str) -> bytes:
        """A gzipped tar of the version's files, under a top folder named after it."""
        directory = self.path_of(version)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(directory.iterdir()):
                tar.add(path, arcname=f"{version}/{path.name}")
        return buffer.getvalue()

    def set_status(self, version: str, status: VersionStatus, reason: str = "") -> Manifest:
        """Record a new status (and why) in the version's manifest."""
        with self._lock:
            manifest = replace(self.get(version), status=status, reason=reason)
            directory = self.versions_dir / version
            _write_json_synced(directory / f".{MANIFEST}.tmp", manifest.to_json())
            os.replace(directory / f".{MANIFEST}.tmp", directory / MANIFEST)
            _fsync_dir(directory)
            self._verified.pop(version, None)
            return manifest

    def reject(self, version: str, reason: str) -> Manifest:
        return self.set_status(version, VersionStatus.REJECTED, reason)

    def sweep(self) -> int:
        """Remove leftover tmp-* directories of interrupted adds; how many went.
        Only call it while no add is running."""
        with self._lock:
            leftovers = list(self.root.glob("tmp-*"))
            for path in leftovers:
                shutil.rmtree(path, ignore_errors=True)
            return len(leftovers)

    # -- pointers -----------------------------------------------------------------

    def pointers(self) -> Pointers:
        """The pointers, with corrupt or missing versions left out of history."""
        with self._lock:
            history = tuple(v for v in self._read_history() if self._load(v) is not None)
            return self._pointers_for(history)

    def current(self) -> Manifest | None:
        """The serving version, or None when the base model serves."""
        with self._lock:
            current = self.pointers().current
            return None if current is None else self.get(current)

    def promote(self, version: str, reason: str = "") -> Manifest:
        """Make `version` current (see the module doc); returns its new manifest."""
        with self._lock:
            self.get(version)
            history = [*(v for v in self._read_history() if v != version), version]
            manifest = self.set_status(version, VersionStatus.PROMOTED, reason)
            self._write_pointers(history)
            log.info("adapter %s promoted", version)
            return manifest

    def rollback(self, reason: str = "rolled back") -> Manifest | None:
        """Retire the current version (status rolled_back) and serve the one promoted
        before it; returns the new current manifest, or None when the base model now
        serves. Raises NothingToRollBack when the base model already serves."""
        with self._lock:
            current = self.pointers().current
            if current is None:
                raise NothingToRollBack("the base model serves; nothing to roll back")
            self.set_status(current, VersionStatus.ROLLED_BACK, reason)
            self._write_pointers([v for v in self._read_history() if v != current])
            log.warning("adapter %s rolled back: %s", current, reason)
            return self.current()

    # -- internals ----------------------------------------------------------------

    def _names(self) -> builtins.list[str]:
        return sorted(p.name for p in self.versions_dir.iterdir() if _VERSION.fullmatch(p.name))

    def _highest_number(self) -> int:
        """Counts invalid versions too, so a number is never used twice."""
        names = self._names()
        return int(names[-1][1:]) if names else 0

    def _load(self, version: str) -> Manifest | None:
        """The verified manifest, or None when the version is not valid (logged once
        per change of its files)."""
        directory = self.versions_dir / version
        stamp = _stamp(directory)
        cached = self._verified.get(version)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        manifest: Manifest | None = None
        try:
            manifest = _verified_manifest(directory)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("adapter %s ignored: %s", version, exc)
        self._verified[version] = (stamp, manifest)
        return manifest

    def _read_history(self) -> builtins.list[str]:
        try:
            data = json.loads((self.root / POINTERS).read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("%s unreadable, no adapter serves: %s", POINTERS, exc)
            return []
        return [str(v) for v in data.get("history", [])]

    def _pointers_for(self, history: tuple[str, ...]) -> Pointers:
        return Pointers(
            current=history[-1] if history else None,
            previous=history[-2] if len(history) > 1 else None,
            best=self._best(history),
            history=history,
        )

    def _best(self, history: Iterable[str]) -> str | None:
        scored = [(m.held_out_loss, m.version) for v in history if (m := self._load(v))]
        ranked = sorted((loss, v) for loss, v in scored if loss is not None)
        return ranked[0][1] if ranked else None

    def _write_pointers(self, history: builtins.list[str]) -> None:
        pointers = self._pointers_for(tuple(history))
        tmp = self.root / f".{POINTERS}.tmp"
        _write_json_synced(tmp, pointers.to_json())
        os.replace(tmp, self.root / POINTERS)
        _fsync_dir(self.root)


def _version_name(number: int) -> str:
    return f"v{number:06d}"


def _stamp(directory: Path) -> tuple[tuple[int, int], ...]:
    """(size, mtime_ns) of every file in the directory: changes when any file does."""
    try:
        stats = [p.stat() for p in sorted(directory.iterdir())]
    except OSError:
        return ()
    return tuple((s.st_size, s.st_mtime_ns) for s in stats)


def _verified_manifest(directory: Path) -> Manifest:
    manifest = Manifest.from_json(json.loads((directory / MANIFEST).read_text()))
    if manifest.version != directory.name:
        raise ValueError(f"manifest names {manifest.version}")
    if missing := set(REQUIRED_FILES) - set(manifest.files):
        raise ValueError(f"manifest lacks {', '.join(sorted(missing))}")
    for name, digest in manifest.files.items():
        if Path(name).name != name or _sha256(directory / name) != digest:
            raise ValueError(f"{name} does not match its sha256")
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_synced(source: Path, target: Path) -> str:
    """Copy, fsync and return the sha256 of what was written."""
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def _write_json_synced(path: Path, data: Mapping[str, Any]) -> None:
    with path.open("w") as file:
        json.dump(data, file, indent=2, sort_keys=True)
        file.flush()
        os.fsync(file.fileno())


def _fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in `directory` durable (POSIX)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
