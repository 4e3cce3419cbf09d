"""The checks Hydra cannot do: values and names, against the allowed sets and the scenario library.

:func:`validate` raises :class:`~stratdistill.errors.ConfigError` with one line naming the key, the value
and what is allowed (``split.train.games=[chess]``, ``temperature.teacher=-1``), before any model is
loaded or any job is submitted. The schemas in :mod:`stratdistill.config` catch unknown keys and wrong
types first, inside Hydra.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from stratdistill.errors import ConfigError

TEACHER_BACKENDS = ("reference", "hf", "vllm", "openai")
PARSE_FAILURE_POLICIES = ("drop", "resample", "keep")
ALPHA_MODES = ("fixed", "tied", "rslora")
METHODS = ("lora", "qlora", "full")
ORDERS = ("action_first", "motivation_first")
DTYPES = ("float32", "bfloat16", "float16")
PRECISIONS = ("fp32", "fp16", "bf16")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
EVAL_METHODS = ("forced_choice", "forms", "sampled")
SUBSAMPLES = ("stratified", "first")
TRACKERS = ("none", "jsonl", "wandb")
TRACKER_MODES = (None, "online", "offline", "disabled")
MAX_TEMPERATURE = 5.0
# Backends whose API refuses hotter sampling: vLLM's SamplingParams and the OpenAI API allow [0, 2].
BACKEND_MAX_TEMPERATURE = {"vllm": 2.0, "openai": 2.0}
UNTIL = ("teacher", "finetune")


def _check(cond: bool, key: str, value: object, allowed: str) -> None:
    if not cond:
        raise ConfigError(key, value, allowed)


def _check_qlora_possible() -> None:
    """QLoRA needs a CUDA GPU and bitsandbytes; say so before anything is loaded."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "train.method",
            "qlora",
            "'lora' or 'full' on a machine without a CUDA GPU (QLoRA's 4-bit base model runs on CUDA only)",
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(
            "train.method",
            "qlora",
            "'lora' or 'full' unless bitsandbytes is installed (pip install bitsandbytes)",
        )


def _check_model_source(node: Any, group: str, hardware: bool = True) -> None:
    """A real model must name where its weights are; a local path must exist (hub ids are not checked
    here: this machine may be offline and the node that runs the job may not be)."""
    from pathlib import Path

    _check(bool(node.model_id), f"{group}.model_id", node.model_id, "an HF model id or a local model folder")
    looks_local = str(node.model_id).startswith(("/", "./", "../", "~"))
    if looks_local and not node.gguf_package:
        _check(
            Path(node.model_id).expanduser().is_dir(),
            f"{group}.model_id",
            node.model_id,
            "an existing local model folder (or an HF model id such as Qwen/Qwen2.5-72B-Instruct)",
        )
    if looks_local and not node.trust_remote_code:
        config_file = Path(node.model_id).expanduser() / "config.json"
        if config_file.is_file() and "auto_map" in config_file.read_text():
            raise ConfigError(
                f"{group}.trust_remote_code",
                False,
                f"true, if you trust the Python code that {node.model_id} ships (its config.json has an "
                "auto_map); it stays off unless you turn it on",
            )
    if getattr(node, "load_in_4bit", False) and hardware:
        import torch

        _check(torch.cuda.is_available(), f"{group}.load_in_4bit", True, "false on a machine without CUDA")


def _check_server(node: Any) -> None:
    """An OpenAI-compatible teacher needs a URL and a model name (reachability is checked when it starts)."""
    from urllib.parse import urlparse

    url = urlparse(str(node.base_url or ""))
    _check(
        url.scheme in ("http", "https") and bool(url.netloc),
        "teacher.base_url",
        node.base_url,
        "the server's OpenAI API root, e.g. http://127.0.0.1:8000/v1",
    )
    _check(bool(node.model_id), "teacher.model_id", node.model_id, "the model name the server serves")
    _check(node.concurrency >= 1, "teacher.concurrency", node.concurrency, "an integer >= 1")
    _check(node.n_per_request >= 1, "teacher.n_per_request", node.n_per_request, "an integer >= 1")
    _check(node.max_retries >= 0, "teacher.max_retries", node.max_retries, "an integer >= 0")
    _check(node.request_timeout > 0, "teacher.request_timeout", node.request_timeout, "seconds > 0")


