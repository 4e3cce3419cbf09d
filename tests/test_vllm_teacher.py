"""teacher.backend=vllm: what reaches vLLM's engine and its sampling parameters.

vLLM needs CUDA GPUs and is not installed here, so these tests check the arguments we build (pure
functions) and the clear error where vLLM is missing; the engine itself runs on GPU machines only.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from conftest import CONF, compose_cfg
from stratdistill.config import validate
from stratdistill.dataset import sample_teacher
from stratdistill.errors import ConfigError
from stratdistill.scenarios import grid, load_library
from stratdistill.teachers.vllm_engine import engine_kwargs, sampling_kwargs

LIB = load_library()


def test_paper_teachers_compose_for_vllm_with_tensor_parallelism() -> None:
    for name, model in [
        ("llama2_70b_chat_vllm", "meta-llama/Llama-2-70b-chat-hf"),
        ("llama3_70b_instruct_vllm", "meta-llama/Llama-3.3-70B-Instruct"),
        ("qwen2_5_72b_instruct_vllm", "Qwen/Qwen2.5-72B-Instruct"),
    ]:
        cfg = compose_cfg([f"teacher={name}", "teacher.tensor_parallel_size=8", "seed=3"])
        validate(cfg)
        kw = engine_kwargs(cfg.teacher, cfg.seed)
        assert kw["model"] == model and kw["tensor_parallel_size"] == 8 and kw["seed"] == 3
        assert kw["dtype"] == "bfloat16" and kw["trust_remote_code"] is False


def test_sampling_params_carry_the_papers_settings_and_n() -> None:
    cfg = compose_cfg(["teacher=llama2_70b_chat_vllm"])
    kw = sampling_kwargs(cfg.teacher, temperature=0.8, n=50, seed=11)
    assert kw == {
        "n": 50,
        "temperature": 0.8,
        "top_p": 1.0,
        "top_k": -1,
        "repetition_penalty": 1.1,
        "max_tokens": 600,
        "seed": 11,
    }
    assert sampling_kwargs(cfg.teacher, temperature=0.0, n=1, seed=0)["top_k"] == 1  # greedy


def test_bad_vllm_settings_fail_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^teacher.tensor_parallel_size=0"):
        validate(compose_cfg(["teacher=llama3_70b_instruct_vllm", "teacher.tensor_parallel_size=0"]))
    with pytest.raises(ConfigError, match=r"^teacher.gpu_memory_utilization=1.5"):
        validate(compose_cfg(["teacher=llama3_70b_instruct_vllm", "teacher.gpu_memory_utilization=1.5"]))


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_missing_vllm_is_a_clear_error() -> None:
    from stratdistill.teachers import build_teacher

    with pytest.raises(ConfigError, match=r"^teacher.backend='vllm'.*pip install"):
        build_teacher(compose_cfg(["teacher=llama2_70b_chat_vllm"]).teacher)


def test_paper_teachers_compose_as_served_models() -> None:
    for name in ("llama2_70b_chat_server", "llama3_70b_instruct_server", "qwen2_5_72b_instruct_server"):
        cfg = compose_cfg([f"teacher={name}"])
        validate(cfg)
        assert cfg.teacher.backend == "openai" and cfg.teacher.base_url.startswith("http")
        assert cfg.teacher.extra_body["repetition_penalty"] == 1.1


# --- the engine itself, against a stand-in `vllm` module that keeps vLLM's rules --------------------------


class _FakeSamplingParams:
    """vLLM's checks that matter here (vllm/sampling_params.py, _verify_args and _verify_greedy_sampling)."""

    def __init__(self, **kwargs) -> None:
        if kwargs["temperature"] < 1e-5 and kwargs["n"] > 1:
            raise ValueError(f"n must be 1 when using greedy sampling, got {kwargs['n']}.")
        if not 0 <= kwargs["temperature"] <= 2:
            raise ValueError(f"temperature must be in [0, 2], got {kwargs['temperature']}.")
        self.__dict__.update(kwargs)


