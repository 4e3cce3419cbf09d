"""teacher.backend=vllm: what reaches vLLM's engine and its sampling parameters.

vLLM needs CUDA GPUs and is not installed here, so these tests check the arguments we build (pure
functions) and the clear error where vLLM is missing; the engine itself runs on GPU machines only.
"""

from __future__ import annotations

import importlib.util

import pytest

from conftest import compose_cfg
from stratdistill.config import validate
from stratdistill.errors import ConfigError
from stratdistill.teachers.vllm_engine import engine_kwargs, sampling_kwargs


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
        build_teacher(compose_cfg(["teacher=llama2_70b_chat_vllm"]).teacher, 0.8)


def test_paper_teachers_compose_as_served_models() -> None:
    for name in ("llama2_70b_chat_server", "llama3_70b_instruct_server", "qwen2_5_72b_instruct_server"):
        cfg = compose_cfg([f"teacher={name}"])
        validate(cfg)
        assert cfg.teacher.backend == "openai" and cfg.teacher.base_url.startswith("http")
        assert cfg.teacher.extra_body["repetition_penalty"] == 1.1
