"""Reading an offline W&B run back from its ``run-<id>.wandb`` file, with no network and no service.

Test support, and a look at a cluster run before ``wandb sync``: the config, summary, history,
artifacts and run record, as :mod:`stratdistill.tracking`'s W&B backend wrote them. Apart from the
backends because nothing in a pipeline run needs it; ``stratdistill.tracking.read_offline_run`` still
finds it.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _records(path: Path) -> Iterator[Any]:
    """The protobuf records of a ``run-<id>.wandb`` file (a LevelDB-style log behind a 7-byte header).

    Ours because wandb no longer ships a Python reader: ``wandb.sdk.internal.datastore`` left with the
    move of the internal process to Go (absent in wandb 0.31)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log")
    block, pos, pending = 32768, 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # the rest of a block too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:  # zero padding
            continue
        if kind in (1, 4):  # FULL, LAST
            rec = pb.Record()
            rec.ParseFromString(pending + chunk)
            pending = b""
            yield rec
        else:  # FIRST, MIDDLE
            pending += chunk


def _set(target: dict[str, Any], item: Any) -> None:
    """Apply one config/summary/history item: a ``key``, or a ``nested_key`` path to a leaf."""
    keys = [item.key] if item.key else list(item.nested_key)
    for k in keys[:-1]:
        target = target.setdefault(k, {})
    target[keys[-1]] = json.loads(item.value_json)


def read_offline_run(run_dir: Path, wait: float = 60.0) -> dict[str, Any]:
    """An offline run's config, summary, history, artifacts and run record, from its ``.wandb`` file.

    W&B's service may still be writing the file for a moment after ``finish()`` returns: this waits up
    to ``wait`` seconds for the run's exit record."""
    run_dir = Path(run_dir)
    (log_file,) = run_dir.glob("run-*.wandb")
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            if any(rec.WhichOneof("record_type") == "exit" for rec in _records(log_file)):
                break
        except Exception:  # a record cut in the middle of being written
            pass
        time.sleep(0.2)
    out: dict[str, Any] = {"config": {}, "summary": {}, "history": [], "artifacts": [], "run": {}}
    for rec in _records(log_file):
        which = rec.WhichOneof("record_type")
        if which == "run":
            r = rec.run
            out["run"] = {
                "id": r.run_id,
                "project": r.project,
                "group": r.run_group,
                "job_type": r.job_type,
                "name": r.display_name,
            }
            for item in r.config.update:
                _set(out["config"], item)
        elif which == "config":
            for item in rec.config.update:
                _set(out["config"], item)
        elif which == "summary":
            for item in rec.summary.update:
                _set(out["summary"], item)
        elif which == "history":
            row: dict[str, Any] = {}
            for item in rec.history.item:
                _set(row, item)
            out["history"].append(row)
        elif which == "artifact":
            a = rec.artifact
            out["artifacts"].append(
                {
                    "name": a.name,
                    "type": a.type,
                    "digest": a.digest,
                    "use_after_commit": a.use_after_commit,
                    "metadata": json.loads(a.metadata) if a.metadata else {},
                    "files": [e.path for e in a.manifest.contents],
                }
            )
        elif which == "exit":
            out["exit_code"] = rec.exit.exit_code
    out["config"].pop("_wandb", None)
    return out
