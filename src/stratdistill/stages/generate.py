"""The generate stage: the teacher's answers (action and motivation) on every training scenario."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from stratdistill.artifacts import Artifact, ArtifactStore
from stratdistill.dataset import sample_teacher, scenario_spec, write_samples
from stratdistill.scenarios import Library, Scenario
from stratdistill.stages.base import Stage
from stratdistill.stages.code_version import package_data
from stratdistill.stages.teacher_access import TeacherOnce

TRAINING_INSTRUCTION = "action_motivation"


def max_resamples(cfg: Any) -> int:
    """Extra tries per unparseable teacher answer (data.parse_failures=resample), else 0."""
    return cfg.data.max_resamples if cfg.data.parse_failures == "resample" else 0


def teacher_data_files(cfg: Any) -> list[Path]:
    """Data the stand-in reads as code: its calibration counts and its motivation sentence banks."""
    if cfg.teacher.backend != "reference":
        return []
    return package_data("reference", pattern="*.csv") + package_data("teachers", "data")


GENERATE = Stage(
    name="generate",
    entries=("stratdistill.stages.generate",),
    config_paths=("teacher", "temperature.teacher", "data.teacher_samples", "data.max_resamples", "seed"),
    omit=lambda cfg: set() if max_resamples(cfg) else {"data.max_resamples"},
    runs_teacher=True,
    data_files=teacher_data_files,
)


def generate_stage(
    cfg: Any,
    store: ArtifactStore,
    library: Library,
    train: list[Scenario],
    teacher_once: TeacherOnce | None = None,
) -> Artifact:
    spec = GENERATE.spec(cfg, scenarios=[scenario_spec(s, library, TRAINING_INSTRUCTION) for s in train])

    def produce(folder: Path) -> dict[str, Any]:
        teacher = (teacher_once or TeacherOnce(cfg))()
        temperature = cfg.temperature.teacher
        rows = sample_teacher(
            teacher,
            train,
            library,
            TRAINING_INSTRUCTION,
            cfg.data.teacher_samples,
            cfg.seed,
            temperature,
            purpose="train",
            chunk_dir=folder / "chunks",
            max_resamples=max_resamples(cfg),
        )
        shutil.rmtree(folder / "chunks")  # the chunks are in samples.jsonl now
        return {
            **write_samples(folder, rows),
            "teacher_description": teacher.describe(temperature),
            "teacher_is_stand_in": teacher.is_stand_in,  # the report's stand-in banner reads it
        }

    return store.build(GENERATE.name, spec, produce)
