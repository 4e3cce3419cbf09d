"""The four stages wired together: generate -> finetune -> evaluate -> report.

Each of the first three stages is a content-addressed artifact (:mod:`stratdistill.artifacts`) whose
key hashes exactly what changes its output, so sweeps share work: the teacher's data depends only on
the teacher, its temperature, the training scenarios, the sample count and the seed; the base
student's evaluation does not depend on anything the fine-tune changes; only the fine-tune and the
tuned student's evaluation run once per sweep point.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from stratdistill.artifacts import Artifact, ArtifactStore, read_jsonl, write_jsonl
from stratdistill.config import validate
from stratdistill.dataset import (
    cooperation_rates,
    load_samples,
    sample_teacher,
    scenario_spec,
    training_examples,
    write_samples,
)
from stratdistill.evaluate import FORMS_VERSION, evaluate_model
from stratdistill.metrics import bridging, improvement, split_summary
from stratdistill.prompts import PROMPT_VERSION
from stratdistill.reference import paper_counts, paper_mean_donation
from stratdistill.report import write_report
from stratdistill.scenarios import Library, PublicGoodsGame, Scenario, load_library, resolve_split
from stratdistill.teachers import build_teacher
from stratdistill.tracking import make_tracker

log = logging.getLogger(__name__)
RESULTS_FILE = "results.jsonl"


@dataclass
class RunResult:
    report: Path
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


def generate_stage(cfg: Any, store: ArtifactStore, library: Library, train: list[Scenario]) -> Artifact:
    instruction = "action_motivation"
    spec = {
        "teacher": _c(cfg.teacher),
        "temperature": cfg.temperature.teacher,
        "n": cfg.data.teacher_samples,
        "seed": cfg.seed,
        "instruction": instruction,
        "prompt_version": PROMPT_VERSION,
        "scenarios": [scenario_spec(s, library, instruction) for s in train],
    }

    def produce(folder: Path) -> dict[str, Any]:
        teacher = build_teacher(cfg.teacher, cfg.temperature.teacher)
        rows = sample_teacher(
            teacher,
            train,
            library,
            instruction,
            cfg.data.teacher_samples,
            cfg.seed,
            cfg.temperature.teacher,
            purpose="train",
        )
        return {**write_samples(folder, rows), "teacher_description": teacher.description}

    return store.build("generate", spec, produce)


def finetune_stage(cfg: Any, store: ArtifactStore, dataset: Artifact) -> Artifact:
    spec = {
        "student": _c(cfg.student),
        "lora": _c(cfg.lora),
        "train": _c(cfg.train),
        "seed": cfg.seed,
        "data": {"motivations": cfg.data.motivations, "train_per_scenario": cfg.data.train_per_scenario},
        "dataset": dataset.key,
        "prompt_version": PROMPT_VERSION,
    }

    def produce(folder: Path) -> dict[str, Any]:
        from stratdistill.finetune import finetune

        rows = load_samples(dataset.path)
        examples = training_examples(rows, cfg.data.motivations, cfg.data.train_per_scenario)
        provenance = {
            "base_model": cfg.student.model_id,
            "revision": cfg.student.revision,
            "dataset_key": dataset.key,
            "config": spec,
        }
        return finetune(
            examples, cfg.student, cfg.lora, cfg.train, cfg.seed, cfg.cache_dir, folder, provenance
        )

    return store.build("finetune", spec, produce)


def evaluate_student_stage(
    cfg: Any, store: ArtifactStore, library: Library, scenarios: list[Scenario], adapter: Artifact | None
) -> Artifact:
    instruction = cfg.eval.instruction
    spec = {
        "student": _c(cfg.student),
        "adapter": adapter.key if adapter else None,
        "method": cfg.eval.method,
        "forms_version": FORMS_VERSION,
        "prompt_version": PROMPT_VERSION,
        "scenarios": [scenario_spec(s, library, instruction) for s in scenarios],
    }
    label = "tuned student" if adapter else "base student"

    def produce(folder: Path) -> dict[str, Any]:
        from stratdistill.students import load_student

        model, tok = load_student(cfg.student, cfg.cache_dir, adapter.path / "adapter" if adapter else None)
        rows = evaluate_model(model, tok, scenarios, library, instruction, label)
        write_jsonl(folder / RESULTS_FILE, rows)
        return {"label": label}

    return store.build("evaluate", spec, produce)


def evaluate_teacher_stage(
    cfg: Any, store: ArtifactStore, library: Library, scenarios: list[Scenario], dataset: Artifact
) -> Artifact:
    """Teacher behaviour per eval scenario: its training answers where it has them (as in the paper's
    in-sample figures), else fresh answers to the one-letter instruction (as in its held-out runs)."""
    trained = set(cooperation_rates(load_samples(dataset.path)))
    fresh = [s for s in scenarios if s.key not in trained]
    spec = {
        "teacher": _c(cfg.teacher),
        "temperature": cfg.temperature.teacher,
        "n": cfg.eval.teacher_samples,
        "seed": cfg.seed,
        "instruction": "action_only",
        "prompt_version": PROMPT_VERSION,
        "scenarios": [scenario_spec(s, library, "action_only") for s in fresh],
    }

    def produce(folder: Path) -> dict[str, Any]:
        teacher = build_teacher(cfg.teacher, cfg.temperature.teacher)
        rows = (
            sample_teacher(
                teacher,
                fresh,
                library,
                "action_only",
                cfg.eval.teacher_samples,
                cfg.seed,
                cfg.temperature.teacher,
                purpose="eval",
            )
            if fresh
            else []
        )
        return write_samples(folder, rows)

    return store.build("evaluate_teacher", spec, produce)


def _value(entry: dict[str, Any]) -> float | None:
    if "p_c" in entry:
        return entry["p_c"]
    return entry.get("mean_donation")


def _paper(scenario: Scenario) -> dict[str, float | None]:
    if isinstance(scenario.game, PublicGoodsGame):
        if scenario.key != "donation":
            return {m: None for m in ("base", "tuned", "teacher")}
        return {m: paper_mean_donation(m) for m in ("base", "tuned", "teacher")}
    df = paper_counts()
    if scenario.key not in df.index:
        return {m: None for m in ("base", "tuned", "teacher")}
    row = df.loc[scenario.key]
    return {m: float(row[f"{m}_c"] / row[f"{m}_n"]) for m in ("base", "tuned", "teacher")}


def assemble(
    eval_splits: dict[str, list[Scenario]],
    teacher_rates: dict[str, dict[str, Any]],
    base: dict[str, dict[str, Any]],
    tuned: dict[str, dict[str, Any]],
) -> pd.DataFrame:
    rows = []
    for split, scenarios in eval_splits.items():
        for sc in scenarios:
            t, b, u = _value(teacher_rates[sc.key]), _value(base[sc.key]), _value(tuned[sc.key])
            paper = _paper(sc)
            paper_imp = (
                improvement(paper["base"], paper["tuned"], paper["teacher"])
                if paper["base"] is not None
                else None
            )
            rows.append(
                {
                    "split": split,
                    "scenario": sc.key,
                    "context": sc.context_key or "-",
                    "game": sc.game.key,
                    "kind": sc.game.kind,
                    "teacher": t,
                    "base": b,
                    "tuned": u,
                    "improvement": improvement(b, u, t) if t is not None else float("nan"),
                    "bridging": bridging(b, u, t) if t is not None else float("nan"),
                    "teacher_n": teacher_rates[sc.key]["n"],
                    "teacher_failed": teacher_rates[sc.key]["n_failed"],
                    "base_valid_mass": base[sc.key]["valid_mass"],
                    "tuned_valid_mass": tuned[sc.key]["valid_mass"],
                    "paper_teacher": paper["teacher"],
                    "paper_base": paper["base"],
                    "paper_tuned": paper["tuned"],
                    "paper_improvement": paper_imp,
                }
            )
    return pd.DataFrame(rows)


def run_pipeline(cfg: Any, output_dir: str | Path) -> RunResult:
    """Run (or reuse) every stage for one config and write the report into ``output_dir``."""
    started = time.time()
    validate(cfg)  # every bad value fails here, before any model is loaded
    out = Path(output_dir)
    tracker = make_tracker(cfg.tracker.backend, out)
    try:
        tracker.log_params(_c(cfg))
        library = load_library(list(cfg.games.library_dirs), cfg.games.prompt_dir)
        train, eval_splits = resolve_split(library, cfg.split)
        if cfg.eval.splits is not None:
            eval_splits = {k: v for k, v in eval_splits.items() if k in set(cfg.eval.splits)}
        store = ArtifactStore(cfg.cache_dir)
        every_eval = _unique([s for ss in eval_splits.values() for s in ss])

        dataset = generate_stage(cfg, store, library, train)
        adapter = finetune_stage(cfg, store, dataset)
        base_art = evaluate_student_stage(cfg, store, library, every_eval, None)
        tuned_art = evaluate_student_stage(cfg, store, library, every_eval, adapter)
        teacher_art = evaluate_teacher_stage(cfg, store, library, every_eval, dataset)

        train_rows = load_samples(dataset.path)
        teacher_rates = cooperation_rates(train_rows) | cooperation_rates(
            read_jsonl(teacher_art.path / "samples.jsonl")
        )
        base = {r["scenario"]: r for r in read_jsonl(base_art.path / RESULTS_FILE)}
        tuned = {r["scenario"]: r for r in read_jsonl(tuned_art.path / RESULTS_FILE)}
        results = assemble(eval_splits, teacher_rates, base, tuned)
        summary = {
            split: split_summary(df["improvement"]) for split, df in results.groupby("split", sort=False)
        }

        ft = adapter.manifest
        ds = dataset.manifest
        teacher_desc = ds.get("teacher_description", cfg.teacher.name)
        meta = {
            "teacher": f"`{cfg.teacher.name}` — {teacher_desc}; temperature {cfg.temperature.teacher}",
            "student": f"`{cfg.student.name}` ({cfg.student.model_id})",
            "estimator": (
                "exact (probability of each valid answer form, normalised; teacher: sampled answers)"
            ),
            "data": (
                f"{ds['rows']} teacher answers ({cfg.data.teacher_samples} per training scenario, "
                f"parse status {ds['parse_status']}); trained on "
                f"{'action + motivation' if cfg.data.motivations else 'action only'}, "
                f"{cfg.data.train_per_scenario or 'all'} per scenario"
            ),
            "training": (
                f"LoRA r={cfg.lora.r}, alpha={cfg.lora.alpha} (scale {ft.get('lora_scale', 0):g}), "
                f"targets {list(cfg.lora.target_modules)}; {ft.get('examples')} examples, "
                f"{ft.get('steps')} steps, lr {cfg.train.learning_rate}, mean train loss "
                f"{ft.get('train_loss', float('nan')):.3f}"
            ),
            "teacher_parse": [
                {"scenario": k, "answers": v["n"], "parsed": v["n_ok"], "failed": v["n_failed"]}
                for k, v in teacher_rates.items()
            ],
            "provenance": {
                "dataset": dataset.path,
                "adapter": adapter.path,
                "base eval": base_art.path,
                "tuned eval": tuned_art.path,
                "teacher eval": teacher_art.path,
                "reused": ", ".join(
                    a.stage + ("(tuned)" if a is tuned_art else "")
                    for a in (dataset, adapter, base_art, tuned_art, teacher_art)
                    if a.reused
                )
                or "none",
            },
        }
        report = write_report(results, meta, out)
        for split, s in summary.items():
            tracker.log_metrics(
                {f"{split}/gap_closed_mean": s["mean"], f"{split}/gap_closed_median": s["median"]}
            )
        artifacts = {
            "generate": dataset,
            "finetune": adapter,
            "evaluate_base": base_art,
            "evaluate_tuned": tuned_art,
            "evaluate_teacher": teacher_art,
        }
        return RunResult(report, results, summary, artifacts, time.time() - started)
    finally:
        tracker.finish()
