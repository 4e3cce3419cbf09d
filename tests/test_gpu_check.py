"""`scripts/gpu_check.py` in CPU mode: every check passes or is skipped with a reason, the pack is exact.

The GPU machine runs the same script at realistic size (bench/README.md, "GPU check"); CI has no GPU, so
this runs the toy size on CPU as a subprocess, as the GPU machine would (hydra and omegaconf made
unimportable, the student given as a random-weight folder plus the default student's tokenizer).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from gpu_checks import common, deps

CHECKS = (
    "packing_exact",
    "sdpa_kernels",
    "finetune_lora",
    "finetune_qlora",
    "finetune_full",
    "evaluate_students",
    "lora_step_7b",
    "teacher_sampling",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory, student_tokenizer) -> tuple[dict, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("gpu-check")
    student_tokenizer.save_pretrained(tmp / "tokenizer")
    cmd = [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--out", str(tmp / "gpu_check.json")]
    cmd += ["--tokenizer", str(tmp / "tokenizer"), "--no-deps", "--block-imports", "hydra", "omegaconf"]
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600)
    assert (tmp / "gpu_check.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp / "gpu_check.json").read_text()), proc


def test_every_check_passes_or_is_skipped_with_a_reason(run) -> None:
    result, proc = run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert result["ok"] is True and result["failed"] == []
    assert set(result["checks"]) == set(CHECKS)
    for name, check in result["checks"].items():
        status = check["status"]
        assert status == "passed" or (status.startswith("skipped: ") and len(status) > 9), (name, status)
    if result["mode"] == "cpu":  # what needs CUDA is skipped, never passed
        assert result["skipped"] == {"sdpa_kernels": "skipped: no CUDA", "finetune_qlora": "skipped: no CUDA"}
    assert result["hydra_or_omegaconf_imported"] == []  # the GPU machine has neither
    assert "OK; JSON:" in proc.stdout


def test_packing_is_exact_and_the_rest_reports_its_numbers(run) -> None:
    result, _ = run
    checks = result["checks"]
    for dtype in ("float32", "bfloat16"):
        case = checks["packing_exact"][dtype]
        tol = case["tolerance"]
        assert case["loss_rel_error"] < tol["loss_rel"] and case["grad_rel_l2_error"] < tol["grad_rel_l2"]
        assert case["mask"].startswith("additive float") and case["attn_implementation"] == "sdpa"
        assert any("scaled_dot_product" in op for op in case["sdpa_ops_default"])
    for method in ("lora", "full"):
        ft = checks[f"finetune_{method}"]
        assert ft["resumed"]["resumed"] is True and ft["interrupted_after_checkpoint"] is True
        assert ft["uninterrupted"]["precision"] == "bf16"
        assert ft["resumed_vs_uninterrupted"]["rel_l2_diff"] <= ft["tolerance_rel_l2"]
    ev = checks["evaluate_students"]
    assert ev["same_dtype"] and ev["base"]["dtype"] == ev["tuned"]["dtype"] == "bfloat16"
    assert checks["lora_step_7b"]["tokens_per_s"] > 0
    assert set(checks["teacher_sampling"]["routes"]) == {"prefill_once", "generate_num_return_sequences"}
    prov = result["provenance"]
    for key in ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "device_name", "torch_cuda"):
        assert key in prov


def test_namespace_configs_carry_every_config_field() -> None:
    """finetune/load_student read these attributes; a field added to the dataclasses must be added here."""
    from stratdistill.config import LoraConfig, StudentConfig, TrainConfig

    for cls, defaults in ((StudentConfig, common.STUDENT_DEFAULTS), (LoraConfig, common.LORA_DEFAULTS)):
        assert {f.name for f in dataclasses.fields(cls)} == set(defaults), cls.__name__
    assert {f.name for f in dataclasses.fields(TrainConfig)} == set(common.TRAIN_DEFAULTS)
    for f in dataclasses.fields(TrainConfig):
        assert f.default == common.TRAIN_DEFAULTS[f.name], f.name


def test_only_missing_or_older_wheels_are_installed() -> None:
    import transformers

    have = transformers.__version__
    wheels = [
        Path(f"transformers-{have}-py3-none-any.whl"),
        Path("transformers-999.0.0-py3-none-any.whl"),
        Path("no_such_package_here-1.0-py3-none-any.whl"),
    ]
    needed = [w.name for w, _ in deps.needed_wheels(wheels)]
    assert needed == [wheels[1].name, wheels[2].name]
