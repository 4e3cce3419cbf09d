"""The four stages wired together: generate -> finetune -> evaluate -> report.

Each of the first three stages is a content-addressed artifact (:mod:`stratdistill.artifacts`) whose
key hashes exactly what changes its output, so sweeps share work: the teacher's data depends only on
the teacher, its temperature, the training scenarios, the sample count and the seed; the base
student's evaluation does not depend on anything the fine-tune changes; only the fine-tune and the
tuned student's evaluation run once per sweep point.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from stratdistill.artifacts import Artifact, ArtifactStore, read_jsonl, write_jsonl
from stratdistill.config import validate
from stratdistill.dataset import (
    action_shares,
    cooperation_rates,
    load_samples,
    sample_teacher,
    scenario_spec,
    training_examples,
    write_samples,
)
from stratdistill.decision import decision_point
from stratdistill.distributed import RankedStore, export_submitit_env, run_nonce
from stratdistill.evaluate import ESTIMATOR_VERSION, evaluate_model
from stratdistill.metrics import split_summary
from stratdistill.prompts import PROMPT_VERSION, messages_for
from stratdistill.report import write_report
from stratdistill.results import assemble
from stratdistill.scenarios import Library, Scenario, load_library, resolve_split
from stratdistill.teachers import build_teacher
from stratdistill.teachers.reference import STAND_IN_VERSION
from stratdistill.tracking import log_pipeline, make_tracker, training_callbacks

log = logging.getLogger(__name__)
RESULTS_FILE = "results.jsonl"


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


# Teacher settings that change how answers are fetched, not which answers come back.
_TEACHER_NOT_IN_KEY = ("concurrency", "max_retries", "request_timeout", "api_key_env")


def _teacher_key(cfg: Any) -> dict[str, Any]:
    return {k: v for k, v in _c(cfg.teacher).items() if k not in _TEACHER_NOT_IN_KEY}


def _max_resamples(cfg: Any) -> int:
    """Extra tries per unparseable teacher answer (data.parse_failures=resample), else 0."""
    return cfg.data.max_resamples if cfg.data.parse_failures == "resample" else 0


class TeacherOnce:
    """Builds the teacher at most once per run, and only if a stage needs it (both teacher stages are
    often reused); :meth:`release` frees it (a GPU full of teacher) before the student trains."""

    def __init__(self, cfg: Any) -> None:
        self.cfg, self._teacher = cfg, None

    def __call__(self):
        if self._teacher is None:
            c = self.cfg
            self._teacher = build_teacher(c.teacher, c.temperature.teacher, c.cache_dir, c.seed)
        return self._teacher

    def release(self) -> None:
        if self._teacher is not None:
            self._teacher = None
            import gc

            gc.collect()
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def generate_stage(
    cfg: Any,
    store: ArtifactStore,
    library: Library,
    train: list[Scenario],
    teacher_once: TeacherOnce | None = None,
) -> Artifact:
    instruction = "action_motivation"
    spec = {
        "teacher": _teacher_key(cfg),
        "temperature": cfg.temperature.teacher,
        "n": cfg.data.teacher_samples,
        "seed": cfg.seed,
        "instruction": instruction,
        "prompt_version": PROMPT_VERSION,
        "scenarios": [scenario_spec(s, library, instruction) for s in train],
        **({"max_resamples": _max_resamples(cfg)} if _max_resamples(cfg) else {}),
    }

    def produce(folder: Path) -> dict[str, Any]:
        teacher = (teacher_once or TeacherOnce(cfg))()
        rows = sample_teacher(
            teacher,
            train,
            library,
            instruction,
            cfg.data.teacher_samples,
            cfg.seed,
            cfg.temperature.teacher,
            purpose="train",
            chunk_dir=folder / "chunks",
            max_resamples=_max_resamples(cfg),
        )
        shutil.rmtree(folder / "chunks")  # the chunks are in samples.jsonl now
        return {**write_samples(folder, rows), "teacher_description": teacher.description}

    return store.build("generate", spec, produce)


# Train settings that do not change the trained weights, so they stay out of the artifact key.
_NOT_IN_KEY = ("save_steps", "logging_steps")


@dataclass(frozen=True)
class TunedStudent:
    """What the tuned student is: a LoRA adapter or fully fine-tuned weights, and its content key."""

    key: str
    adapter: Path | None = None
    weights: Path | None = None
    quantize_4bit: bool = False

    @staticmethod
    def from_artifact(art: Artifact, method: str) -> TunedStudent:
        if method == "full":
            return TunedStudent(art.key, weights=art.path / "model")
        return TunedStudent(art.key, adapter=art.path / "adapter", quantize_4bit=method == "qlora")

    @staticmethod
    def from_folder(path: str) -> TunedStudent:
        """An existing PEFT adapter (``eval.adapter``), keyed by the hash of its files."""
        folder = Path(path).resolve()
        digest = hashlib.sha256()
        for f in sorted(folder.glob("adapter_*")):
            digest.update(f.name.encode() + f.read_bytes())
        return TunedStudent(digest.hexdigest()[:16], adapter=folder)


def training_shares(rows: list[dict[str, Any]], examples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario: the teacher's share of C over all its parsed answers, and over the answers the text
    loss trains on (the report shows them side by side)."""
    teacher = cooperation_rates(rows)
    trained: dict[str, list[Any]] = {}
    for e in examples:
        trained.setdefault(e["scenario"], []).append(e.get("value"))
    out = {}
    for key, entry in teacher.items():
        if entry.get("p_c") is None:
            continue
        acts = [a for a in trained.get(key, []) if a in ("C", "D")]
        out[key] = {
            "teacher_p_c": entry["p_c"],
            "teacher_n": entry["n_ok"],
            "trained_p_c": acts.count("C") / len(acts) if acts else None,
            "trained_n": len(acts),
        }
    return out


