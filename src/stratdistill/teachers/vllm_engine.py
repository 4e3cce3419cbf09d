"""A teacher run by vLLM's offline engine (``pip install -e .[vllm]``, CUDA GPUs).

vLLM already does what makes many samples of one prompt cheap: a request with ``n`` samples prefills the
prompt once and shares its KV blocks between the samples, and continuous batching keeps the GPU busy.
``teacher.tensor_parallel_size`` splits a 70B-class model over several GPUs.

We render the prompt with the model's own chat template (as the other backends do) and pass vLLM its
token ids, so the prompt stored with each row is exactly what the model read. The two pure functions below
build the engine's and the request's arguments; they are what the unit tests check on machines
without a GPU.

Many chunks per ``generate`` call: one chunk (50 samples of one prompt) is far fewer sequences than a
tensor-parallel engine runs at once, so :meth:`VLLMTeacher.sample_many` submits up to
:data:`CHUNKS_PER_CALL` chunks together. The caller still writes each chunk on its own (resumable), and each
chunk's seed comes from its own RNG, so its answers do not depend on the chunks it shared a call with.

Greedy decoding (temperature 0): vLLM refuses ``n > 1`` (every sample would be the same answer), so one
answer is generated per prompt and repeated ``n`` times; the description at that temperature says so.

The temperature is an argument of every call (it is a per-request sampling parameter in vLLM), so one
engine serves every point of a temperature sweep (:func:`stratdistill.teachers.load_teacher`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stratdistill.errors import ConfigError
from stratdistill.prompts import render_chat, template_id
from stratdistill.scenarios import Scenario
from stratdistill.teachers.base import Request, Teacher

# Chunks submitted to one LLM.generate call: 32 x 50 = 1600 sequences keeps a tensor-parallel engine's
# batch (max_num_seqs, 256-1024) full; a job killed mid-call loses at most this many chunks' work.
CHUNKS_PER_CALL = 32
# vLLM decodes greedily below this temperature (vllm.sampling_params._SAMPLING_EPS).
GREEDY_BELOW = 1e-5
# Added to the description of answers sampled greedily (the report must say they are one answer, repeated).
GREEDY_NOTE = "; greedy: one answer per prompt, repeated for every sample"


def is_greedy(temperature: float) -> bool:
    """Whether vLLM treats ``temperature`` as greedy decoding (then it refuses n > 1)."""
    return temperature < GREEDY_BELOW


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
    sampling (no top-k/top-p truncation). Greedy (temperature 0) asks for one sample, as vLLM requires
    (``n must be 1 when using greedy sampling``); the caller repeats it. vLLM gives the j-th of the
    ``n`` samples the seed ``seed + j``."""
    greedy = is_greedy(temperature)
    return {
        "n": 1 if greedy else n,
        "temperature": temperature,
        "top_p": 1.0,
        "top_k": 1 if greedy else -1,
        "repetition_penalty": cfg.repetition_penalty,
        "max_tokens": cfg.max_new_tokens,
        "seed": seed,
    }


class VLLMTeacher(Teacher):
    backend = "vllm"
    holds_model = True
    chunks_per_call = CHUNKS_PER_CALL  # read by stratdistill.dataset.sample_teacher

    def __init__(self, cfg: Any, seed: int = 0) -> None:
        """``seed`` seeds the engine; it changes no answer of ours, since every request carries its own
        seed (drawn from its chunk's RNG)."""
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
        self._said_greedy = False
        self.llm = vllm.LLM(**engine_kwargs(cfg, seed))
        self.tokenizer = self.llm.get_tokenizer()

    @property
    def description(self) -> str:
        return (
            f"the language model {self.cfg.model_id} through vLLM (tensor parallel "
            f"{self.cfg.tensor_parallel_size}, chat template {template_id(self.tokenizer)}, at most "
            f"{self.cfg.max_new_tokens} new tokens, repetition penalty {self.cfg.repetition_penalty})"
        )

    def describe(self, temperature: float) -> str:
        if not is_greedy(temperature):
            return self.description
        return self.description[:-1] + GREEDY_NOTE + ")"

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
        (texts,) = self.sample_many([(scenario, messages, instruction, n, rng)], temperature)
        return texts

    def sample_many(self, requests: list[Request], temperature: float) -> list[list[str]]:
        """The answers to many chunks in one ``LLM.generate`` call, in the order of ``requests``.

        Each request draws its seed from its own RNG exactly as :meth:`sample` does, so a chunk's answers
        are the same whether it is generated alone or with others (and on a resumed run)."""
        greedy = is_greedy(temperature)
        if greedy and not self._said_greedy:
            print(
                f"[teacher] temperature {temperature} is greedy decoding: vLLM generates one answer per "
                "prompt (it refuses n > 1 when greedy) and that answer is repeated for every sample",
                flush=True,
            )
            self._said_greedy = True
        prompts, params = [], []
        for _scenario, messages, _instruction, n, rng in requests:
            seed = int(rng.integers(2**31))
            params.append(self._vllm.SamplingParams(**sampling_kwargs(self.cfg, temperature, n, seed)))
            # Token ids, not text: vLLM would add a second BOS to a template that already starts with one.
            ids = self.tokenizer(self.render(messages), add_special_tokens=False).input_ids
            prompts.append({"prompt_token_ids": ids})
        replies = self.llm.generate(prompts, params, use_tqdm=False)
        answers = []
        for (_, _, _, n, _), reply in zip(requests, replies, strict=True):
            texts = [out.text for out in reply.outputs]
            answers.append(texts[:1] * n if greedy else texts)
        return answers
