"""Shared pieces of the GPU check: sizes per mode, duck-typed configs, the random student, provenance.

Why duck-typed configs: ``finetune()`` and ``load_student()`` read attributes only, and the GPU machine
has no hydra/omegaconf, so :func:`student_cfg`, :func:`lora_cfg` and :func:`train_cfg` build
``SimpleNamespace`` objects holding every field of the dataclasses in ``stratdistill.config``
(``tests/test_gpu_check.py`` checks that the field sets still match).
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PASSED = "passed"

# Mirrors of the dataclass defaults in src/stratdistill/config.py (kept in step by the test).
STUDENT_DEFAULTS: dict[str, Any] = {
    "name": "gpu_check_random",
    "model_id": "",
    "revision": None,
    "gguf_package": None,
    "gguf_file": None,
    "dtype": "bfloat16",
    "trust_remote_code": False,
}
LORA_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "alpha": 16.0,
    "alpha_mode": "fixed",
    "dropout": 0.0,
    "target_modules": ["q_proj", "v_proj"],
}
TRAIN_DEFAULTS: dict[str, Any] = {
    "method": "lora",
    "epochs": 1.0,
    "max_steps": -1,
    "learning_rate": 5e-5,
    "lr_scheduler": "cosine",
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "batch_size": 8,
    "grad_accum": 1,
    "shared_prefix": True,
    "max_length": 2048,
    "precision": "fp32",
    "gradient_checkpointing": False,
    "save_steps": 20,
    "decision_weight": 0.0,
    "decision_passes": 0,
    "logging_steps": 5,
}
EVAL_FORCED_CHOICE: dict[str, Any] = {
    "method": "forced_choice",
    "temperature": 0.8,
    "repetition_penalty": 1.0,
    "opening_2x2": "Of the two options, C and D, I would choose option",
    "opening_public_goods": "I would donate $",
}


def student_cfg(**kw: Any) -> SimpleNamespace:
    return SimpleNamespace(**{**STUDENT_DEFAULTS, **kw})


def lora_cfg(**kw: Any) -> SimpleNamespace:
    return SimpleNamespace(**{**LORA_DEFAULTS, **kw})


def train_cfg(**kw: Any) -> SimpleNamespace:
    return SimpleNamespace(**{**TRAIN_DEFAULTS, **kw})


@dataclass(frozen=True)
class Size:
    """How big each check runs: realistic on CUDA, toy on CPU (the test runs it in well under 2 min)."""

    student: dict[str, Any]  # LlamaConfig fields of the random student (checks 1-3, 5)
    answers_per_pack: int  # check 1
    scenarios: list[str]  # training contexts (prisoner's dilemma in each) for check 2
    samples_per_scenario: int
    eval_contexts: list[str]  # check 3 scores the prisoner's dilemma and stag hunt in each
    train_steps: int  # interrupted after save_steps = train_steps // 2
    big: dict[str, Any]  # the 7B-shaped (CUDA) or tiny same-family model of check 4
    big_pack_tokens: int
    big_steps: int
    samples: int  # check 5
    max_new_tokens: int


SMOLLM2_135M = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
LLAMA2_7B = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
TOY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}
CONTEXTS = ["IR", "team", "biz", "friendsharing"]
CUDA_SIZE = Size(
    student=SMOLLM2_135M,
    answers_per_pack=16,
    scenarios=CONTEXTS,
    samples_per_scenario=8,
    eval_contexts=CONTEXTS,
    train_steps=6,
    big=LLAMA2_7B,
    big_pack_tokens=2048,
    big_steps=4,
    samples=64,
    max_new_tokens=128,
)
# CPU bf16 matrix products are slow here (~1 GFLOP/s): the toy size keeps the run near a minute.
CPU_SIZE = Size(
    student={**SMOLLM2_135M, **TOY, "num_key_value_heads": 2, "head_dim": 16},
    answers_per_pack=2,
    scenarios=["IR", "team"],
    samples_per_scenario=2,
    eval_contexts=["IR"],
    train_steps=2,
    big={**LLAMA2_7B, **TOY, "num_key_value_heads": 4},
    big_pack_tokens=256,
    big_steps=3,
    samples=8,
    max_new_tokens=8,
)


def write_random_student(folder: Path, tokenizer_dir: Path, fields: dict[str, Any]) -> Path:
    """A Llama model with random weights (nothing downloaded) and the student's tokenizer, as a folder
    that ``finetune`` and ``load_student`` read like any local model id. Saved in bfloat16: the GPU
    student's dtype; float32 runs upcast on load."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**fields)).to(torch.bfloat16)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(folder)
    return folder


