"""The evaluate_teacher stage: the teacher's behaviour on every evaluation scenario."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from stratdistill.artifacts import Artifact, ArtifactStore
from stratdistill.dataset import cooperation_rates, load_samples, sample_teacher, scenario_spec, write_samples
from stratdistill.scenarios import Library, Scenario
from stratdistill.stages.base import Stage
from stratdistill.stages.generate import teacher_data_files
from stratdistill.stages.teacher_access import TeacherOnce

EVAL_INSTRUCTION = "action_only"  # the paper's held-out runs ask for the letter alone

EVALUATE_TEACHER = Stage(
    name="evaluate_teacher",
    entries=("stratdistill.stages.teacher_eval",),
    config_paths=("teacher", "temperature.teacher", "eval.teacher_samples", "seed"),
    upstream=("generate",),
    runs_teacher=True,
    data_files=teacher_data_files,
)


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
    spec = EVALUATE_TEACHER.spec(cfg, scenarios=[scenario_spec(s, library, EVAL_INSTRUCTION) for s in fresh])

    def produce(folder: Path) -> dict[str, Any]:
        if not fresh:
            return write_samples(folder, [])
        teacher = (teacher_once or TeacherOnce(cfg))()
        rows = sample_teacher(
            teacher,
            fresh,
            library,
            EVAL_INSTRUCTION,
            cfg.eval.teacher_samples,
            cfg.seed,
            cfg.temperature.teacher,
            purpose="eval",
            chunk_dir=folder / "chunks",  # resumable, as the training answers
        )
        shutil.rmtree(folder / "chunks")
        return write_samples(folder, rows)

    return store.build(EVALUATE_TEACHER.name, spec, produce)
