"""Experiment trackers behind one small interface, so another backend is one class away.

``none`` records nothing; ``jsonl`` appends params and metrics to ``metrics.jsonl`` in the run's
output folder (readable with pandas, no service needed).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def finish(self) -> None: ...


class NoTracker:
    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def finish(self) -> None:
        pass


class JsonlTracker:
    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a")

    def _write(self, kind: str, payload: dict[str, Any], step: int | None = None) -> None:
        self._fh.write(
            json.dumps({"time": time.time(), "kind": kind, "step": step, **payload}, default=str) + "\n"
        )
        self._fh.flush()

    def log_params(self, params: dict[str, Any]) -> None:
        self._write("params", {"params": params})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._write("metrics", {"metrics": metrics}, step)

    def finish(self) -> None:
        self._fh.close()


def make_tracker(backend: str, out_dir: Path) -> Tracker:
    return JsonlTracker(out_dir) if backend == "jsonl" else NoTracker()