def finetune_stage(
    cfg: Any,
    store: ArtifactStore,
    dataset: Artifact,
    library: Library,
    train_scenarios: list[Scenario],
    callbacks: list | None = None,
) -> Artifact:
    train = {k: v for k, v in _c(cfg.train).items() if k not in _NOT_IN_KEY}
    spec = {
        "student": _c(cfg.student),
        "lora": None if cfg.train.method == "full" else _c(cfg.lora),
        "train": train,
        "seed": cfg.seed,
        "data": {
            "motivations": cfg.data.motivations,
            "train_per_scenario": cfg.data.train_per_scenario,
            "order": cfg.data.order,
            "shuffle_motivations": cfg.data.shuffle_motivations,
            # only when it changes the examples, so that existing adapters keep their keys
            **({"parse_failures": "keep"} if cfg.data.parse_failures == "keep" else {}),
            "subsample": cfg.data.subsample if cfg.data.train_per_scenario is not None else None,
        },
        # the decision loss reads the student where evaluation does: same opening, same temperature
        "decision": {"opening": cfg.eval.opening_2x2, "temperature": cfg.eval.temperature}
        if cfg.train.decision_weight > 0
        else None,
        "dataset": dataset.key,
        "prompt_version": PROMPT_VERSION,
    }

    def produce(folder: Path) -> dict[str, Any]:
        from stratdistill.finetune import finetune

        rows = load_samples(dataset.path)
        examples = training_examples(
            rows,
            cfg.data.motivations,
            cfg.data.train_per_scenario,
            order=cfg.data.order,
            shuffle_motivations=cfg.data.shuffle_motivations,
            seed=cfg.seed,
            parse_failures=cfg.data.parse_failures,
            subsample=cfg.data.subsample,
        )
        shares = action_shares(rows)
        decisions = {
            sc.key: {
                "messages": messages_for(sc, "action_motivation", library),
                "opening": cfg.eval.opening_2x2,
                "group": sc.context_key,
                "options": decision_point(sc, cfg.eval.opening_2x2, cfg.eval.opening_public_goods).options,
                "shares": shares[sc.key],
            }
            for sc in train_scenarios
            if sc.key in shares
        }
        provenance = {
            "base_model": cfg.student.model_id,
            "revision": cfg.student.revision,
            "dataset_key": dataset.key,
            "config": spec,
        }
        info = finetune(
            examples,
            cfg.student,
            cfg.lora,
            cfg.train,
            cfg.seed,
            cfg.cache_dir,
            folder,
            provenance,
            callbacks,
            decisions=decisions,
            decision_temperature=cfg.eval.temperature,
        )
        return {**info, "training_shares": training_shares(rows, examples)}

    return store.build("finetune", spec, produce)


def _decoding_key(cfg: Any) -> dict[str, Any] | None:
    """The evaluation settings that change an estimate, per estimator."""
    e = cfg.eval
    if e.method == "forced_choice":
        return {
            "opening_2x2": e.opening_2x2,
            "opening_public_goods": e.opening_public_goods,
            "temperature": e.temperature,
            "repetition_penalty": e.repetition_penalty,
        }
    if e.method == "sampled":
        keys = ("samples", "temperature", "max_new_tokens", "repetition_penalty")
        return {k: e[k] for k in keys} | {"seed": cfg.seed}
    return None


