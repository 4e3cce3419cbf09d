"""Checks 2 and 3: ``finetune()`` end to end on the device (lora, qlora, full; bf16; interrupted and
resumed), then base and tuned students scored there.

Why a resume per method: a checkpoint that restores optimizer state, scheduler and data order on the
CPU can still lose something on a GPU run (RNG state of another device, a 4-bit base's
quantization state), and an interrupted GPU job that resumes to a different adapter would go unnoticed.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .common import PASSED, lora_cfg, student_cfg, train_cfg

RESUME_TOLERANCE = 1e-3  # relative L2 distance, resumed vs uninterrupted weights


def training_examples(contexts: list[str], per_scenario: int) -> list[dict[str, Any]]:
    """Teacher answers (the stand-in teacher, with motivations) on the prisoner's dilemma per context."""
    from stratdistill.dataset import sample_teacher
    from stratdistill.dataset import training_examples as to_examples
    from stratdistill.scenarios import grid, load_library
    from stratdistill.teachers import ReferenceTeacher

    lib = load_library()
    scenarios = grid(lib, contexts, ["prison"], "x")
    rows = sample_teacher(
        ReferenceTeacher(), scenarios, lib, "action_motivation", per_scenario, 0, 0.8, "train"
    )
    return to_examples(rows, motivations=True, per_scenario=per_scenario)


def _weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    out: dict[str, Any] = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(f))
    if not out:
        raise FileNotFoundError(f"no .safetensors in {folder}")
    return out


def _compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    import torch

    if a.keys() != b.keys():
        return {"same_keys": False}
    num = math.sqrt(sum(float(((a[k].float() - b[k].float()) ** 2).sum()) for k in a))
    den = math.sqrt(sum(float((a[k].float() ** 2).sum()) for k in a))
    return {
        "same_keys": True,
        "tensors": len(a),
        "bit_identical": all(torch.equal(a[k], b[k]) for k in a),
        "max_abs_diff": max(float((a[k].float() - b[k].float()).abs().max()) for k in a),
        "rel_l2_diff": num / den if den else num,
    }


def _interrupt_at(step: int) -> Any:
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        """Stops the run like a kill would, once the checkpoint at ``step`` is on disk."""

        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise KeyboardInterrupt

    return Interrupt()


def qlora_unavailable() -> str | None:
    """Why QLoRA cannot run here (None when it can)."""
    import torch

    if not torch.cuda.is_available():
        return "skipped: no CUDA"
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return "skipped: bitsandbytes not installed"
    return None


def check_finetune(method: str, model_dir: Path, workdir: Path, examples: list, steps: int) -> dict[str, Any]:
    """Uninterrupted run, then an interrupted run resumed from its checkpoint: same weights to tolerance."""
    from stratdistill.finetune import finetune

    if method == "qlora" and (why := qlora_unavailable()):
        return {"status": why}
    half = steps // 2
    scfg = student_cfg(model_id=str(model_dir), dtype="bfloat16")
    tcfg = train_cfg(
        method=method,
        max_steps=steps,
        save_steps=half,
        batch_size=4,
        precision="bf16",
        learning_rate=1e-3 if method != "full" else 1e-4,
        logging_steps=1,
        max_length=4096,
    )
    root = workdir / method

    def run(name: str, callbacks: list | None = None) -> dict[str, Any]:
        prov = {"base_model": str(model_dir), "dataset_key": "gpu-check"}
        return finetune(
            examples, scfg, lora_cfg(), tcfg, 0, str(workdir / "cache"), root / name, prov, callbacks
        )

    straight = run("straight")
    try:
        run("resumed", [_interrupt_at(half)])
        interrupted = False
    except KeyboardInterrupt:  # what the callback raises: the run stopped after its checkpoint
        interrupted = True
    checkpoint_left = (root / "resumed" / "checkpoints" / f"checkpoint-{half}").is_dir()
    resumed = run("resumed")
    kind = "model" if method == "full" else "adapter"
    diff = _compare(_weights(root / "straight" / kind), _weights(root / "resumed" / kind))
    ok = (
        interrupted
        and checkpoint_left
        and resumed["resumed"] is True
        and resumed["steps"] == steps
        and diff.get("same_keys")
        and diff["rel_l2_diff"] <= RESUME_TOLERANCE
    )
    keep = ("device", "dtype", "precision", "steps", "train_loss", "trainable_parameters", "total_parameters")
    return {
        "status": PASSED if ok else "failed: the resumed run does not match the uninterrupted one",
        "uninterrupted": {k: straight[k] for k in keep} | {"loss_curve": straight["loss_curve"]},
        "interrupted_after_checkpoint": interrupted,
        "checkpoint_left": checkpoint_left,
        "resumed": {k: resumed[k] for k in ("resumed", "steps", "train_loss")},
        "weights_compared": kind,
        "resumed_vs_uninterrupted": diff,
        "tolerance_rel_l2": RESUME_TOLERANCE,
    }


def check_evaluate(model_dir: Path, workdir: Path, contexts: list[str]) -> dict[str, Any]:
    """Base and LoRA-tuned student scored by forced choice on the device, in the same dtype."""
    import torch

    from stratdistill.evaluate import evaluate_model
    from stratdistill.scenarios import grid, load_library
    from stratdistill.students import load_student

    from .common import EVAL_FORCED_CHOICE, device_and_sync

    device, _ = device_and_sync()
    adapter = workdir / "lora" / "straight" / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        return {"status": "failed: no LoRA adapter (finetune_lora did not finish)"}
    lib = load_library()
    scenarios = grid(lib, contexts, ["prison", "staghunt"], "x")
    eval_cfg = SimpleNamespace(**EVAL_FORCED_CHOICE)
    scfg = student_cfg(model_id=str(model_dir), dtype="bfloat16")
    out: dict[str, Any] = {}
    for label, kwargs in (("base", {}), ("tuned", {"adapter": adapter})):
        model, tok = load_student(scfg, workdir / "cache", device=device, **kwargs)
        param = next(model.parameters())
        rows = evaluate_model(model, tok, scenarios, lib, "action_only", label, eval_cfg)
        out[label] = {
            "device": str(param.device),
            "dtype": str(param.dtype).removeprefix("torch."),
            "scenarios": len(rows),
            "p_c": {r["scenario"]: r["p_c"] for r in rows},
            "valid_mass": {r["scenario"]: r["valid_mass"] for r in rows},
        }
        del model
    base, tuned = out["base"], out["tuned"]
    out["same_dtype"] = base["dtype"] == tuned["dtype"]
    out["on_device"] = all(out[k]["device"].split(":")[0] == device.type for k in ("base", "tuned"))
    diffs = [
        abs(tuned["p_c"][k] - base["p_c"][k])
        for k in base["p_c"]
        if base["p_c"][k] is not None and tuned["p_c"][k] is not None
    ]
    out["max_abs_p_c_change"] = max(diffs, default=None)
    finite = all(math.isfinite(v) for v in diffs) and len(diffs) == len(scenarios)
    ok = out["same_dtype"] and out["on_device"] and finite
    out["status"] = PASSED if ok else "failed: dtype, device or scores differ from what was expected"
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out
