"""One teacher interface for every backend, and one loaded teacher for a whole temperature sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import stratdistill.teachers as teachers
from conftest import compose_cfg
from stratdistill.dataset import sample_teacher
from stratdistill.scenarios import grid, load_library
from stratdistill.teachers import ReferenceTeacher, Teacher, load_teacher, unload_teacher

LIB = load_library()


@pytest.fixture(autouse=True)
def no_loaded_teacher():
    """Each test starts and ends without a teacher held by the process."""
    unload_teacher()
    yield
    unload_teacher()


def test_every_backend_is_a_teacher_with_the_whole_interface() -> None:
    from stratdistill.teachers.hf import HFTeacher
    from stratdistill.teachers.openai_server import OpenAITeacher
    from stratdistill.teachers.vllm_engine import VLLMTeacher

    backends = {"reference": ReferenceTeacher, "hf": HFTeacher, "vllm": VLLMTeacher, "openai": OpenAITeacher}
    for backend, cls in backends.items():
        assert issubclass(cls, Teacher) and cls.backend == backend
        assert isinstance(cls.is_stand_in, bool) and isinstance(cls.chunks_per_call, int)
        for method in ("render", "sample", "sample_many", "describe"):
            assert callable(getattr(cls, method))
        assert isinstance(cls.description, property)
    assert ReferenceTeacher.is_stand_in and not any(
        c.is_stand_in for c in backends.values() if c is not ReferenceTeacher
    )
    assert VLLMTeacher.chunks_per_call > 1  # batches chunks; the others take one per call


def test_a_backend_must_name_itself() -> None:
    with pytest.raises(TypeError, match="backend"):

        class Nameless(Teacher):
            description = "x"

            def render(self, messages):
                return ""

            def sample(self, scenario, messages, instruction, n, rng, temperature):
                return []


class _Echo(Teacher):
    """A minimal backend: every row's teacher fields come from its declared attributes."""

    backend = "echo"
    revision = "rev-1"

    def __init__(self) -> None:
        self.name = "echo"
        self.temperatures: list[float] = []

    @property
    def description(self) -> str:
        return "echoes its temperature"

    def render(self, messages):
        return "|".join(m["content"] for m in messages)

    def sample(self, scenario, messages, instruction, n, rng, temperature):
        self.temperatures.append(temperature)
        return [f"I would choose strategy {'CD'[int(rng.integers(2))]}. (T={temperature})"] * n


def test_rows_carry_the_declared_teacher_fields_and_each_call_its_temperature() -> None:
    teacher = _Echo()
    (sc,) = grid(LIB, ["biz"], ["prison"], "x")
    for t in (0.5, 1.0):
        rows = sample_teacher(teacher, [sc], LIB, "action_motivation", 3, 0, t, "train")
        assert {
            (r["teacher"], r["backend"], r["teacher_revision"], r["teacher_is_stand_in"]) for r in rows
        } == {("echo", "echo", "rev-1", False)}
        assert {r["temperature"] for r in rows} == {t} and all(f"(T={t})" in r["raw"] for r in rows)
    assert teacher.temperatures == [0.5, 1.0]
    # sample_many without batching: the same answers as one sample call per chunk, same RNG
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert teacher.sample_many([(sc, [], "action_only", 4, rng_a)], 0.8) == [
        teacher.sample(sc, [], "action_only", 4, rng_b, 0.8)
    ]


def test_the_stand_in_samples_at_the_temperature_of_each_call() -> None:
    (sc,) = grid(LIB, ["IR"], ["prison"], "x")  # published 77/300 C at 0.8: mostly D
    t = ReferenceTeacher()

    def share(temperature: float) -> float:
        answers = t.sample(sc, [], "action_only", 4000, np.random.default_rng(0), temperature)
        return sum(a == "C" for a in answers) / len(answers)

    assert share(0.0) == 0.0 and share(0.4) < share(0.8) < share(2.0) < 0.5


def _counting(monkeypatch) -> list[int]:
    """Count ReferenceTeacher constructions (the stand-in is what experiment=smoke uses)."""
    built: list[int] = []
    plain = ReferenceTeacher.__init__

    def counted(self, *args, **kwargs):
        built.append(1)
        plain(self, *args, **kwargs)

    monkeypatch.setattr(ReferenceTeacher, "__init__", counted)
    return built