def evaluate_student_stage(
    cfg: Any,
    store: ArtifactStore,
    library: Library,
    scenarios: list[Scenario],
    tuned: TunedStudent | None,
    quantize_4bit: bool = False,
) -> Artifact:
    """The base (``tuned=None``) or tuned student's estimates. ``quantize_4bit`` scores the base in NF4
    as its QLoRA-tuned counterpart is, so that the measured change is training's alone."""
    instruction = cfg.eval.instruction
    quantize_4bit = tuned.quantize_4bit if tuned else quantize_4bit
    spec = {
        "student": _c(cfg.student),
        "adapter": tuned.key if tuned else None,
        **({"quantize_4bit": True} if quantize_4bit else {}),
        "method": cfg.eval.method,
        "estimator_version": ESTIMATOR_VERSION[cfg.eval.method],
        "decoding": _decoding_key(cfg),
        "prompt_version": PROMPT_VERSION,
        "scenarios": [scenario_spec(s, library, instruction) for s in scenarios],
    }
    label = "tuned student" if tuned else "base student"

    def produce(folder: Path) -> dict[str, Any]:
        from stratdistill.students import load_student

        if tuned is None:
            model, tok = load_student(cfg.student, cfg.cache_dir, quantize_4bit=quantize_4bit)
        else:
            model, tok = load_student(cfg.student, cfg.cache_dir, tuned.adapter, tuned.weights, quantize_4bit)
        rows = evaluate_model(model, tok, scenarios, library, instruction, label, cfg.eval, cfg.seed)
        write_jsonl(folder / RESULTS_FILE, rows)
        weights = next(model.parameters())
        return {
            "label": label,
            "device": str(weights.device),
            "dtype": "nf4 (4-bit)" if quantize_4bit else str(weights.dtype).removeprefix("torch."),
        }

    return store.build("evaluate", spec, produce)


def evaluate_teacher_stage(
    cfg: Any,
    store: ArtifactStore,
    library: Library,
    scenarios: list[Scenario],
    dataset: Artifact,
    teacher_once: TeacherOnce | None = None,
) -> Artifact:
    """Teacher behaviour per eval scenario: its training answers where it has them (as in the paper's
    in-sample figures), else fresh answers to the one-letter instruction (as in its held-out runs)."""
    trained = set(cooperation_rates(load_samples(dataset.path)))
    fresh = [s for s in scenarios if s.key not in trained]
    spec = {
        "teacher": _teacher_key(cfg),
        # the stand-in's rates are code: version 2 answers the doubled games at their published rates
        **({"stand_in_version": STAND_IN_VERSION} if cfg.teacher.backend == "reference" else {}),
        "temperature": cfg.temperature.teacher,
        "n": cfg.eval.teacher_samples,
        "seed": cfg.seed,
        "instruction": "action_only",
        "prompt_version": PROMPT_VERSION,
        "scenarios": [scenario_spec(s, library, "action_only") for s in fresh],
    }

    def produce(folder: Path) -> dict[str, Any]:
        if not fresh:
            return write_samples(folder, [])
        teacher = (teacher_once or TeacherOnce(cfg))()
        rows = sample_teacher(
            teacher,
            fresh,
            library,
            "action_only",
            cfg.eval.teacher_samples,
            cfg.seed,
            cfg.temperature.teacher,
            purpose="eval",
            chunk_dir=folder / "chunks",  # resumable, as the training answers
        )
        shutil.rmtree(folder / "chunks")
        return write_samples(folder, rows)

    return store.build("evaluate_teacher", spec, produce)