class _FakeTokenizer:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages, tokenize: bool, add_generation_prompt: bool) -> str:
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def __call__(self, text: str, add_special_tokens: bool):
        return SimpleNamespace(input_ids=[ord(c) for c in text[:64]])


def _answer(params: _FakeSamplingParams, j: int) -> SimpleNamespace:
    if params.temperature < 1e-5:  # greedy: the most likely answer, whatever the seed
        return SimpleNamespace(text="I would choose strategy C. (greedy)")
    seed = params.seed + j
    return SimpleNamespace(text=f"I would choose strategy {'CD'[seed % 2]}. (seed {seed})")


class _FakeLLM:
    """Answers sample j of a request from its seed, seed + j, as vLLM does; records every generate call."""

    def __init__(self, **kwargs) -> None:
        self.kwargs, self.calls = kwargs, []

    def get_tokenizer(self) -> _FakeTokenizer:
        return _FakeTokenizer()

    def generate(self, prompts, params, use_tqdm: bool = True):
        assert len(prompts) == len(params) and all("prompt_token_ids" in p for p in prompts)
        self.calls.append(len(prompts))
        return [SimpleNamespace(outputs=[_answer(p, j) for j in range(p.n)]) for p in params]


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams = _FakeLLM, _FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)


def _vllm_teacher():
    from stratdistill.teachers import build_teacher

    return build_teacher(compose_cfg(["teacher=llama3_70b_instruct_vllm"]).teacher)


def _no_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "created"} for r in rows]


def test_greedy_vllm_teacher_asks_one_answer_per_prompt_and_says_so(fake_vllm, capsys, tmp_path) -> None:
    teacher = _vllm_teacher()
    (sc,) = grid(LIB, ["biz"], ["prison"], "x")
    rows = sample_teacher(teacher, [sc], LIB, "action_motivation", 120, 0, 0.0, "train", tmp_path / "c")
    assert len(rows) == 120 and len({r["raw"] for r in rows}) == 1  # greedy: one answer, repeated
    assert [r["sample_index"] for r in rows] == list(range(120))
    assert "greedy" in capsys.readouterr().out and "greedy" in teacher.describe(0.0)
    assert "greedy" not in teacher.describe(0.8)  # the same engine, sampling


def test_one_vllm_engine_serves_every_temperature(fake_vllm, tmp_path) -> None:
    """The temperature is per call: a sweep reuses the loaded engine, and each call's requests carry
    their own temperature (a greedy call after a sampled one asks one answer per prompt)."""
    teacher = _vllm_teacher()
    (sc,) = grid(LIB, ["biz"], ["prison"], "x")
    hot = sample_teacher(teacher, [sc], LIB, "action_motivation", 60, 0, 1.2, "train")
    greedy = sample_teacher(teacher, [sc], LIB, "action_motivation", 60, 0, 0.0, "train")
    assert len({r["raw"] for r in hot}) == 60 and len({r["raw"] for r in greedy}) == 1
    assert {r["temperature"] for r in hot} == {1.2} and {r["temperature"] for r in greedy} == {0.0}
    assert len(teacher.llm.calls) == 2  # one engine, one generate call per generation


def test_vllm_teacher_sends_many_chunks_per_generate_call_and_still_writes_each_chunk(
    fake_vllm, tmp_path, monkeypatch
) -> None:
    from stratdistill.teachers.vllm_engine import VLLMTeacher

    scenarios = grid(LIB, ["biz", "IR", "team"], ["prison"], "x")
    chunks = tmp_path / "chunks"

    def run(folder, per_call: int) -> tuple[list[dict], list[int]]:
        monkeypatch.setattr(VLLMTeacher, "chunks_per_call", per_call, raising=False)
        teacher = _vllm_teacher()
        rows = sample_teacher(teacher, scenarios, LIB, "action_motivation", 120, 0, 0.8, "train", folder)
        return rows, teacher.llm.calls

    batched, calls = run(chunks, 32)
    assert calls == [9]  # 3 scenarios x 3 chunks (50, 50, 20) in one call, not nine calls of one chunk
    assert len(list(chunks.glob("*.jsonl"))) == 9  # every chunk on disk, resumable on its own
    one_by_one, calls = run(tmp_path / "alone", 1)
    assert calls == [1] * 9 and _no_time(one_by_one) == _no_time(batched)  # same answers either way
    assert len({r["raw"] for r in batched}) == 360  # every sample its own seed
    # a run killed after some chunks resumes with only the missing ones, in groups of chunks_per_call
    for path in sorted(chunks.glob("*.jsonl"))[4:]:
        path.unlink()
    resumed, calls = run(chunks, 2)
    assert calls == [2, 2, 1] and _no_time(resumed) == _no_time(batched)