def test_a_temperature_sweep_in_one_process_loads_the_teacher_once(monkeypatch, tmp_path: Path) -> None:
    """What Hydra's basic launcher does with `-m until=teacher temperature.teacher=0.5,0.8,1.0`: three
    runs, one after another, in one process."""
    from stratdistill.pipeline import STOPPED_ARTIFACTS_FILE, run_pipeline

    built = _counting(monkeypatch)
    keys = set()
    for i, t in enumerate((0.5, 0.8, 1.0)):
        cfg = compose_cfg(
            [
                "experiment=smoke",
                "until=teacher",
                f"temperature.teacher={t}",
                f"cache_dir={tmp_path / 'cache'}",
            ]
        )
        result = run_pipeline(cfg, tmp_path / f"job{i}")
        dataset = result.artifacts["generate"]
        keys.add(dataset.key)
        assert not dataset.reused and dataset.manifest["teacher_is_stand_in"] is True
        rows = [json.loads(line) for line in (dataset.path / "samples.jsonl").read_text().splitlines()]
        assert {r["temperature"] for r in rows} == {t}
        # the job folder lists the artifacts it stopped with (what stratdistill.teacher_spread reads)
        listed = json.loads((tmp_path / f"job{i}" / STOPPED_ARTIFACTS_FILE).read_text())
        assert listed["until"] == "teacher"
        assert listed["artifacts"]["generate"]["path"] == str(dataset.path)
        assert set(listed["artifacts"]) == {"generate", "evaluate_teacher"}
    assert len(keys) == 3  # the temperature is still in the teacher data's key
    assert len(built) == 1


def test_another_teacher_config_replaces_the_loaded_one(monkeypatch, tmp_path: Path) -> None:
    built = _counting(monkeypatch)
    a = compose_cfg(["teacher=reference"]).teacher
    first = load_teacher(a, tmp_path)
    assert load_teacher(a, tmp_path) is first and len(built) == 1
    renamed = compose_cfg(["teacher=reference", "teacher.name=other"]).teacher
    second = load_teacher(renamed, tmp_path)
    assert second is not first and second.name == "other" and len(built) == 2


class _Heavy(_Echo):
    holds_model = True


@pytest.mark.parametrize(("until", "kept"), [("teacher", True), (None, False)])
def test_a_teacher_with_weights_is_freed_before_the_student_trains(monkeypatch, until, kept) -> None:
    """until=teacher: nothing follows, so the next sweep point reuses the loaded model; a run that goes on
    to train frees it (a GPU full of teacher)."""
    from stratdistill.stages.teacher_access import TeacherOnce

    built: list[_Heavy] = []
    monkeypatch.setattr(teachers, "build_teacher", lambda *a, **k: built.append(_Heavy()) or built[-1])
    cfg = compose_cfg([f"until={until}" if until else "until=null"])
    once = TeacherOnce(cfg)
    teacher = once()
    assert once() is teacher
    once.release()
    again = TeacherOnce(cfg)()
    assert (again is teacher) == kept and len(built) == (1 if kept else 2)


def test_the_report_reads_the_stand_in_flag_from_the_dataset_manifest() -> None:
    from types import SimpleNamespace

    from stratdistill.report_meta import report_meta as _report_meta

    cfg = compose_cfg()
    base = {"rows": 1, "parse_status": {"ok": 1}}

    def stand_in(**manifest) -> bool:
        dataset = SimpleNamespace(manifest={**base, **manifest}, path=Path("x"), reused=True)
        return _report_meta(cfg, {"generate": dataset}, {})["stand_in"]

    assert stand_in(teacher_description="any text", teacher_is_stand_in=True) is True
    assert stand_in(teacher_description="offline STAND-IN lookalike", teacher_is_stand_in=False) is False
    # a dataset generated before the flag was recorded: the stand-in's description says it
    assert stand_in(teacher_description="offline STAND-IN teacher (not a language model)") is True
    assert stand_in(teacher_description="the language model m through vLLM") is False