def _report_meta(
    cfg: Any, artifacts: dict[str, Artifact], teacher_rates: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The report's header lines: who the teacher is, what was trained on, and where each artifact is."""
    ds = artifacts["generate"].manifest
    arm = "action only"
    if cfg.data.motivations:
        arm = "motivation then action" if cfg.data.order == "motivation_first" else "action + motivation"
        arm += " (motivations shuffled: control)" if cfg.data.shuffle_motivations else ""
    if "finetune" in artifacts:
        ft = artifacts["finetune"].manifest
        if cfg.train.method == "full":
            method = "full fine-tuning"
        else:
            method = (
                f"{cfg.train.method} r={cfg.lora.r}, lora_alpha={ft.get('lora_alpha_used')} "
                f"({cfg.lora.alpha_mode}, scale {ft.get('lora_scale', 0):g}), "
                f"targets {list(cfg.lora.target_modules)}"
            )
        training = (
            f"{method}; {ft.get('examples')} examples, {ft.get('steps')} steps, "
            f"lr {cfg.train.learning_rate}, mean train loss {ft.get('train_loss', float('nan')):.3f}"
        )
        if "device" in ft:  # adapters built before devices were recorded lack it
            ranks = ft.get("data_parallel_ranks", 1)
            training += (
                f"; trained on {ft['device']}"
                + (f" and {ranks - 1} more data-parallel rank(s)" if ranks > 1 else "")
                + f", weights {ft.get('dtype')}, precision {ft.get('precision')}"
            )
        if cfg.train.decision_weight > 0:
            training += (
                f"; decision loss (weight {cfg.train.decision_weight:g}, temperature "
                f"{cfg.eval.temperature:g}) against the teacher's share of C over all its parsed answers"
            )
    else:
        training = f"none here: the tuned student is the existing adapter {cfg.eval.adapter}"
    e = cfg.eval
    if e.method == "forced_choice":
        estimator = (
            f'forced choice: the answer opened with "{e.opening_2x2}" '
            f'(donations: "{e.opening_public_goods}"), '
            f"the options' probabilities read at temperature {e.temperature:g}"
            + (f", repetition penalty {e.repetition_penalty:g}" if e.repetition_penalty != 1 else "")
        )
    elif e.method == "forms":
        estimator = "answer forms (P(answer starts with each form), normalised; each form family shown too)"
    else:
        estimator = (
            f"sampled ({e.samples} answers per scenario at temperature {e.temperature:g}, "
            f"repetition penalty {e.repetition_penalty:g}, parsed)"
        )
    scored = [
        f"{name.removeprefix('evaluate_')} on {m['device']} in {m['dtype']}"
        for name in ("evaluate_base", "evaluate_tuned")
        if name in artifacts and "device" in (m := artifacts[name].manifest)
    ]
    if scored:
        estimator += "; students scored: " + ", ".join(scored)
    unparsed = {
        "drop": "left out of training and of the rates",
        "resample": f"asked again up to {cfg.data.max_resamples} times, then left out of training and rates",
        "keep": "trained on verbatim (data.parse_failures=keep) and left out of the rates",
    }[cfg.data.parse_failures]
    return {
        "teacher": f"`{cfg.teacher.name}` — {ds.get('teacher_description', cfg.teacher.name)}; "
        f"temperature {cfg.temperature.teacher}",
        "student": f"`{cfg.student.name}` ({cfg.student.model_id})",
        "estimator": estimator + "; teacher: shares of its sampled answers",
        "data": (
            f"{ds['rows']} teacher answers ({cfg.data.teacher_samples} per training scenario, parse status "
            f"{ds['parse_status']}); trained on {arm}, {cfg.data.train_per_scenario or 'all'} per scenario"
        ),
        "training": training,
        "training_shares": artifacts["finetune"].manifest.get("training_shares", {})
        if "finetune" in artifacts
        else {},
        "unparsed": unparsed,
        "seed": cfg.seed,
        "estimator_method": e.method,
        "stand_in": bool(ds.get("teacher_description", "").startswith("offline STAND-IN")),
        "students_sampled": cfg.eval.method == "sampled",
        "teacher_parse": [
            {"scenario": k, "answers": v["n"], "parsed": v["n_ok"], "failed": v["n_failed"]}
            for k, v in teacher_rates.items()
        ],
        "provenance": {
            **{name: a.path for name, a in artifacts.items()},
            "reused": ", ".join(name for name, a in artifacts.items() if a.reused) or "none",
        },
    }


def _stopped(cfg: Any, artifacts: dict[str, Artifact], started: float, tracker: Any, out: Path) -> RunResult:
    print(f"[until] stopping after the {cfg.until} stage(s), as until={cfg.until} asks", flush=True)
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
        if cfg.until == "teacher":
            return _stopped(
                cfg, {"generate": dataset, "evaluate_teacher": teacher_art}, started, tracker, out
            )
        adapter: Artifact | None = None
        if cfg.eval.adapter:
            tuned_student = TunedStudent.from_folder(cfg.eval.adapter)
        else:
            adapter = finetune_stage(cfg, store, dataset, library, train, training_callbacks(tracker))
            tuned_student = TunedStudent.from_artifact(adapter, cfg.train.method)
        if cfg.until == "finetune" or not ranks.is_main:
            arts = {"generate": dataset, **({"finetune": adapter} if adapter else {})}
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
        base = {r["scenario"]: r for r in read_jsonl(base_art.path / RESULTS_FILE)}
        tuned = {r["scenario"]: r for r in read_jsonl(tuned_art.path / RESULTS_FILE)}
        shares = adapter.manifest.get("training_shares", {}) if adapter is not None else {}
        results = assemble(eval_splits, teacher_rates, base, tuned, shares)
        summary = {
            split: split_summary(df["improvement"]) for split, df in results.groupby("split", sort=False)
        }

        artifacts = {
            "generate": dataset,
            **({"finetune": adapter} if adapter else {}),
            "evaluate_base": base_art,
            "evaluate_tuned": tuned_art,
            "evaluate_teacher": teacher_art,
        }
        report = write_report(results, _report_meta(cfg, artifacts, teacher_rates), out)
        log_pipeline(tracker, cfg, artifacts, results, summary, out, {s.key: s for s in every_eval})
        return RunResult(report, results, summary, artifacts, time.time() - started)
    finally:
        tracker.finish()
