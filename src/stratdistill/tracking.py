"""Experiment trackers behind one small interface, so another backend is one class away.

``none`` records nothing; ``jsonl`` appends params, metrics, tables and artifact paths to
``metrics.jsonl`` in the run's output folder (readable with pandas, no service needed); ``wandb`` logs
to Weights & Biases, offline unless ``WANDB_API_KEY`` is set (or ``tracker.mode=online``), so it works
on cluster nodes without internet; ``wandb sync`` uploads the offline run later.

The interface (:class:`Tracker`) is six calls: ``log_params``, ``log_metrics`` (with a step: a point of
a curve; without: a final value, W&B's summary), ``log_artifact`` (``use=True`` declares it an input of
the run, for lineage), ``log_table``, ``log_images`` and ``finish``. An MLflow backend would map them to
``mlflow.log_params``, ``mlflow.log_metrics(step=...)``, ``mlflow.log_artifacts`` / ``mlflow.log_input``,
``mlflow.log_table``, ``mlflow.log_image`` and ``mlflow.end_run``.

One Hydra job is one tracked run (``job_type="pipeline"``): the pipeline's stages run inside one job and
most of them are usually reused from the artifact cache, so a run per stage would mostly log empty runs.
Which stages ran and which were reused is in the run's config (``stages``). Group = the sweep, run name =
the job's overrides, and the run id is deterministic (the SLURM job ids, else the output folder), with
``resume="allow"``: a requeued SLURM job continues its run instead of starting a second one.

This module is the interface and its backends. What the pipeline logs, and when, is
:mod:`stratdistill.tracking_policy`; reading an offline W&B run back (tests, a look before ``wandb
sync``) is :mod:`stratdistill.wandb_offline`. Both are re-exported here, where the pipeline and the
README find them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

UPLOAD_LIMIT = 2**30  # artifact folders above 1 GiB are logged as references, not uploaded


class Tracker(Protocol):
    """What a backend implements (see the module docstring)."""

    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_artifact(
        self, path: Path, name: str, kind: str, metadata: dict[str, Any] | None = None, use: bool = False
    ) -> None: ...
    def log_table(self, name: str, table: Any) -> None: ...  # a pandas DataFrame
    def log_images(self, images: dict[str, Path]) -> None: ...
    def finish(self) -> None: ...


class NoTracker:
    """Records nothing (``tracker.backend=none``, the default)."""

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_artifact(
        self, path: Path, name: str, kind: str, metadata: dict[str, Any] | None = None, use: bool = False
    ) -> None:
        pass

    def log_table(self, name: str, table: Any) -> None:
        pass

    def log_images(self, images: dict[str, Path]) -> None:
        pass

    def finish(self) -> None:
        pass


class JsonlTracker(NoTracker):
    """Appends every call as one JSON line to ``metrics.jsonl`` in the run's output folder."""

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

    def log_artifact(
        self, path: Path, name: str, kind: str, metadata: dict[str, Any] | None = None, use: bool = False
    ) -> None:
        self._write("artifact", {"name": name, "type": kind, "path": str(path), "used": use})

    def log_table(self, name: str, table: Any) -> None:
        self._write("table", {"name": name, "rows": table.to_dict("records")})

    def log_images(self, images: dict[str, Path]) -> None:
        self._write("images", {"images": {k: str(v) for k, v in images.items()}})

    def finish(self) -> None:
        self._fh.close()


# --------------------------------------------------------------------------------------------------
# Weights & Biases


