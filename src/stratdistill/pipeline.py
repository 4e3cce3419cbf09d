"""The pipeline: its stages in order, run (or reused) for one config, and the report.

Stages, in order (each is a :class:`~stratdistill.stages.base.Stage`, with its key rule and code
version; each lives in its own module of :mod:`stratdistill.stages`):

* ``generate``: the teacher's answers on the training scenarios;
* ``evaluate_teacher``: the teacher's answers on the evaluation scenarios (with the teacher's data, so
  that ``until=teacher`` runs every stage that needs the teacher model, in one big-GPU job);
* ``finetune``: the student trained on the answers;
* ``evaluate``: the base and the tuned student's estimates, one artifact each;

then the report, which is not cached (it is quick, and reads every artifact). Each stage's key covers
what changes its output, so sweeps share work: the teacher's data depends only on the teacher, its
temperature, the training scenarios, the sample count, the seed and its code; the base student's
evaluation does not depend on anything the fine-tune changes; only the fine-tune and the tuned
student's evaluation run once per sweep point.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from stratdistill.artifacts import Artifact, ArtifactStore, atomic_write_json, read_jsonl
from stratdistill.config import validate
from stratdistill.dataset import cooperation_rates, load_samples
from stratdistill.distributed import RankedStore, export_submitit_env, run_nonce
from stratdistill.metrics import split_summary
from stratdistill.report import write_report
from stratdistill.report_meta import report_meta
from stratdistill.results import assemble
from stratdistill.scenarios import Scenario, load_library, resolve_split
from stratdistill.stages.evaluate import EVALUATE, STUDENT_ESTIMATES_FILE, evaluate_student_stage
from stratdistill.stages.finetune import FINETUNE, finetune_stage
from stratdistill.stages.generate import GENERATE, generate_stage
from stratdistill.stages.teacher_access import TeacherOnce
from stratdistill.stages.teacher_eval import EVALUATE_TEACHER, evaluate_teacher_stage
from stratdistill.stages.tuned_student import TunedStudent
from stratdistill.tracking import log_pipeline, make_tracker, training_callbacks

log = logging.getLogger(__name__)

STAGES = (GENERATE, EVALUATE_TEACHER, FINETUNE, EVALUATE)
# until=...: the last stage to run
UNTIL = {"teacher": EVALUATE_TEACHER, "finetune": FINETUNE}


@dataclass
class RunResult:
    report: Path | None  # None when the run stopped early (``until``)
    results: pd.DataFrame
    summary: dict[str, dict[str, float]]
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    seconds: float = 0.0


def _c(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _unique(scenarios: list[Scenario]) -> list[Scenario]:
    seen: dict[str, Scenario] = {}
    for s in scenarios:
        seen.setdefault(s.key, s)
    return list(seen.values())


# Written into the run's folder by a run that stops early (until=...): which artifacts it built or reused.
# A run's artifacts live in the shared cache, so this is how an analysis of a sweep folder (e.g.
# python -m stratdistill.teacher_spread SWEEP_DIR) finds each job's teacher data.
STOPPED_ARTIFACTS_FILE = "artifacts.json"


def _stopped(cfg: Any, artifacts: dict[str, Artifact], started: float, tracker: Any, out: Path) -> RunResult:
    print(f"[until] stopping after the {cfg.until} stage(s), as until={cfg.until} asks", flush=True)
    atomic_write_json(
        out / STOPPED_ARTIFACTS_FILE,
        {
            "until": cfg.until,
            "artifacts": {
                name: {"key": a.key, "path": str(a.path), "reused": a.reused} for name, a in artifacts.items()
            },
        },
    )
    log_pipeline(tracker, cfg, artifacts, pd.DataFrame(), {}, out)  # the dataset / adapter artifacts
    return RunResult(None, pd.DataFrame(), {}, artifacts, time.time() - started)


def run_pipeline(cfg: Any, output_dir: str | Path) -> RunResult:
    """Run (or reuse) every stage for one config and write the report into ``output_dir``."""
    started = time.time()
    validate(cfg)  # every bad value fails here, before any model is loaded
    ranks = export_submitit_env()
    out = Path(output_dir)
    # one run in the tracker: rank 0's (the others train the same model)
    tracker = make_tracker(cfg.tracker if ranks.is_main else "none", out)
    try:
        tracker.log_params(_c(cfg))
        library = load_library(list(cfg.games.library_dirs), cfg.games.prompt_dir)
        train, eval_splits = resolve_split(library, cfg.split)
        if cfg.eval.splits is not None:
            eval_splits = {k: v for k, v in eval_splits.items() if k in set(cfg.eval.splits)}
        store = RankedStore(ArtifactStore(cfg.cache_dir), ranks, run_nonce(ranks))
        every_eval = _unique([s for ss in eval_splits.values() for s in ss])

        teacher_once = TeacherOnce(cfg)
        dataset = generate_stage(cfg, store, library, train, teacher_once)
        # the teacher's answers on the eval scenarios: with the teacher's data, so that `until=teacher`
        # runs every stage that needs the teacher model (one big-GPU job), and nothing else
        teacher_art = evaluate_teacher_stage(cfg, store, library, every_eval, dataset, teacher_once)
        teacher_once.release()
        until = UNTIL.get(cfg.until) if cfg.until else None
        if until is EVALUATE_TEACHER:
            return _stopped(
                cfg, {GENERATE.name: dataset, EVALUATE_TEACHER.name: teacher_art}, started, tracker, out
            )
        adapter: Artifact | None = None
        if cfg.eval.adapter:
            tuned_student = TunedStudent.from_folder(cfg.eval.adapter)
        else:
            adapter = finetune_stage(cfg, store, dataset, library, train, training_callbacks(tracker))
            tuned_student = TunedStudent.from_artifact(adapter, cfg.train.method)
        if until is FINETUNE or not ranks.is_main:
            arts = {GENERATE.name: dataset, **({FINETUNE.name: adapter} if adapter else {})}
            if not ranks.is_main:  # evaluation and the report are rank 0's
                print(
                    f"[rank {ranks.rank}] training done; rank 0 evaluates and writes the report", flush=True
                )
                return RunResult(None, pd.DataFrame(), {}, arts, time.time() - started)
            return _stopped(cfg, arts, started, tracker, out)
        base_art = evaluate_student_stage(
            cfg, store, library, every_eval, None, quantize_4bit=tuned_student.quantize_4bit
        )
        tuned_art = evaluate_student_stage(cfg, store, library, every_eval, tuned_student)

        train_rows = load_samples(dataset.path)
        teacher_rates = cooperation_rates(train_rows) | cooperation_rates(
            read_jsonl(teacher_art.path / "samples.jsonl")
        )
        base = {r["scenario"]: r for r in read_jsonl(base_art.path / STUDENT_ESTIMATES_FILE)}
        tuned = {r["scenario"]: r for r in read_jsonl(tuned_art.path / STUDENT_ESTIMATES_FILE)}
        shares = adapter.manifest.get("training_shares", {}) if adapter is not None else {}
        results = assemble(eval_splits, teacher_rates, base, tuned, shares)
        summary = {
            split: split_summary(df["gap_closed"]) for split, df in results.groupby("split", sort=False)
        }

        artifacts = {
            GENERATE.name: dataset,
            **({FINETUNE.name: adapter} if adapter else {}),
            f"{EVALUATE.name}_base": base_art,
            f"{EVALUATE.name}_tuned": tuned_art,
            EVALUATE_TEACHER.name: teacher_art,
        }
        report = write_report(results, report_meta(cfg, artifacts, teacher_rates), out)
        log_pipeline(tracker, cfg, artifacts, results, summary, out, {s.key: s for s in every_eval})
        return RunResult(report, results, summary, artifacts, time.time() - started)
    finally:
        tracker.finish()
