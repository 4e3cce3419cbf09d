"""A teacher behind any OpenAI-compatible chat server: vLLM's server, TGI, llama.cpp, Ollama, a hosted API.

The server applies the model's chat template, so what we store as a row's ``prompt`` is the messages
as the server received them (see :meth:`OpenAITeacher.render`).

Why the official ``openai`` client: it already retries 429, 5xx, timeouts and dropped connections with
exponential backoff and jitter (``max_retries``), and reads ``Retry-After``. What we add:

* a check before the run (:meth:`OpenAITeacher.preflight`) that turns an unreachable server, a 401 and a
  model the server does not serve into one line naming the setting to fix;
* ``n`` samples per request, and a fallback for servers that answer ``n > 1`` with fewer choices
  (llama.cpp returns one): the shortfall is asked for one sample per request;
* bounded concurrency: at most ``teacher.concurrency`` requests in flight;
* seeds that never repeat within a chunk: vLLM gives the j-th sample of a request the seed ``seed + j``,
  so each request's seed is the chunk's base seed (from the chunk's RNG, for the same answers on a rerun)
  plus the number of samples the chunk asked for before it;
* every sampling option the paper fixes is sent, never left to the server: a server fills an omitted
  one with its own default, and vLLM's (``--generation-config auto``) are the model's
  ``generation_config.json`` (e.g. top_p 0.8, top_k 20 for Qwen2.5). ``top_p``, ``presence_penalty``
  and ``frequency_penalty`` are OpenAI API options; vLLM's own (``top_k``, ``min_p``,
  ``repetition_penalty``) go in ``teacher.extra_body`` (the ``*_server`` configs set them);
* greedy decoding (temperature 0) asks for one sample and repeats it: vLLM refuses ``n > 1`` when greedy.

The temperature is an argument of every call, so one client (with what it learnt about ``n``) serves
every point of a temperature sweep.

The API key is read from the environment variable named by ``teacher.api_key_env``; no config value
holds it, so it is never in a config dump, a log line or an artifact.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import accumulate
from typing import Any

import numpy as np

from stratdistill.errors import ConfigError, TeacherStopped
from stratdistill.prompts import render_plain
from stratdistill.scenarios import Scenario
from stratdistill.teachers.base import Teacher
from stratdistill.teachers.vllm_engine import GREEDY_NOTE, is_greedy

# A local server needs no key, but the client insists on one.
NO_KEY = "no-key"
# Sampling options of the OpenAI API at their "off" values: pure sampling, as in the paper.
PURE_SAMPLING = {"top_p": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0}


def request_seeds(base: int, sizes: list[int], issued: int = 0) -> list[int]:
    """One seed per request such that the requests' samples (seeds ``seed + j``, j < size) never share a
    seed: each request starts where the samples asked for before it (``issued`` of them) end."""
    return [base + start for start in list(accumulate(sizes, initial=issued))[:-1]]


class OpenAITeacher(Teacher):
    backend = "openai"

    def __init__(self, cfg: Any) -> None:
        import openai

        self.name = cfg.name
        self.model = cfg.model_id
        self.revision = cfg.revision
        self.base_url = cfg.base_url
        self.max_new_tokens = cfg.max_new_tokens
        self.concurrency = cfg.concurrency
        self.n_per_request = cfg.n_per_request
        self.key_env = cfg.api_key_env
        self.extra_body = dict(cfg.extra_body or {})
        self.n_supported: bool | None = None  # learnt from the first answer to an n > 1 request
        self.client = openai.OpenAI(
            base_url=cfg.base_url,
            api_key=os.environ.get(cfg.api_key_env) or NO_KEY,
            max_retries=cfg.max_retries,
            timeout=cfg.request_timeout,
        )

    @property
    def description(self) -> str:
        return (
            f"the language model {self.model} served at {self.base_url} (OpenAI-compatible API, at most "
            f"{self.max_new_tokens} new tokens, extra sampling options {self.extra_body or 'none'})"
        )

    def describe(self, temperature: float) -> str:
        if not is_greedy(temperature):
            return self.description
        return self.description[:-1] + GREEDY_NOTE + ")"

    def preflight(self) -> None:
        """Fail before the run, in one line, if the server is down, refuses the key or lacks the model."""
        import openai

        try:
            served = [m.id for m in self.client.models.list()]
        except openai.AuthenticationError as exc:
            raise ConfigError(
                self.key_env,
                "(hidden)",
                f"an API key that {self.base_url} accepts, in the environment variable {self.key_env} "
                f"(the server answered {exc.status_code})",
            ) from None
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise ConfigError(
                "teacher.base_url",
                self.base_url,
                f"a reachable OpenAI-compatible server ({exc.__class__.__name__}: {exc})",
            ) from None
        except openai.APIStatusError as exc:
            raise ConfigError(
                "teacher.base_url",
                self.base_url,
                f"an OpenAI-compatible API root that lists its models at /models (HTTP {exc.status_code})",
            ) from None
        if served and self.model not in served:
            raise ConfigError("teacher.model_id", self.model, f"a model the server serves: {served}")

    def render(self, messages: list[dict[str, str]]) -> str:
        """The messages as sent (the server renders them with its own chat template)."""
        return render_plain(messages, brackets="<>")

    def _request(self, messages: list[dict[str, str]], n: int, seed: int, temperature: float) -> list[str]:
        import openai

        try:
            reply = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                n=n,
                temperature=temperature,
                **PURE_SAMPLING,
                max_tokens=self.max_new_tokens,
                seed=seed,
                extra_body=self.extra_body or None,
            )
        except openai.OpenAIError as exc:
            raise TeacherStopped(f"{self.base_url} ({self.model}): {exc.__class__.__name__}: {exc}") from exc
        return [c.message.content or "" for c in reply.choices]

    def _batch(
        self, messages: list[dict[str, str]], sizes: list[int], seeds: list[int], temperature: float
    ) -> list[str]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            replies = pool.map(
                lambda a: self._request(messages, *a, temperature), zip(sizes, seeds, strict=True)
            )
            return [text for reply in replies for text in reply]

    def sample(
        self,
        scenario: Scenario,
        messages: list[dict[str, str]],
        instruction: str,
        n: int,
        rng: np.random.Generator,
        temperature: float,
    ) -> list[str]:
        seed = int(rng.integers(2**31))  # this chunk's samples get the seeds seed, seed + 1, ...
        if is_greedy(temperature):
            # Greedy: every sample is the same answer, and vLLM refuses n > 1 when greedy.
            return self._batch(messages, [1], [seed], temperature)[:1] * n
        issued = 0  # samples asked for so far (whether or not the server returned them all)
        texts: list[str] = []
        if self.n_supported is None and n > 1 and self.n_per_request > 1:
            asked = min(n, self.n_per_request)
            texts = self._batch(messages, [asked], [seed], temperature)
            issued = asked
            self.n_supported = len(texts) >= asked
        while len(texts) < n:
            left = n - len(texts)
            per = self.n_per_request if self.n_supported else 1
            sizes = [min(per, left - i) for i in range(0, left, per)]
            texts += self._batch(messages, sizes, request_seeds(seed, sizes, issued), temperature)
            issued += sum(sizes)
        return texts[:n]
