"""The evaluate stage: the base or tuned student's estimate of P(C) (or its donations) per scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stratdistill.artifacts import Artifact, ArtifactStore, write_jsonl
from stratdistill.dataset import scenario_spec
from stratdistill.evaluate import evaluate_model
from stratdistill.scenarios import Library, Scenario
from stratdistill.stages.base import Stage
from stratdistill.stages.tuned_student import TunedStudent

STUDENT_ESTIMATES_FILE = "results.jsonl"  # one row per scenario: the student's estimate and its parts

# The settings each estimator reads; the others do not apply to it.
_DECODING = {
    "forced_choice": {
        "eval.opening_2x2",
        "eval.opening_public_goods",
        "eval.temperature",
        "eval.repetition_penalty",
    },
    "sampled": {"eval.samples", "eval.temperature", "eval.max_new_tokens", "eval.repetition_penalty", "seed"},
    "forms": set(),
}


def _not_applicable(cfg: Any) -> set[str]:
    every = set().union(*_DECODING.values())
    return every - _DECODING[cfg.eval.method]


EVALUATE = Stage(
    name="evaluate",
    entries=("stratdistill.stages.evaluate",),
    config_paths=(
        "student",
        "eval.method",
        "eval.instruction",
        "eval.opening_2x2",
        "eval.opening_public_goods",
        "eval.temperature",
        "eval.repetition_penalty",
        "eval.samples",
        "eval.max_new_tokens",
        "seed",
    ),
    upstream=("finetune",),
    omit=_not_applicable,
)


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
    spec = EVALUATE.spec(
        cfg,
        adapter=tuned.key if tuned else None,
        **({"quantize_4bit": True} if quantize_4bit else {}),
        scenarios=[scenario_spec(s, library, instruction) for s in scenarios],
    )
    label = "tuned student" if tuned else "base student"

    def produce(folder: Path) -> dict[str, Any]:
        from stratdistill.students import load_student

        if tuned is None:
            model, tok = load_student(cfg.student, cfg.cache_dir, quantize_4bit=quantize_4bit)
        else:
            model, tok = load_student(cfg.student, cfg.cache_dir, tuned.adapter, tuned.weights, quantize_4bit)
        rows = evaluate_model(model, tok, scenarios, library, instruction, label, cfg.eval, cfg.seed)
        write_jsonl(folder / STUDENT_ESTIMATES_FILE, rows)
        weights = next(model.parameters())
        return {
            "label": label,
            "device": str(weights.device),
            "dtype": "nf4 (4-bit)" if quantize_4bit else str(weights.dtype).removeprefix("torch."),
        }

    return store.build(EVALUATE.name, spec, produce)