# --- temperature bounds and the SLURM preset, checked before anything runs --------------------------------


@pytest.mark.parametrize("teacher", ["llama3_70b_instruct_vllm", "llama3_70b_instruct_server", "openai"])
def test_temperature_above_what_the_backend_accepts_fails_in_one_line_before_the_run(teacher: str) -> None:
    overrides = [f"teacher={teacher}", "teacher.model_id=m", "teacher.base_url=http://127.0.0.1:8000/v1"]
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg([*overrides, "temperature.teacher=3"]))
    message = str(err.value)
    assert message.startswith(
        "temperature.teacher=3.0 is not valid: a number in [0, 2.0] with teacher.backend="
    )
    assert "\n" not in message
    validate(compose_cfg([*overrides, "temperature.teacher=2"]))  # the bound itself is fine


def test_backends_without_an_api_bound_keep_the_wider_temperature_range() -> None:
    validate(compose_cfg(["teacher=reference", "temperature.teacher=3"]))
    with pytest.raises(ConfigError, match=r"^temperature.teacher=6.0 is not valid: a number in \[0, 5.0\]$"):
        validate(compose_cfg(["teacher=reference", "temperature.teacher=6"]))


def _vllm_teacher_configs() -> list[str]:
    return sorted(p.stem for p in (CONF / "teacher").glob("*.yaml") if OmegaConf.load(p).backend == "vllm")


def test_every_vllm_teacher_gets_as_many_gpus_as_its_tensor_parallel_size() -> None:
    from hydra import compose, initialize_config_dir

    names = _vllm_teacher_configs()
    assert len(names) == 3
    for name in names:
        for extra in ([], ["teacher.tensor_parallel_size=8"]):
            with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
                cfg = compose(
                    "config",
                    overrides=["hydra/launcher=slurm_teacher_vllm", f"teacher={name}", *extra],
                    return_hydra_config=True,
                )
            launcher = cfg.hydra.launcher
            assert launcher.gpus_per_node == cfg.teacher.tensor_parallel_size == (8 if extra else 4), name
            assert launcher.timeout_min >= 11 and launcher.max_num_timeout > 0
            assert launcher.cpus_per_task == launcher.env.OMP_NUM_THREADS
        # the command in the config's header uses that preset
        assert "hydra/launcher=slurm_teacher_vllm " in (CONF / "teacher" / f"{name}.yaml").read_text()


def test_extras_name_floors_for_the_apis_the_code_uses() -> None:
    import tomllib
    from packaging.requirements import Requirement
    from packaging.version import Version
    from transformers.utils.import_utils import BITSANDBYTES_MIN_VERSION

    extras = tomllib.loads((CONF.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    def floor(extra: str, package: str) -> Version:
        (req,) = [Requirement(r) for r in extras[extra] if Requirement(r).name == package]
        (spec,) = [s for s in req.specifier if s.operator == ">="]
        return Version(spec.version)

    # vLLM 0.8: LLM(quantization="bitsandbytes") without load_format, as engine_kwargs builds it
    assert floor("vllm", "vllm") >= Version("0.8")
    # QLoRA through transformers, which refuses older bitsandbytes
    assert floor("qlora", "bitsandbytes") >= Version(BITSANDBYTES_MIN_VERSION)
