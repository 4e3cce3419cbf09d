"""What a pipeline run sends to its tracker, and when: the logging policy, apart from the backends.

:mod:`stratdistill.tracking` says *how* a backend records params, metrics, artifacts, tables and images;
this module decides *what* the pipeline records, so that changing the summary (a new metric, a renamed
key) never touches a backend:

* while a fine-tune trains: its Trainer log lines as ``train/<key>`` curves (:func:`training_callbacks`);
* when the run ends (:func:`log_pipeline`): which stages ran or were reused, the summary metrics per
  split (:func:`summary_metrics`: gap closed, the no-learning baselines, MAE, game effects, bridging,
  valid mass, parse rates, training figures), the training curve of a reused fine-tune, the dataset and
  weights as artifacts (lineage), the generations and results tables and the report's figures.

An undefined figure is left out of the summary rather than logged as NaN or 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratdistill.tracking import Tracker

SAMPLES_PER_SCENARIO = 20  # rows per scenario and model in the generations table
EVAL_RESULTS = (
    "results.jsonl"  # an evaluate artifact's per-scenario figures (stages.evaluate.STUDENT_ESTIMATES_FILE)
)


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
    from stratdistill.tracking import NoTracker  # here: tracking re-exports this module

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
        if art is None or not (art.path / EVAL_RESULTS).is_file():
            continue
        for r in read_jsonl(art.path / EVAL_RESULTS):
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


def summary_metrics(
    artifacts: dict[str, Any], results: Any, summary: dict[str, dict[str, float]]
) -> dict[str, float]:
    """The run's final figures, as W&B summary keys: per split the gap closed (mean, median, scenarios),
    the tuned student's MAE and game effects with what a constant and a uniform shift score, bridging and
    valid mass; the teacher's parse rates; the fine-tune's final loss, steps and examples. An undefined
    figure (a constant's correlation, a split whose gaps are all undefined) is left out rather than
    logged as NaN or 0."""
    from stratdistill.transfer import transfer_table

    metrics: dict[str, float] = {}
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
    return {k: v for k, v in metrics.items() if v is not None and v == v}


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
    ft = artifacts.get("finetune")
    if ft is not None:
        history = ft.path / "log_history.json"
        if ft.reused and history.is_file():  # a fresh fine-tune logged its curve live (callback)
            for h in json.loads(history.read_text()):
                numbers = {
                    f"train/{k}": v for k, v in h.items() if k != "step" and isinstance(v, int | float)
                }
                if numbers and "step" in h:
                    tracker.log_metrics(numbers, step=int(h["step"]))
    tracker.log_metrics(summary_metrics(artifacts, results, summary))

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
