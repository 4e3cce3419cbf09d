"""Teachers: whatever produces the answers the student learns from.

Every backend implements :class:`~stratdistill.teachers.base.Teacher`; the temperature is passed to each
``sample`` call, so :func:`load_teacher` can keep one loaded teacher for every point of a temperature
(or seed) sweep that Hydra's basic launcher runs in one process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from stratdistill.teachers.base import Request, Teacher
from stratdistill.teachers.reference import ReferenceTeacher


def build_teacher(teacher_cfg: Any, cache_dir: str | Path = ".cache/stratdistill", seed: int = 0) -> Teacher:
    """A new teacher named by ``teacher.backend`` (validated beforehand by stratdistill.config.validate).

    A served teacher is checked (reachable, key accepted, model served) before it is returned."""
    if teacher_cfg.backend == "reference":
        return ReferenceTeacher(name=teacher_cfg.name)
    if teacher_cfg.backend == "hf":
        from stratdistill.teachers.hf import HFTeacher

        return HFTeacher(teacher_cfg, cache_dir)
    if teacher_cfg.backend == "vllm":
        from stratdistill.teachers.vllm_engine import VLLMTeacher

        return VLLMTeacher(teacher_cfg, seed)
    if teacher_cfg.backend == "openai":
        from stratdistill.teachers.openai_server import OpenAITeacher

        teacher = OpenAITeacher(teacher_cfg)
        teacher.preflight()
        return teacher
    raise ValueError(f"teacher.backend={teacher_cfg.backend!r} is not available")


# The teacher this process holds: (what it was built from, the teacher). One at a time: a second
# model next to the first could not fit the GPU a 70B teacher fills.
_loaded: tuple[str, Teacher] | None = None


def _load_key(teacher_cfg: Any, cache_dir: str | Path) -> str:
    """What a loaded teacher depends on: all of ``teacher.*`` (connection settings included, unlike
    the artifact key) and the model cache. Not the seed: it only seeds vLLM's engine, and every request
    we send carries its own seed, so no answer depends on it."""
    cfg = teacher_cfg
    if type(cfg).__module__.startswith("omegaconf"):  # imported only then: the GPU check runs without it
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)
    return json.dumps({"teacher": cfg, "cache_dir": str(cache_dir)}, sort_keys=True, default=str)


def load_teacher(teacher_cfg: Any, cache_dir: str | Path = ".cache/stratdistill", seed: int = 0) -> Teacher:
    """The teacher for ``teacher_cfg``, built once per process and reused while the config is the same.

    Why: Hydra's basic launcher runs the points of ``python launch.py -m temperature.teacher=0.5,0.8``
    one after another in one process; they need the same model at different temperatures, and loading
    it is the slow part. A different teacher config replaces the one held."""
    global _loaded
    key = _load_key(teacher_cfg, cache_dir)
    if _loaded is not None and _loaded[0] == key:
        return _loaded[1]
    unload_teacher()  # free the old model before loading the next
    teacher = build_teacher(teacher_cfg, cache_dir, seed)
    _loaded = (key, teacher)
    return teacher


def unload_teacher() -> None:
    """Drop the teacher :func:`load_teacher` holds and free its memory (a GPU full of teacher), e.g.
    before the student trains. Memory held by other references to it is freed when they go."""
    global _loaded
    if _loaded is None:
        return
    _loaded = None
    import gc

    gc.collect()
    if "torch" in sys.modules:  # only a teacher that imported torch can have left GPU memory behind
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


__all__ = ["ReferenceTeacher", "Request", "Teacher", "build_teacher", "load_teacher", "unload_teacher"]
