"""Every model on the device the job was given, trained weights in float32, precision refused where wrong.

A GPU node is simulated: ``job_device`` is patched to answer ``cuda:N`` and transformers' loader is
replaced by a recorder, since this machine has no CUDA.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import MODEL_CACHE, compose_cfg
from stratdistill.config import validate
from stratdistill.errors import ConfigError


class _Loaded(Exception):
    """Raised by the recording loader: the test only needs the arguments of the call."""


@pytest.fixture
def load_calls(monkeypatch) -> list[dict]:
    from transformers import AutoModelForCausalLM

    calls: list[dict] = []

    def record(src, **kwargs):
        calls.append(kwargs)
        raise _Loaded

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", staticmethod(record))
    return calls


def test_students_load_onto_this_ranks_gpu(monkeypatch, load_calls, tiny_student: Path) -> None:
    """Before: no device_map unless 4-bit, so transformers kept the student on the CPU of a GPU node."""
    import stratdistill.distributed as distributed
    from stratdistill.students import load_student

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert distributed.job_device() == torch.device("cuda", 2)
    cfg = compose_cfg(["student=hf", f"student.model_id={tiny_student}"])
    with pytest.raises(_Loaded):
        load_student(cfg.student, MODEL_CACHE)
    with pytest.raises(_Loaded):
        load_student(cfg.student, MODEL_CACHE, quantize_4bit=True)
    assert load_calls[0]["device_map"] == {"": torch.device("cuda", 2)}
    assert load_calls[1]["device_map"] == {"": torch.device("cuda", 2)}  # QLoRA on this rank's GPU, not 0
    assert "quantization_config" in load_calls[1]


def test_a_rank_beyond_the_visible_gpus_is_a_one_line_error(monkeypatch) -> None:
    import stratdistill.distributed as distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    with pytest.raises(ConfigError, match="LOCAL_RANK=3 is not valid: below the 2 GPU"):
        distributed.job_device()


def test_qlora_without_cuda_names_the_key(tiny_student: Path) -> None:
    from stratdistill.students import load_student

    cfg = compose_cfg(["student=hf", f"student.model_id={tiny_student}"])
    with pytest.raises(ConfigError, match=r"train\.method='qlora'"):
        load_student(cfg.student, MODEL_CACHE, quantize_4bit=True)


def test_under_qlora_the_base_is_scored_in_4bit_like_the_tuned_student(
    monkeypatch, tmp_path: Path, tiny_student: Path
) -> None:
    """Before: base in bf16 on the CPU, tuned in NF4 on the GPU: the change included quantisation."""
    import stratdistill.students as students
    from stratdistill.artifacts import ArtifactStore
    from stratdistill.scenarios import grid, load_library
    from stratdistill.stages.evaluate import evaluate_student_stage
    from stratdistill.stages.tuned_student import TunedStudent

    seen: list[bool] = []

    def fake_load(cfg, cache_dir, adapter=None, weights=None, quantize_4bit=False, **_):
        seen.append(quantize_4bit)
        raise _Loaded

    monkeypatch.setattr(students, "load_student", fake_load)
    cfg = compose_cfg(["student=hf", f"student.model_id={tiny_student}", "train=qlora"])
    lib = load_library()
    scenarios = grid(lib, ["IR"], ["prison"], "x")
    tuned = TunedStudent("k", adapter=tmp_path, quantize_4bit=True)
    store = ArtifactStore(tmp_path / "cache")
    for who in (None, tuned):
        with pytest.raises(_Loaded):
            evaluate_student_stage(cfg, store, lib, scenarios, who, quantize_4bit=tuned.quantize_4bit)
    assert seen == [True, True]


def test_full_finetuning_of_a_bf16_student_keeps_float32_master_weights(tiny_student: Path) -> None:
    """AdamW on bf16 weights loses updates below bf16's resolution; the trained copy must be float32."""
    from transformers import AutoModelForCausalLM

    from stratdistill.finetune import trainable_model

    cfg = compose_cfg(["train=full", "train.precision=bf16"])
    model = AutoModelForCausalLM.from_pretrained(tiny_student, dtype=torch.bfloat16)
    model = trainable_model(model, cfg.train, cfg.lora)
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}
    lora = trainable_model(
        AutoModelForCausalLM.from_pretrained(tiny_student, dtype=torch.bfloat16),
        compose_cfg().train,
        cfg.lora,
    )
    assert {p.dtype for p in lora.parameters() if p.requires_grad} == {torch.float32}


def test_fp16_autocast_over_a_bf16_student_is_refused_in_one_line() -> None:
    cfg = compose_cfg(["student=llama2_7b_chat", "train.precision=fp16"])
    with pytest.raises(ConfigError, match=r"train.precision='fp16' is not valid: bf16 or fp32") as exc:
        validate(cfg, hardware=False)
    assert "\n" not in str(exc.value)
    validate(compose_cfg(["student=llama2_7b_chat", "train.precision=bf16"]), hardware=False)
