"""Teachers: whatever produces the answers the student learns from."""

from __future__ import annotations

from typing import Any

from stratdistill.teachers.reference import ReferenceTeacher


def build_teacher(
    teacher_cfg: Any, temperature: float, cache_dir: str = ".cache/stratdistill", seed: int = 0
):
    """The teacher named by ``teacher.backend`` (validated beforehand by stratdistill.config.validate).

    A served teacher is checked (reachable, key accepted, model served) before it is returned."""
    if teacher_cfg.backend == "reference":
        return ReferenceTeacher(name=teacher_cfg.name, temperature=temperature)
    if teacher_cfg.backend == "hf":
        from stratdistill.teachers.hf import HFTeacher

        return HFTeacher(teacher_cfg, temperature, cache_dir)
    if teacher_cfg.backend == "vllm":
        from stratdistill.teachers.vllm_engine import VLLMTeacher

        return VLLMTeacher(teacher_cfg, temperature, seed)
    if teacher_cfg.backend == "openai":
        from stratdistill.teachers.openai_server import OpenAITeacher

        teacher = OpenAITeacher(teacher_cfg, temperature)
        teacher.preflight()
        return teacher
    raise ValueError(f"teacher.backend={teacher_cfg.backend!r} is not available")


__all__ = ["ReferenceTeacher", "build_teacher"]
