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


class _Garbles(ReferenceTeacher):
    """In its first batch every other answer has no decision in it (as small real models do)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def sample(self, *args, **kwargs):
        answers = super().sample(*args, **kwargs)
        self.batches += 1
        if self.batches > 1:
            return answers
        return ["Let me think about the payoffs first." if i % 2 else a for i, a in enumerate(answers)]


def test_parse_failure_policies(tmp_path: Path) -> None:
    from stratdistill.dataset import training_examples

    (sc,) = grid(LIB, ["biz"], ["prison"], "x")
    dropped = sample_teacher(_Garbles(), [sc], LIB, "action_motivation", 10, 0, 0.8, "train")
    failed = [r for r in dropped if r["parse_status"] != "ok"]
    assert len(dropped) == 10 and len(failed) == 5  # kept in the dataset with their status
    # drop: left out of training; keep: trained on verbatim
    assert len(training_examples(dropped, True, None)) == 5
    kept = training_examples(dropped, True, None, parse_failures="keep")
    assert len(kept) == 10 and sum(e["completion"].startswith("Let me think") for e in kept) == 5
    # resample: each failure asked again; every attempt is recorded on its row
    resampled = sample_teacher(
        _Garbles(), [sc], LIB, "action_motivation", 10, 0, 0.8, "train", max_resamples=3
    )
    assert len(resampled) == 10 and all(r["parse_status"] == "ok" for r in resampled)
    assert sum(r["attempts"] > 1 for r in resampled) == 5
    assert all(
        r["unparsed_attempts"] == ["Let me think about the payoffs first."]
        for r in resampled
        if r["attempts"] > 1
    )
    # k = 0 resamples is the same as drop
    none = sample_teacher(_Garbles(), [sc], LIB, "action_motivation", 10, 0, 0.8, "train", max_resamples=0)
    assert sum(r["parse_status"] != "ok" for r in none) == 5


def test_parse_failure_policy_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"^data.parse_failures='retry'.*'drop', 'resample', 'keep'"):
        validate(compose_cfg(["data.parse_failures=retry"]))
    with pytest.raises(ConfigError, match=r"^data.max_resamples=-1"):
        validate(compose_cfg(["data.max_resamples=-1"]))


def test_model_that_ships_code_needs_trust_remote_code(tmp_path: Path) -> None:
    model = tmp_path / "custom-model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "x", "auto_map": {"AutoModelForCausalLM": "m.X"}}')
    args = ["teacher=smollm2_hf", f"teacher.model_id={model}", "teacher.gguf_package=null"]
    with pytest.raises(
        ConfigError, match=r"^teacher.trust_remote_code=False is not valid: true, if you trust"
    ):
        validate(compose_cfg(args))
    validate(compose_cfg([*args, "teacher.trust_remote_code=true"]))


def test_stratified_pick_carries_the_teachers_share() -> None:
    """16 of 300 answers whose share of C is the 300's (within 1/32), not a draw from it; order kept."""
    from stratdistill.dataset import stratified_pick, training_examples

    rows = [
        {
            "scenario": "s",
            "value": "C" if i % 10 < 3 else "D",
            "parse_status": "ok",
            "raw": "x",
            "messages": [],
        }
        for i in range(300)
    ]
    rows = rows[150:] + rows[:150]  # the first 16 would be 30% C by luck of the order: shuffle a little
    picked = stratified_pick(rows, 16)
    assert len(picked) == 16
    assert abs(sum(r["value"] == "C" for r in picked) / 16 - 0.3) <= 1 / 32
    positions = [next(i for i, x in enumerate(rows) if x is r) for r in picked]
    assert positions == sorted(positions)
    skewed = [dict(r, value="C") for r in rows[:16]] + rows[16:]  # the first 16 all C
    first = training_examples(skewed, False, 16, subsample="first")
    strat = training_examples(skewed, False, 16, subsample="stratified")
    assert sum(e["value"] == "C" for e in first) == 16
    share = sum(r["value"] == "C" for r in skewed) / 300
    assert abs(sum(e["value"] == "C" for e in strat) / 16 - share) <= 1 / 32
