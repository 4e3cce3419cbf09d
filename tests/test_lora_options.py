"""LoRA scaling is an explicit choice, and bad fine-tuning settings fail before training starts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import compose_cfg
from stratdistill.config import validate
from stratdistill.errors import ConfigError
from stratdistill.finetune import lora_alpha_and_scale, lora_model, lora_targets_or_raise


def _lora(r: int, alpha: float, mode: str):
    return compose_cfg([f"lora.r={r}", f"lora.alpha={alpha}", f"lora.alpha_mode={mode}"]).lora


@pytest.mark.parametrize("r", [4, 8, 16, 32])
def test_alpha_modes(r: int) -> None:
    assert lora_alpha_and_scale(_lora(r, 16, "fixed")) == (16, False, 16 / r)
    assert lora_alpha_and_scale(_lora(r, 16, "tied")) == (2 * r, False, 2.0)  # the scale stays the same
    assert lora_alpha_and_scale(_lora(r, 16, "rslora")) == (16, True, 16 / math.sqrt(r))


def test_lora_rank_sweep_ties_alpha() -> None:
    cfg = compose_cfg(["sweep=lora_rank", "lora.r=32"])
    assert lora_alpha_and_scale(cfg.lora)[2] == 2.0


def test_peft_gets_the_chosen_scaling(student_model) -> None:
    import copy

    model, _ = student_model
    peft_model = lora_model(copy.deepcopy(model), _lora(16, 16, "rslora"))
    layer = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    assert layer.scaling["default"] == pytest.approx(16 / 4)
    peft_model = lora_model(copy.deepcopy(model), _lora(16, 16, "tied"))
    assert peft_model.base_model.model.model.layers[0].self_attn.v_proj.scaling["default"] == pytest.approx(
        2.0
    )


def test_unknown_target_module_names_the_modules_that_exist(student_model) -> None:
    model, _ = student_model
    with pytest.raises(ConfigError) as info:
        lora_targets_or_raise(model, ["q_proj", "query_key_value"])
    msg = str(info.value)
    assert msg.startswith("lora.target_modules=['query_key_value']")
    assert "q_proj" in msg and "down_proj" in msg


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("lora.alpha_mode=double", "lora.alpha_mode"),
        ("data.order=reverse", "data.order"),
        ("train.method=prefix", "train.method"),
        ("lora.r=-4", "lora.r"),
        ("lora.dropout=1.5", "lora.dropout"),
    ],
)
def test_bad_finetune_settings(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}="):
        validate(compose_cfg([override]))


def test_qlora_without_cuda_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match=r"^train.method='qlora' is not valid: .*CUDA"):
        validate(compose_cfg(["train=qlora"]))


def test_external_adapter_must_exist_and_match_the_student(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^eval.adapter="):
        validate(compose_cfg([f"eval.adapter={tmp_path}"]))
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "meta-llama/Llama-2-7b"})
    )
    with pytest.raises(ConfigError, match="trained on 'meta-llama/Llama-2-7b'"):
        validate(compose_cfg([f"eval.adapter={tmp_path}"]))
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"})
    )
    validate(compose_cfg([f"eval.adapter={tmp_path}"]))
