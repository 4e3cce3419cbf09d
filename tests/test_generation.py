"""Teacher generation: resumable chunks, exact counts, no duplicates, loadable with `datasets`."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import compose_cfg
from stratdistill.config import validate
from stratdistill.dataset import SAMPLES_FILE, sample_teacher, write_samples
from stratdistill.errors import ConfigError
from stratdistill.scenarios import grid, load_library
from stratdistill.teachers import ReferenceTeacher

LIB = load_library()
SCENARIOS = grid(LIB, ["IR", "biz"], ["prison", "staghunt"], "x")


class _Dies(ReferenceTeacher):
    """Raises on the k-th chunk, like a job killed mid-run."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.calls, self.k = 0, k

    def sample(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.k:
            raise KeyboardInterrupt
        return super().sample(*args, **kwargs)


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "created"} for r in rows]


def _generate(teacher, chunk_dir: Path | None) -> list[dict]:
    return sample_teacher(teacher, SCENARIOS, LIB, "action_motivation", 23, 0, 0.8, "train", chunk_dir, 10)


def test_interrupted_generation_resumes_to_the_same_rows(tmp_path: Path) -> None:
    straight = _generate(ReferenceTeacher(), None)
    with pytest.raises(KeyboardInterrupt):
        _generate(_Dies(k=5), tmp_path)
    assert len(list(tmp_path.glob("*.jsonl"))) == 4  # the finished chunks survived
    resumed = _generate(ReferenceTeacher(), tmp_path)
    assert _strip(resumed) == _strip(straight)
    for sc in SCENARIOS:
        idx = [r["sample_index"] for r in resumed if r["scenario"] == sc.key]
        assert sorted(idx) == list(range(23))  # exactly n, none twice


def test_dataset_loads_with_datasets_as_is(tmp_path: Path) -> None:
    from datasets import load_dataset

    rows = _generate(ReferenceTeacher(), None)
    write_samples(tmp_path, rows)
    ds = load_dataset("json", data_files=str(tmp_path / SAMPLES_FILE), split="train")
    assert len(ds) == len(rows) == 4 * 23
    for column in (
        "scenario",
        "prompt",
        "raw",
        "value",
        "parse_status",
        "motivation",
        "teacher",
        "backend",
        "temperature",
        "seed",
        "sample_index",
        "created",
        "schema_version",
    ):
        assert column in ds.column_names
    assert set(ds["parse_status"]) == {"ok"}


def test_real_teacher_settings_are_checked_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^teacher.model_id="):
        validate(compose_cfg(["teacher=llama2_70b_chat", f"teacher.model_id={tmp_path}/missing-model"]))
    validate(compose_cfg(["teacher=llama2_70b_chat"]))  # a hub id is fine offline: checked where it runs
    validate(compose_cfg(["teacher=smollm2_hf"]))
