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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import sys
import time
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

SAMPLES_PER_SCENARIO = 20  # rows per scenario and model in the generations table
UPLOAD_LIMIT = 2**30  # artifact folders above 1 GiB are logged as references, not uploaded


class Tracker(Protocol):
    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_artifact(
        self, path: Path, name: str, kind: str, metadata: dict[str, Any] | None = None, use: bool = False
    ) -> None: ...
    def log_table(self, name: str, table: Any) -> None: ...  # a pandas DataFrame
    def log_images(self, images: dict[str, Path]) -> None: ...
    def finish(self) -> None: ...


class NoTracker:
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


# --------------------------------------------------------------------------------------------------
# What the pipeline logs


class TrainerMetricsCallback:
    """A transformers ``TrainerCallback`` (by duck typing, so that building one does not import
    transformers) that sends every Trainer log line to the tracker as ``train/<key>`` at its step."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any):
        if not getattr(state, "is_world_process_zero", True):
            return None
        numbers = {f"train/{k}": float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
        if numbers:
            self.tracker.log_metrics(numbers, step=int(state.global_step))
        return None

    def __getattr__(self, name: str):
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def training_callbacks(tracker: Tracker) -> list[Any]:
    """Callbacks for the fine-tune that send its loss curve to ``tracker`` as it trains."""
    return [] if type(tracker) is NoTracker else [TrainerMetricsCallback(tracker)]


def _artifact_metadata(art: Any) -> dict[str, Any]:
    manifest = art.manifest
    return {"stage": art.stage, "key": art.key, **{k: v for k, v in manifest.items() if k != "spec"}}


def _parse_rate(status: dict[str, int]) -> float | None:
    total = sum(status.values())
    return status.get("ok", 0) / total if total else None


def _generations(
    artifacts: dict[str, Any], scenarios: dict[str, Any], per_scenario: int = SAMPLES_PER_SCENARIO
) -> list[dict[str, Any]]:
    """Teacher answers (training data and fresh eval answers) and student answers with their parses;
    a scored student (forced choice or forms: no sampled text) has one row per scenario with its most
    probable answer."""
    from stratdistill.artifacts import read_jsonl

    rows: list[dict[str, Any]] = []
    for stage, source in (("generate", "teacher (training data)"), ("evaluate_teacher", "teacher (eval)")):
        art = artifacts.get(stage)
        if art is None or not (art.path / "samples.jsonl").is_file():
            continue
        seen: dict[str, int] = {}
        for r in read_jsonl(art.path / "samples.jsonl"):
            if seen.setdefault(r["scenario"], 0) >= per_scenario:
                continue
            seen[r["scenario"]] += 1
            rows.append(
                {
                    "model": source,
                    "scenario": r["scenario"],
                    "answer": r.get("raw"),
                    "parsed": None if r.get("value") is None else str(r["value"]),
                    "parse_status": r.get("parse_status"),
                    "motivation": r.get("motivation"),
                    "p": None,
                }
            )
    for stage, source in (("evaluate_base", "base student"), ("evaluate_tuned", "tuned student")):
        art = artifacts.get(stage)
        if art is None or not (art.path / "results.jsonl").is_file():
            continue
        for r in read_jsonl(art.path / "results.jsonl"):
            answers = r.get("answers")
            if answers and r["scenario"] in scenarios:
                from stratdistill.dataset import parse_answer

                for text in answers[:per_scenario]:
                    parsed = parse_answer(scenarios[r["scenario"]], text)
                    rows.append(
                        {
                            "model": source,
                            "scenario": r["scenario"],
                            "answer": text,
                            "parsed": None if parsed.value is None else str(parsed.value),
                            "parse_status": parsed.status,
                            "motivation": None,
                            "p": None,
                        }
                    )
                continue
            if r.get("p_c") is not None:
                top, p = ("C", r["p_c"]) if r["p_c"] >= 0.5 else ("D", 1 - r["p_c"])
            else:
                dist = r.get("distribution") or {}
                top, p = max(dist.items(), key=lambda kv: kv[1]) if dist else (None, None)
            rows.append(
                {
                    "model": source,
                    "scenario": r["scenario"],
                    "answer": f"({r.get('estimator')}: most probable answer, valid mass "
                    f"{r.get('valid_mass', 0):.3f})",
                    "parsed": top,
                    "parse_status": r.get("estimator"),
                    "motivation": None,
                    "p": p,
                }
            )
    return rows


def log_pipeline(
    tracker: Tracker,
    cfg: Any,
    artifacts: dict[str, Any],
    results: Any,
    summary: dict[str, dict[str, float]],
    out_dir: Path,
    scenarios: dict[str, Any] | None = None,
) -> None:
    """Everything a finished run logs: stages, summary metrics, the training curve of a reused
    fine-tune, the dataset and adapter artifacts (lineage), the tables and the report's figures.
    A run that stopped early (``until``) passes what it has: empty results, fewer artifacts."""
    import pandas as pd

    tracker.log_params(
        {"stages": {name: {"key": a.key, "reused": a.reused} for name, a in artifacts.items()}}
    )
    metrics: dict[str, float] = {}
    from stratdistill.transfer import transfer_table

    transfer = transfer_table(results).set_index(["split", "predictor"]) if len(results) else None
    for split, s in summary.items():
        df = results[results["split"] == split]
        if transfer is not None and (split, "tuned") in transfer.index:
            t = transfer.loc[split]
            metrics |= {
                f"{split}/mae": float(t.at["tuned", "mae"]),
                f"{split}/game_effect_r": float(t.at["tuned", "game_r"]),
                f"{split}/game_effect_slope": float(t.at["tuned", "game_slope"]),
                f"{split}/constant_gap_closed_mean": float(t.at["constant", "gap_mean"]),
                f"{split}/shift_gap_closed_mean": float(t.at["shift", "gap_mean"]),
            }
        metrics |= {
            f"{split}/gap_closed_mean": s["mean"],
            f"{split}/gap_closed_median": s["median"],
            f"{split}/scenarios": s["n"],
            f"{split}/bridging_mean": float(df["bridging"].mean()),
            f"{split}/base_valid_mass": float(df["base_valid_mass"].mean()),
            f"{split}/tuned_valid_mass": float(df["tuned_valid_mass"].mean()),
        }
    for stage, name in (
        ("generate", "teacher/parse_rate_train"),
        ("evaluate_teacher", "teacher/parse_rate_eval"),
    ):
        if stage in artifacts:
            rate = _parse_rate(artifacts[stage].manifest.get("parse_status", {}))
            if rate is not None:
                metrics[name] = rate
    ft = artifacts.get("finetune")
    if ft is not None:
        m = ft.manifest
        metrics |= {f"train/{k}_final": m[k] for k in ("train_loss",) if m.get(k) is not None}
        metrics |= {f"train/{k}": m[k] for k in ("steps", "examples") if m.get(k) is not None}
        history = ft.path / "log_history.json"
        if ft.reused and history.is_file():  # a fresh fine-tune logged its curve live (callback)
            for h in json.loads(history.read_text()):
                numbers = {
                    f"train/{k}": v for k, v in h.items() if k != "step" and isinstance(v, int | float)
                }
                if numbers and "step" in h:
                    tracker.log_metrics(numbers, step=int(h["step"]))
    # an undefined figure (a constant's correlation, a split whose gaps are all undefined) is left out
    # of the summary rather than logged as NaN or 0
    tracker.log_metrics({k: v for k, v in metrics.items() if v is not None and v == v})

    if "generate" in artifacts:
        tracker.log_artifact(
            artifacts["generate"].path / "samples.jsonl",
            f"teacher-data-{cfg.teacher.name}",
            "dataset",
            _artifact_metadata(artifacts["generate"]),
            use=True,
        )
    if ft is not None:
        weights = "model" if cfg.train.method == "full" else "adapter"
        tracker.log_artifact(
            ft.path / weights,
            f"{weights}-{cfg.student.name}",
            "model",
            _artifact_metadata(ft),
        )
    tracker.log_table("generations", pd.DataFrame(_generations(artifacts, scenarios or {})))
    if not results.empty:
        tracker.log_table("results", results.drop(columns=["distributions"], errors="ignore"))
    tracker.log_images({f"figures/{p.stem}": p for p in sorted(Path(out_dir).glob("*.png"))})


# --------------------------------------------------------------------------------------------------
# Reading an offline W&B run back (no network): tests, and a look at a cluster run before syncing


def _records(path: Path):
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
