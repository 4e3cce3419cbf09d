"""A teacher run by vLLM's offline engine (``pip install -e .[vllm]``, CUDA GPUs).

vLLM already does what makes many samples of one prompt cheap: a request with ``n`` samples prefills the
prompt once and shares its KV blocks between the samples, and continuous batching keeps the GPU busy.
``teacher.tensor_parallel_size`` splits a 70B-class model over several GPUs.

We render the prompt with the model's own chat template (as the other backends do) and pass vLLM its
token ids, so the prompt stored with each row is exactly what the model read. The two pure functions below
build the engine's and the request's arguments; they are what the unit tests check on machines
without a GPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stratdistill.errors import ConfigError
from stratdistill.prompts import render_chat, template_id
from stratdistill.scenarios import Scenario


def engine_kwargs(cfg: Any, seed: int) -> dict[str, Any]:
    """Arguments of ``vllm.LLM`` for ``teacher.*``."""
    kwargs: dict[str, Any] = {
        "model": cfg.model_id,
        "revision": cfg.revision,
        "tokenizer_revision": cfg.revision,
        "dtype": cfg.dtype,
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
        "trust_remote_code": cfg.trust_remote_code,
        "seed": seed,
    }
    if cfg.max_model_len is not None:
        kwargs["max_model_len"] = cfg.max_model_len
    if cfg.load_in_4bit:
        kwargs["quantization"] = "bitsandbytes"
    return kwargs


def sampling_kwargs(cfg: Any, temperature: float, n: int, seed: int) -> dict[str, Any]:
    """Arguments of ``vllm.SamplingParams`` for one prompt's ``n`` samples: the paper's settings, pure
    sampling (no top-k/top-p truncation), greedy at temperature 0."""
    return {
        "n": n,
        "temperature": temperature,
        "top_p": 1.0,
        "top_k": -1 if temperature > 0 else 1,
        "repetition_penalty": cfg.repetition_penalty,
        "max_tokens": cfg.max_new_tokens,
        "seed": seed,
    }


class VLLMTeacher:
    is_stand_in = False
    backend = "vllm"

    def __init__(self, cfg: Any, temperature: float, seed: int = 0) -> None:
        try:
            import vllm
        except ImportError:
            raise ConfigError(
                "teacher.backend",
                "vllm",
                "'hf' or 'openai' unless vLLM is installed (pip install -e '.[vllm]', on a CUDA machine)",
            ) from None
        self._vllm = vllm
        self.cfg = cfg
        self.name = cfg.name
        self.revision = cfg.revision
        self.temperature = temperature
        self.llm = vllm.LLM(**engine_kwargs(cfg, seed))
        self.tokenizer = self.llm.get_tokenizer()

    @property
    def description(self) -> str:
        return (
            f"the language model {self.cfg.model_id} through vLLM (tensor parallel "
            f"{self.cfg.tensor_parallel_size}, chat template {template_id(self.tokenizer)}, at most "
            f"{self.cfg.max_new_tokens} new tokens, repetition penalty {self.cfg.repetition_penalty})"
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
    ) -> list[str]:
        params = self._vllm.SamplingParams(
            **sampling_kwargs(self.cfg, self.temperature, n, int(rng.integers(2**31)))
        )
        # Token ids, not text: vLLM would add a second BOS to a template that already starts with one.
        ids = self.tokenizer(self.render(messages), add_special_tokens=False).input_ids
        (request,) = self.llm.generate([{"prompt_token_ids": ids}], params, use_tqdm=False)
        return [out.text for out in request.outputs]