def check_adapter(path: str, model_id: str, key: str) -> None:
    """An existing adapter folder must be PEFT's and must belong to this student."""
    import json
    from pathlib import Path

    cfg_file = Path(path) / "adapter_config.json"
    if not cfg_file.is_file():
        raise ConfigError(key, path, "a folder holding a PEFT adapter (adapter_config.json)")
    base = json.loads(cfg_file.read_text()).get("base_model_name_or_path")
    prov = Path(path) / "provenance.json"
    if prov.is_file():
        base = json.loads(prov.read_text()).get("base_model", base)
    if base and base != model_id:
        raise ConfigError(
            key, path, f"an adapter trained on the student {model_id!r} (this one was trained on {base!r})"
        )


def validate(cfg: Any, hardware: bool = True) -> None:
    """Check every value Hydra's types cannot, and every scenario name; raise ConfigError on the first.

    ``hardware=False`` skips the checks of this machine's CUDA (for jobs that will run on other nodes).
    """
    from stratdistill.prompts import INSTRUCTIONS
    from stratdistill.scenarios import load_library, resolve_split

    for node, key in (("student", "model_id"), ("split", "name")):
        _check(
            not OmegaConf.is_missing(cfg[node], key),
            f"{node}.{key}",
            "???",
            "a value (this config leaves it to you, e.g. student.model_id=/path/or/hf-id)",
        )
    choices = {
        "lora.alpha_mode": ALPHA_MODES,
        "data.order": ORDERS,
        "data.subsample": SUBSAMPLES,
        "train.method": METHODS,
        "train.precision": PRECISIONS,
        "train.lr_scheduler": SCHEDULERS,
        "student.dtype": DTYPES,
        "eval.method": EVAL_METHODS,
        "eval.instruction": INSTRUCTIONS,
        "tracker.backend": TRACKERS,
        "tracker.mode": TRACKER_MODES,
    }
    for key, allowed in choices.items():
        value = OmegaConf.select(cfg, key)
        _check(value in allowed, key, value, f"one of {list(allowed)}")
    t = cfg.temperature.teacher
    t_max = BACKEND_MAX_TEMPERATURE.get(cfg.teacher.backend)
    if t_max is None:
        _check(0 <= t <= MAX_TEMPERATURE, "temperature.teacher", t, f"a number in [0, {MAX_TEMPERATURE}]")
    else:
        bound = f"a number in [0, {t_max}] with teacher.backend={cfg.teacher.backend} (its API refuses more)"
        _check(0 <= t <= t_max, "temperature.teacher", t, bound)
    _check(
        cfg.teacher.backend in TEACHER_BACKENDS,
        "teacher.backend",
        cfg.teacher.backend,
        f"one of {list(TEACHER_BACKENDS)}",
    )
    if cfg.teacher.backend in ("hf", "vllm"):
        _check_model_source(cfg.teacher, "teacher", hardware)
    if cfg.teacher.backend == "openai":
        _check_server(cfg.teacher)
    if cfg.teacher.backend == "vllm":
        tp = cfg.teacher.tensor_parallel_size
        _check(tp >= 1, "teacher.tensor_parallel_size", tp, "an integer >= 1 (GPUs per model)")
        gmu = cfg.teacher.gpu_memory_utilization
        _check(0 < gmu <= 1, "teacher.gpu_memory_utilization", gmu, "a fraction in (0, 1]")
    _check(
        cfg.data.parse_failures in PARSE_FAILURE_POLICIES,
        "data.parse_failures",
        cfg.data.parse_failures,
        f"one of {list(PARSE_FAILURE_POLICIES)}",
    )
    _check(cfg.data.max_resamples >= 0, "data.max_resamples", cfg.data.max_resamples, "an integer >= 0")
    _check(cfg.data.teacher_samples > 0, "data.teacher_samples", cfg.data.teacher_samples, "an integer > 0")
    k = cfg.data.train_per_scenario
    _check(
        k is None or 0 < k <= cfg.data.teacher_samples,
        "data.train_per_scenario",
        k,
        f"null (all) or an integer in [1, data.teacher_samples={cfg.data.teacher_samples}]",
    )
    _check(cfg.eval.teacher_samples > 0, "eval.teacher_samples", cfg.eval.teacher_samples, "an integer > 0")
    _check(cfg.lora.r > 0, "lora.r", cfg.lora.r, "an integer > 0 (the LoRA rank)")
    _check(cfg.lora.alpha > 0, "lora.alpha", cfg.lora.alpha, "a number > 0")
    if cfg.train.method == "qlora" and hardware:
        _check_qlora_possible()
    if cfg.eval.adapter is not None:
        check_adapter(cfg.eval.adapter, cfg.student.model_id, "eval.adapter")
    _check(0 <= cfg.lora.dropout < 1, "lora.dropout", cfg.lora.dropout, "a number in [0, 1)")
    _check(
        len(cfg.lora.target_modules) > 0,
        "lora.target_modules",
        list(cfg.lora.target_modules),
        "a non-empty list of module names, e.g. [q_proj, v_proj]",
    )
    _check(cfg.train.learning_rate > 0, "train.learning_rate", cfg.train.learning_rate, "a number > 0")
    # fp16 autocast casts bf16 weights to fp16, whose range (6.5e4) is far below bf16's: overflow
    _check(
        not (cfg.train.precision == "fp16" and cfg.student.dtype == "bfloat16"),
        "train.precision",
        cfg.train.precision,
        "bf16 or fp32 for a student loaded in bfloat16 (fp16 autocast over bf16 weights can overflow; "
        "use fp16 only with student.dtype=float16 or float32)",
    )
    _check(
        cfg.train.epochs > 0 or cfg.train.max_steps > 0,
        "train.epochs",
        cfg.train.epochs,
        "a number > 0 (or set train.max_steps > 0)",
    )
    _check(cfg.train.batch_size > 0, "train.batch_size", cfg.train.batch_size, "an integer > 0")
    _check(cfg.train.grad_accum > 0, "train.grad_accum", cfg.train.grad_accum, "an integer > 0")
    _check(cfg.train.max_length >= 64, "train.max_length", cfg.train.max_length, "an integer >= 64 (tokens)")
    _check(cfg.train.save_steps > 0, "train.save_steps", cfg.train.save_steps, "an integer > 0")
    _check(cfg.eval.samples > 0, "eval.samples", cfg.eval.samples, "an integer > 0")
    _check(
        0 <= cfg.eval.temperature <= MAX_TEMPERATURE,
        "eval.temperature",
        cfg.eval.temperature,
        f"a number in [0, {MAX_TEMPERATURE}]",
    )
    _check(cfg.eval.max_new_tokens > 0, "eval.max_new_tokens", cfg.eval.max_new_tokens, "an integer > 0")
    pen = cfg.eval.repetition_penalty
    _check(pen > 0, "eval.repetition_penalty", pen, "a number > 0 (1.0 = none)")
    if cfg.eval.method == "forced_choice":
        from stratdistill.decision import check_opening

        _check(
            cfg.eval.temperature > 0,
            "eval.temperature",
            cfg.eval.temperature,
            f"a number in (0, {MAX_TEMPERATURE}] with eval.method=forced_choice (it divides the logits)",
        )
        check_opening("eval.opening_2x2", cfg.eval.opening_2x2)
        check_opening("eval.opening_public_goods", cfg.eval.opening_public_goods)
    dw = cfg.train.decision_weight
    _check(dw >= 0, "train.decision_weight", dw, "a number >= 0 (0 = text loss only)")
    dp = cfg.train.decision_passes
    _check(dp >= 0, "train.decision_passes", dp, "an integer >= 0")
    if dp > 0:
        _check(dw > 0, "train.decision_weight", dw, "a number > 0 when train.decision_passes > 0")
    if dw > 0:
        from stratdistill.decision import check_opening

        check_opening("eval.opening_2x2", cfg.eval.opening_2x2)
        _check(
            cfg.train.shared_prefix,
            "train.decision_weight",
            dw,
            "0 unless train.shared_prefix=true (the decision segment lives in shared-prefix packs)",
        )
    _check(cfg.eval.batch_size > 0, "eval.batch_size", cfg.eval.batch_size, "an integer > 0")
    until = OmegaConf.select(cfg, "until")
    _check(until is None or until in UNTIL, "until", until, f"null (every stage) or one of {list(UNTIL)}")
    library = load_library(list(cfg.games.library_dirs), cfg.games.prompt_dir)
    _, evals = resolve_split(library, cfg.split)
    if cfg.eval.splits is not None:
        for name in cfg.eval.splits:
            _check(name in evals, "eval.splits", name, f"names from split.eval: {sorted(evals)}")
