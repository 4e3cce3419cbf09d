"""Content-addressed stage artifacts with atomic publication.

Each stage's output lives in ``<cache_dir>/<stage>/<key>/`` where ``key`` hashes exactly the inputs
that change the output (the relevant config, upstream artifact keys, and code/prompt versions). A
stage whose key already exists is not run again, so a sweep over student settings queries the teacher
once. A stage builds into ``<key>.partial/`` and is published by one ``os.replace`` after its manifest
is written: readers never see half an artifact. The ``.partial`` folder survives a crash, so a stage
that checkpoints into it (fine-tuning does) resumes where it stopped. A per-key ``flock`` makes
concurrent processes that need the same artifact build it once; the OS drops the lock when its holder
dies, so a killed job never blocks the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratdistill import __version__
from stratdistill.errors import ConfigError

MANIFEST = "manifest.json"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def content_key(stage: str, spec: dict[str, Any]) -> str:
    """A short stable hash of a stage's inputs (the package's major.minor version included)."""
    major_minor = ".".join(__version__.split(".")[:2])
    payload = canonical_json({"stage": stage, "spec": spec, "stratdistill": major_minor})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@dataclass(frozen=True)
class Artifact:
    stage: str
    key: str
    path: Path
    reused: bool

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / MANIFEST).read_text())


class ArtifactStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def staging_path(self, stage: str, key: str) -> Path:
        """Where a stage builds before publication (kept after a crash, so that the stage resumes)."""
        return self.root / stage / f"{key}.partial"

    def get(self, stage: str, key: str) -> Artifact | None:
        p = self.path(stage, key)
        if not (p / MANIFEST).is_file():
            return None
        return Artifact(stage, key, p, reused=True)

    @contextlib.contextmanager
    def lock(self, stage: str, key: str) -> Iterator[None]:
        """Hold the per-key file lock of ``<stage>/<key>`` (exclusive; the OS drops it if we die).

        Public because other caches under the same root (the converted student in ``models/``) take
        the same kind of lock, so concurrent jobs convert once."""
        lock_path = self.root / stage / f"{key}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def build(
        self,
        stage: str,
        spec: dict[str, Any],
        producer: Callable[[Path], dict[str, Any] | None],
        log: Callable[[str], None] = print,
    ) -> Artifact:
        """Return the artifact for ``spec``, running ``producer(staging_dir)`` only if it is missing.

        ``producer`` writes its files into the staging folder and may return extra manifest fields.
        """
        key = content_key(stage, spec)
        found = self.get(stage, key)
        if found is not None:
            log(f"[{stage}] reusing {found.path}")
            return found
        with self.lock(stage, key):
            found = self.get(stage, key)  # another process may have built it while we waited
            if found is not None:
                log(f"[{stage}] reusing {found.path} (built by another process)")
                return found
            final = self.path(stage, key)
            staging = self.staging_path(stage, key)
            staging.mkdir(parents=True, exist_ok=True)
            started = time.time()
            extra = producer(staging) or {}
            manifest = {
                "stage": stage,
                "key": key,
                "spec": spec,
                "stratdistill": __version__,
                "seconds": round(time.time() - started, 2),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **extra,
            }
            atomic_write_json(staging / MANIFEST, manifest)
            if final.exists():  # a stale, manifest-less folder from an old crash
                shutil.rmtree(final)
            os.replace(staging, final)
            log(f"[{stage}] wrote {final}")
            return Artifact(stage, key, final, reused=False)

    def wait_for(
        self,
        stage: str,
        spec: dict[str, Any],
        poll_s: float = 5.0,
        log: Callable[[str], None] = print,
        while_waiting: Callable[[Path], bool] | None = None,
    ) -> Artifact:
        """The artifact for ``spec`` once another process (rank 0 of a data-parallel run) publishes it.

        ``while_waiting(staging_dir)`` is called at every poll; when it returns True it did the work
        it was waiting for (e.g. joined the fine-tune), and we keep waiting for the publication.
        """
        key = content_key(stage, spec)
        said = 0.0
        started = time.time()
        while (found := self.get(stage, key)) is None:
            if while_waiting is not None and while_waiting(self.staging_path(stage, key)):
                while_waiting = None
                continue
            if time.time() - said >= 300:
                log(
                    f"[{stage}] waiting for rank 0 to publish {self.path(stage, key)} "
                    f"({time.time() - started:.0f} s so far)"
                )
                said = time.time()
            time.sleep(poll_s)
        log(f"[{stage}] using {found.path} (built by rank 0)")
        return found


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open() as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    str(path), f"line {i}", "a readable artifact (it is corrupt: delete it to rebuild)"
                ) from exc
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
