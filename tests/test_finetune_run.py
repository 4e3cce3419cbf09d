"""Real (tiny) fine-tunes: adapters load with PEFT, full fine-tuning saves a model, resume is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from conftest import MODEL_CACHE, compose_cfg
from stratdistill.dataset import sample_teacher, training_examples
from stratdistill.finetune import finetune
from stratdistill.scenarios import grid, load_library
from stratdistill.teachers import ReferenceTeacher

LIB = load_library()


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    scenarios = grid(LIB, ["IR", "team"], ["prison"], "x")
    rows = sample_teacher(ReferenceTeacher(), scenarios, LIB, "action_motivation", 4, 0, 0.8, "train")
    return training_examples(rows, motivations=True, per_scenario=4)


def _run(examples, out: Path, overrides: list[str], callbacks=None) -> dict:
    cfg = compose_cfg(["train.batch_size=2", "train.save_steps=2", "train.logging_steps=1", *overrides])
    return finetune(
        examples,
        cfg.student,
        cfg.lora,
        cfg.train,
        0,
        str(MODEL_CACHE),
        out,
        {"base_model": cfg.student.model_id, "dataset_key": "test"},
        callbacks,
    )


class _Interrupt(TrainerCallback):
    """Stops the run like a kill would: after the checkpoint at step 2 is on disk."""

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise KeyboardInterrupt


def test_lora_adapter_loads_with_peft_and_carries_provenance(examples, tmp_path: Path, student_model) -> None:
    from peft import PeftModel

    info = _run(examples, tmp_path, ["train.max_steps=2"])
    adapter = tmp_path / "adapter"
    prov = json.loads((adapter / "provenance.json").read_text())
    assert prov["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and prov["steps"] == 2
    assert prov["lora_scale"] == 2.0 and info["examples"] == 8
    import copy

    base, _ = student_model

    loaded = PeftModel.from_pretrained(copy.deepcopy(base), str(adapter))
    weights = {n: p for n, p in loaded.named_parameters() if "lora_B" in n}
    assert weights and any(p.abs().sum() > 0 for p in weights.values())  # trained, not the zero init
    assert (adapter / "tokenizer_config.json").is_file()
    assert not (tmp_path / "checkpoints").exists()  # optimizer states removed once done


def test_full_finetuning_saves_a_plain_model(examples, tmp_path: Path, student_model) -> None:
    from transformers import AutoModelForCausalLM

    info = _run(examples, tmp_path, ["train=full", "train.batch_size=2", "train.max_steps=1"])
    assert info["method"] == "full" and info["trainable_parameters"] == info["total_parameters"]
    tuned = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    base, _ = student_model
    assert not torch.equal(tuned.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)


def test_interrupted_finetune_resumes_to_the_same_adapter(examples, tmp_path: Path) -> None:
    _run(examples, tmp_path / "straight", ["train.max_steps=4"])
    with pytest.raises(KeyboardInterrupt):
        _run(examples, tmp_path / "resumed", ["train.max_steps=4"], [_Interrupt()])
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint-2").is_dir()
    info = _run(examples, tmp_path / "resumed", ["train.max_steps=4"])
    assert info["resumed"] is True and info["steps"] == 4
    a = load_file(tmp_path / "straight" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_same_config_same_adapter_whether_or_not_the_load_draws_random_numbers(
    examples, tmp_path: Path, monkeypatch
) -> None:
    """On a fresh cache the student is converted inside the load, which draws random numbers for its
    empty model; the LoRA initialisation must not depend on it: one key, one adapter."""
    import stratdistill.students as students

    _run(examples, tmp_path / "a", ["train.max_steps=1"])
    plain = students.load_student

    def converting_load(*args, **kwargs):
        out = plain(*args, **kwargs)
        torch.rand(1000)  # what the conversion's from_config draws
        return out

    monkeypatch.setattr(students, "load_student", converting_load)
    _run(examples, tmp_path / "b", ["train.max_steps=1"])
    a = load_file(tmp_path / "a" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter" / "adapter_model.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k