def export_student_tokenizer(folder: Path) -> Path:
    """The default student's tokenizer files (pad token set), exported from the dev machine's cache.

    Needs hydra (the default config compose), so it runs here, never on the GPU machine."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import MODEL_CACHE, compose_cfg
    from stratdistill.students import load_tokenizer

    tok = load_tokenizer(compose_cfg().student, MODEL_CACHE)
    tok.save_pretrained(folder)
    return folder


def resolve_tokenizer(given: str | None, workdir: Path) -> Path:
    """--tokenizer, else ``.gpu-deps/tokenizer`` (what ``make gpu-deps`` exports), else export it now."""
    if given:
        return Path(given)
    shipped = ROOT / ".gpu-deps" / "tokenizer"
    if (shipped / "tokenizer_config.json").is_file():
        return shipped
    return export_student_tokenizer(workdir / "tokenizer")


def device_and_sync() -> tuple[Any, Callable[[], None]]:
    """The device to check on and a function that waits for it (CUDA timings need a synchronize)."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", 0), torch.cuda.synchronize
    return torch.device("cpu"), lambda: None


def peak_memory() -> dict[str, Any]:
    """Peak device memory since the last reset (CUDA); on CPU the process's peak RSS, labelled so."""
    import resource

    import torch

    if torch.cuda.is_available():
        return {"cuda_max_memory_allocated_bytes": torch.cuda.max_memory_allocated()}
    return {"cpu_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def run_check(name: str, fn: Callable[[], dict[str, Any]], deadline: float) -> dict[str, Any]:
    """Run one check; an exception is recorded as the check's failure (with its traceback), never
    swallowed, and the remaining checks still run. A check whose result has no ``status`` passed."""
    if time.monotonic() > deadline:
        return {"status": "failed: not started, the run's time budget was spent"}
    t0 = time.monotonic()
    print(f"[gpu-check] {name} ...", flush=True)
    try:
        result = fn()
    except Exception as exc:
        result = {"status": f"failed: {type(exc).__name__}: {exc}"[:500], "traceback": traceback.format_exc()}
    result.setdefault("status", PASSED)
    result["seconds"] = round(time.monotonic() - t0, 2)
    print(f"[gpu-check] {name}: {result['status']} ({result['seconds']} s)", flush=True)
    reset_peak()
    return result


def verdict(ok: bool, why: str) -> str:
    return PASSED if ok else f"failed: {why}"


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def provenance() -> dict[str, Any]:
    """Versions and where each was imported from (so a run shows whether .gpu-deps was used), device."""
    import accelerate
    import peft
    import torch
    import transformers

    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for mod in (torch, transformers, peft, accelerate):
        out[mod.__name__] = {"version": mod.__version__, "path": str(Path(mod.__file__).parent)}
    try:
        import bitsandbytes

        out["bitsandbytes"] = {
            "version": bitsandbytes.__version__,
            "path": str(Path(bitsandbytes.__file__).parent),
        }
    except Exception as exc:  # bitsandbytes raises more than ImportError when its library will not load
        out["bitsandbytes"] = {
            "version": _version("bitsandbytes"),
            "import_error": f"{type(exc).__name__}: {exc}",
        }
    out["cuda_available"] = torch.cuda.is_available()
    out["torch_cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        out["device_name"] = torch.cuda.get_device_name(0)
        out["device_memory_bytes"] = props.total_memory
        out["capability"] = f"{props.major}.{props.minor}"
        out["cudnn"] = torch.backends.cudnn.version()
    else:
        out["device_name"] = f"cpu ({platform.processor() or platform.machine()})"
    floor = (5, 24)
    out["transformers_meets_floor"] = tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= floor
    return out


def dump(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
