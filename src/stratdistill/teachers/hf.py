"""A real language model as teacher, through transformers (any HF id, local folder, or PyPI GGUF).

Many answers to one prompt share its prefill: :func:`stratdistill.evaluate.sample_answers` runs the
prompt once and samples every continuation from a copy of its key/value cache, instead of
``num_return_sequences`` prefilling it once per sample. The paper's sampling settings are the defaults
(temperature 0.8, at most 600 new tokens, repetition penalty 1.1). ``teacher.device_map=auto`` spreads a
model larger than one GPU over all of them through accelerate; ``teacher.load_in_4bit`` loads it in NF4
through bitsandbytes (CUDA only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stratdistill.evaluate import sample_answers
from stratdistill.prompts import render_chat, template_id
from stratdistill.scenarios import Scenario
from stratdistill.teachers.base import Teacher


class HFTeacher(Teacher):
    """A causal LM loaded in this process; the temperature is chosen per call, so one load serves a
    temperature sweep."""

    backend = "hf"
    holds_model = True

    def __init__(self, cfg: Any, cache_dir: str | Path) -> None:
        from stratdistill.students import load_causal_lm

        self.name = cfg.name
        self.revision = cfg.revision
        self.max_new_tokens = cfg.max_new_tokens
        self.repetition_penalty = cfg.repetition_penalty
        self.batch_size = cfg.batch_size
        self.model, self.tokenizer = load_causal_lm(
            cfg, cache_dir, quantize_4bit=cfg.load_in_4bit, device_map=cfg.device_map, role="teacher"
        )

    @property
    def description(self) -> str:
        return (
            f"the language model {self.name} through transformers (chat template "
            f"{template_id(self.tokenizer)}, at most {self.max_new_tokens} new tokens, "
            f"repetition penalty {self.repetition_penalty})"
        )

    def render(self, messages: list[dict[str, str]]) -> str:
        return render_chat(messages, self.tokenizer)

    def sample(
        self,
        scenario: Scenario,
        messages: list[dict[str, str]],
        instruction: str,
        n: int,
        rng: np.random.Generator,
        temperature: float,
    ) -> list[str]:
        return sample_answers(
            self.model,
            self.tokenizer,
            self.render(messages),
            n,
            temperature=temperature,
            max_new_tokens=self.max_new_tokens,
            repetition_penalty=self.repetition_penalty,
            seed=int(rng.integers(2**31)),
            chunk=self.batch_size,
        )
