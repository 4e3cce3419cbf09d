"""The one shape every stage has, and the one rule that builds its artifact key.

A stage declares which config values enter its key (``config_paths``: a section such as ``student`` or
one value such as ``eval.temperature``), which of them do not apply to a given config (``omit``, e.g.
LoRA settings under full fine-tuning), the modules whose code it runs (``entries``; the code version is
derived from them, :mod:`stratdistill.stages.code_version`), and the upstream stages it reads. Its key
is then always the hash of: those config values, its code version, and its inputs (upstream artifact
keys, the scenarios it runs, with their prompt texts). A config key that no stage declares must be
listed in :data:`NOT_IN_ANY_KEY` with the reason it cannot change a result; ``tests/test_stages.py``
fails on any key that is in neither, so a new setting cannot be silently left out of every key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from stratdistill.stages.code_version import TEACHER_BACKENDS, code_version

# Config values that change no artifact, each with the reason. Everything else is in some stage's key.
NOT_IN_ANY_KEY: dict[str, str] = {
    "tracker": "where metrics are logged",
    "until": "which stages run, not what they produce",
    "cache_dir": "where artifacts are stored",
    "output_dir": "where the report is written",
    "train.save_steps": "how often a checkpoint is written; resuming from one is exact",
    "train.logging_steps": "how often the loss is logged",
    "teacher.concurrency": "how many requests are in flight, not which answers come back",
    "teacher.max_retries": "how often a failed request is retried",
    "teacher.request_timeout": "how long a request may take",
    "teacher.api_key_env": "where the API key is read from",
    "eval.batch_size": "how many prompts are scored at once; the estimates do not depend on it",
    "eval.splits": "which splits are evaluated: enters as the evaluated scenarios",
    "eval.adapter": "enters as the hash of the adapter's files",
    "split": "enters as the scenarios each stage runs",
    "games": "enters as the scenarios (their game and context texts and prompt files)",
}


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: node}


def _under(path: str, prefixes: set[str] | tuple[str, ...] | list[str]) -> bool:
    return any(path == p or path.startswith(f"{p}.") for p in prefixes)


def config_leaves(cfg: Any) -> dict[str, Any]:
    """Every value of a composed config, by its dotted path (dict-valued options such as
    ``teacher.extra_body`` count as one value)."""
    container = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    flat: dict[str, Any] = {}
    for section, value in container.items():
        if section in ("teacher", "student", "lora", "train", "eval", "data", "temperature", "tracker"):
            flat.update({f"{section}.{k}": v for k, v in value.items()})
        else:
            flat.update(_leaves(value, section) if section in ("split", "games") else {section: value})
    return flat


@dataclass(frozen=True)
class Stage:
    """One cached step of the pipeline (see the module docstring for the key rule)."""

    name: str  # its folder in the artifact store
    entries: tuple[str, ...]  # modules whose import closure is the code it runs
    config_paths: tuple[str, ...]
    upstream: tuple[str, ...] = ()
    omit: Callable[[Any], set[str]] = field(default=lambda cfg: set())
    runs_teacher: bool = False  # then only the configured teacher backend's code is in its version
    data_files: Callable[[Any], list[Path]] = field(default=lambda cfg: [])

    def code_version(self, cfg: Any) -> str:
        exclude: set[str] = set()
        if self.runs_teacher:
            exclude = {m for b, m in TEACHER_BACKENDS.items() if b != cfg.teacher.backend}
        return code_version(self.entries, exclude, self.data_files(cfg))

    def config_key(self, cfg: Any) -> dict[str, Any]:
        """The declared config values that apply to ``cfg``, by dotted path."""
        omitted = self.omit(cfg)
        return {
            path: value
            for path, value in sorted(config_leaves(cfg).items())
            if _under(path, self.config_paths)
            and not _under(path, NOT_IN_ANY_KEY)
            and not _under(path, omitted)
        }

    def spec(self, cfg: Any, **inputs: Any) -> dict[str, Any]:
        """What the artifact key hashes: config values, code version and inputs (upstream keys, scenarios)."""
        return {"config": self.config_key(cfg), "code": self.code_version(cfg), **inputs}