def hydra_context() -> dict[str, Any]:
    """What Hydra knows about this job (empty outside a Hydra app): overrides, sweep, job number."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return {}
        hc = HydraConfig.get()
        from hydra.types import RunMode

        multirun = hc.mode == RunMode.MULTIRUN
        return {
            "overrides": list(hc.overrides.task),
            "override_dirname": hc.job.override_dirname,
            "job_num": hc.job.get("num", 0),
            "multirun": multirun,
            "sweep_dir": str(hc.sweep.dir) if multirun else None,
            "sweep": hc.runtime.choices.get("sweep"),
            "output_dir": hc.runtime.output_dir,
        }
    except Exception:  # a Hydra without these fields must not stop the run
        return {}


def slurm_ids() -> dict[str, str]:
    keys = ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_ID", "SLURM_RESTART_COUNT")
    return {k: os.environ[k] for k in keys if os.environ.get(k)}


def run_id(out_dir: Path, context: dict[str, Any], env: dict[str, str] | None = None) -> str:
    """A W&B run id that a requeued job recomputes: the SLURM job (array job + task, or job id), the
    Hydra job number and the overrides when running under SLURM (a requeue may get a new timestamped
    folder), else the absolute output folder."""
    env = slurm_ids() if env is None else env
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        slurm = f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    else:
        slurm = env.get("SLURM_JOB_ID", "")
    if slurm:
        basis = f"slurm:{slurm}:{context.get('job_num', 0)}:{context.get('override_dirname', '')}"
    else:
        basis = f"dir:{Path(out_dir).resolve()}"
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def wandb_mode(configured: str | None, env: dict[str, str] | None = None) -> str:
    """``tracker.mode`` if given, else WANDB_MODE, else online with an API key and offline without."""
    env = dict(os.environ) if env is None else env
    if configured:
        return configured
    if env.get("WANDB_MODE"):
        return env["WANDB_MODE"]
    return "online" if env.get("WANDB_API_KEY") else "offline"


def _group(cfg: Any, context: dict[str, Any]) -> str | None:
    if cfg.get("group"):
        return str(cfg.group)
    if not context.get("multirun") or not context.get("sweep_dir"):
        return None
    parts = Path(context["sweep_dir"]).parts[-3:]
    name = "/".join(parts)
    return f"{context['sweep']}:{name}" if context.get("sweep") else name


class WandbTracker(NoTracker):
    """One W&B run for one pipeline run (see the module docstring for the choices)."""

    def __init__(self, cfg: Any, out_dir: Path, context: dict[str, Any] | None = None) -> None:
        import wandb

        self._wandb = wandb
        context = hydra_context() if context is None else context
        self.mode = wandb_mode(cfg.get("mode"))
        root = Path(cfg.get("dir") or out_dir)
        root.mkdir(parents=True, exist_ok=True)
        self.id = cfg.get("run_id") or run_id(out_dir, context)
        self.run = wandb.init(
            project=cfg.get("project") or "stratdistill",
            entity=cfg.get("entity"),
            dir=str(root),
            mode=self.mode,
            id=self.id,
            resume="allow",
            group=_group(cfg, context),
            job_type="pipeline",
            name=context.get("override_dirname") or Path(out_dir).name,
            config={"hydra": {k: v for k, v in context.items()}, "slurm": slurm_ids()},
            reinit="finish_previous",
            settings=wandb.Settings(disable_git=True, x_save_requirements=False),
        )
        self.run_dir = Path(self.run.dir).parent  # .../wandb/offline-run-<date>-<id>
        if self.mode == "offline":
            print(f"[tracker] W&B run offline in {self.run_dir}; upload with: wandb sync {self.run_dir}")

    def log_params(self, params: dict[str, Any]) -> None:
        self.run.config.update(params, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if step is None:
            self.run.summary.update(metrics)
        else:
            self.run.log(metrics, step=step)

    def log_artifact(
        self, path: Path, name: str, kind: str, metadata: dict[str, Any] | None = None, use: bool = False
    ) -> None:
        path = Path(path)
        art = self._wandb.Artifact(name, type=kind, metadata=metadata or {})
        # stage artifacts are content-addressed and never change: no copy into W&B's staging folder;
        # large ones (fully fine-tuned weights) are referenced in place (checksums, no upload)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0
        if size > UPLOAD_LIMIT:
            art.add_reference(path.resolve().as_uri())
        elif path.is_dir():
            art.add_dir(str(path), policy="immutable")
        else:
            art.add_file(str(path), policy="immutable")
        if not use:
            self.run.log_artifact(art)
        elif self.mode != "offline":
            self.run.use_artifact(art)  # logs the draft, then records this run as its user
        else:
            # offline runs may not call use_artifact; this is what it does for a draft artifact, and the
            # "use after commit" flag travels in the offline log to `wandb sync`
            self.run._log_artifact(art, is_user_created=True, use_after_commit=True)

    def log_table(self, name: str, table: Any) -> None:
        df = table.astype(object).where(table.notna(), None)
        self.run.log({name: self._wandb.Table(dataframe=df)})

    def log_images(self, images: dict[str, Path]) -> None:
        if images:
            self.run.log({k: self._wandb.Image(str(v)) for k, v in images.items()})

    def finish(self) -> None:
        failed = sys.exc_info()[0] is not None  # called from a `finally`: is an exception on its way?
        self.run.finish(exit_code=1 if failed else 0)


def make_tracker(tracker_cfg: Any, out_dir: Path) -> Tracker:
    """The tracker that ``tracker.backend`` names (``tracker_cfg`` may also be the backend's name)."""
    backend = tracker_cfg if isinstance(tracker_cfg, str) else tracker_cfg.backend
    if backend == "jsonl":
        return JsonlTracker(out_dir)
    if backend == "wandb":
        from omegaconf import OmegaConf

        node = OmegaConf.create({"backend": "wandb"}) if isinstance(tracker_cfg, str) else tracker_cfg
        return WandbTracker(node, Path(out_dir))
    return NoTracker()


# the pipeline's logging policy and the offline reader, importable from here as before the split
from stratdistill.tracking_policy import (  # noqa: E402
    SAMPLES_PER_SCENARIO,
    TrainerMetricsCallback,
    log_pipeline,
    summary_metrics,
    training_callbacks,
)
from stratdistill.wandb_offline import read_offline_run  # noqa: E402

__all__ = [
    "SAMPLES_PER_SCENARIO",
    "JsonlTracker",
    "NoTracker",
    "Tracker",
    "TrainerMetricsCallback",
    "WandbTracker",
    "hydra_context",
    "log_pipeline",
    "make_tracker",
    "read_offline_run",
    "run_id",
    "slurm_ids",
    "summary_metrics",
    "training_callbacks",
    "wandb_mode",
]
