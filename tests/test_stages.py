"""Artifact keys: one rule for every stage, code versions that follow the code, no config key forgotten."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import stratdistill.stages.code_version as cv
from conftest import ROOT, compose_cfg


@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the package that the code-version walker reads instead of the real one."""
    real = ROOT / "src" / "stratdistill"
    copy = tmp_path / "stratdistill"
    shutil.copytree(real, copy, ignore=shutil.ignore_patterns("__pycache__"))
    plain = cv._module_file

    def redirected(name: str) -> Path | None:
        path = plain(name)
        return None if path is None else copy / path.relative_to(real)

    monkeypatch.setattr(cv, "_module_file", redirected)
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_code_version_follows_code_not_comments_or_docstrings(package_copy: Path) -> None:
    entries = ("stratdistill.finetune",)
    before = cv.code_version(entries)
    _edit(package_copy / "packing.py", '"""', '"""A docstring changed. ')
    _edit(package_copy / "packing.py", "\nimport ", "\n# a new comment\nimport ")
    assert cv.code_version(entries) == before
    _edit(
        package_copy / "packing.py",
        "def pack_loss(",
        "def _unused() -> int:\n    return 1\n\n\ndef pack_loss(",
    )
    assert cv.code_version(entries) != before  # packing is imported lazily, inside finetune()


def test_unused_teacher_backends_and_result_free_modules_are_not_in_a_version(package_copy: Path) -> None:
    closure = cv.module_closure(["stratdistill.dataset", "stratdistill.teachers"])
    assert "stratdistill.teachers.vllm_engine" in closure and "stratdistill.parsing" in closure
    assert "stratdistill.config" not in closure and "stratdistill.artifacts" not in closure
    others = {m for b, m in cv.TEACHER_BACKENDS.items() if b != "reference"}
    entries = ("stratdistill.dataset", "stratdistill.teachers")
    before = cv.code_version(entries, exclude=others)
    _edit(
        package_copy / "teachers" / "vllm_engine.py",
        "def is_greedy(",
        "def _unused():\n    pass\n\n\ndef is_greedy(",
    )
    assert cv.code_version(entries, exclude=others) == before
    reference = package_copy / "teachers" / "reference.py"
    reference.write_text(reference.read_text() + "\nUNUSED = 1\n")
    assert cv.code_version(entries, exclude=others) != before


def test_every_config_key_is_in_a_stage_key_or_declared_result_free() -> None:
    from stratdistill.pipeline import STAGES
    from stratdistill.stages.base import NOT_IN_ANY_KEY, _under, config_leaves

    declared = {p for stage in STAGES for p in stage.config_paths}
    for overrides in ([], ["eval=sampled", "train=qlora", "teacher=openai", "tracker=wandb"]):
        for path in config_leaves(compose_cfg(overrides)):
            assert _under(path, declared) or _under(path, NOT_IN_ANY_KEY), (
                f"{path}: add it to a stage's config_paths, or to NOT_IN_ANY_KEY with the reason"
            )
    for path in declared:
        assert not _under(path, NOT_IN_ANY_KEY), f"{path} is both in a key and declared result-free"


def test_the_stand_ins_rates_and_sentences_are_in_its_stages_versions(package_copy: Path) -> None:
    """The stand-in's rates are code and data: a cached answer must not outlive the counts that drew it
    (moved from test_reference_teacher, where the stand-in had a hand-bumped version number)."""
    from stratdistill.stages.generate import GENERATE
    from stratdistill.stages.teacher_eval import EVALUATE_TEACHER

    stand_in, served = compose_cfg(), compose_cfg(["teacher=llama3_70b_instruct_vllm"])
    before = {
        s.name: (s.code_version(stand_in), s.code_version(served)) for s in (GENERATE, EVALUATE_TEACHER)
    }
    counts = package_copy / "reference" / "paper_counts.csv"
    counts.write_text(counts.read_text() + "\n")
    for stage in (GENERATE, EVALUATE_TEACHER):
        assert stage.code_version(stand_in) != before[stage.name][0], stage.name
        assert stage.code_version(served) == before[stage.name][1], stage.name  # not its data
    banks = next((package_copy / "teachers" / "data").rglob("*.yaml"))
    now = GENERATE.code_version(stand_in)
    banks.write_text(banks.read_text() + "\n# edited\n")
    assert GENERATE.code_version(stand_in) != now


def test_changed_stage_code_rebuilds_that_stage_and_what_reads_it(
    tiny_student: Path, tmp_path: Path, monkeypatch
) -> None:
    """The teacher's code changes: its data, the fine-tune and the tuned student's scores are rebuilt;
    the base student's scores (which read no teacher data) are reused."""
    import stratdistill.stages.base as base
    from stratdistill.pipeline import run_pipeline

    cfg = compose_cfg(
        [
            "experiment=smoke",
            "student=hf",
            f"student.model_id={tiny_student}",
            f"cache_dir={tmp_path / 'cache'}",
            "eval.splits=[in_sample]",
        ]
    )
    first = run_pipeline(cfg, tmp_path / "one")
    assert not any(a.reused for a in first.artifacts.values())
    real = base.code_version

    def generate_code_changed(entries, exclude=(), data_files=()):
        version = real(entries, exclude, data_files)
        return version + "-edited" if "stratdistill.stages.generate" in entries else version

    monkeypatch.setattr(base, "code_version", generate_code_changed)
    second = run_pipeline(cfg, tmp_path / "two")
    rebuilt = {name for name, a in second.artifacts.items() if not a.reused}
    assert rebuilt == {"generate", "finetune", "evaluate_tuned"}, rebuilt
    assert second.artifacts["generate"].key != first.artifacts["generate"].key
    third = run_pipeline(cfg, tmp_path / "three")  # the same code again: everything reused
    assert all(a.reused for a in third.artifacts.values())
