"""Shared fixtures: the repo's paths, Hydra composition, and the default student (converted once)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import stratdistill.config  # noqa: F401  (registers the schema)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# One model cache for the whole test session (and across sessions): converting the GGUF takes ~20 s.
MODEL_CACHE = Path(os.environ.get("STRATDISTILL_TEST_CACHE", ROOT / ".cache" / "test-models"))


def compose_cfg(overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [])


@pytest.fixture
def cfg_factory():
    return compose_cfg


def run_launch(
    args: list[str], cwd: Path = ROOT, timeout: int = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def student_tokenizer():
    from stratdistill.students import load_tokenizer

    cfg = compose_cfg()
    return load_tokenizer(cfg.student, MODEL_CACHE)


@pytest.fixture(scope="session")
def student_model():
    from stratdistill.students import load_student

    cfg = compose_cfg()
    return load_student(cfg.student, MODEL_CACHE)


def perturbed_lora(model):
    """A LoRA copy of ``model`` with random non-zero B: gradients reach every LoRA matrix and the model
    behaves differently from its base, without any training."""
    import copy

    import torch

    from stratdistill.finetune import lora_model

    cfg = type("L", (), {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]})
    peft_model = lora_model(copy.deepcopy(model), cfg)
    torch.manual_seed(0)
    for n, p in peft_model.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.02)
    return peft_model


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory) -> Path:
    """The default student's tokenizer on a small random Llama: a real chat template, seconds per step."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from stratdistill.students import load_tokenizer

    folder = tmp_path_factory.mktemp("tiny-student")
    tok = load_tokenizer(compose_cfg().student, MODEL_CACHE)
    tok.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
