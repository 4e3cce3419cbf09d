"""teacher.backend=openai: what each request to the server carries (seeds, sampling options, n).

A stand-in for the ``openai`` client records every chat request and answers as vLLM's server does: the
j-th choice of a request is sampled with the seed ``seed + j``. (tests/test_openai_teacher.py runs the
same teacher against a real llama.cpp server.)
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import compose_cfg
from stratdistill.dataset import sample_teacher
from stratdistill.scenarios import grid, load_library
from stratdistill.teachers.openai_server import OpenAITeacher

LIB = load_library()


class _FakeClient:
    """``openai.OpenAI`` as far as the teacher uses it; ``choices`` caps the choices per answer (llama.cpp
    returns one), and greedy requests with n > 1 are refused as vLLM refuses them."""

    def __init__(self, choices: int | None = None, **_: object) -> None:
        self.requests: list[dict] = []
        self.max_choices = choices
        self.lock = threading.Lock()
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    def _create(self, **request) -> SimpleNamespace:
        with self.lock:
            self.requests.append(request)
        if request["temperature"] == 0 and request["n"] > 1:
            raise ValueError(f"n must be 1 when using greedy sampling, got {request['n']}.")
        n = min(request["n"], self.max_choices or request["n"])
        seeds = [request["seed"] + j for j in range(n)]
        text = "I would choose strategy {}. (seed {})"
        return SimpleNamespace(
            choices=[
                SimpleNamespace(message=SimpleNamespace(content=text.format("CD"[s % 2], s))) for s in seeds
            ]
        )


def _teacher(monkeypatch, config: str, choices: int | None = None, **overrides):
    import openai

    client = _FakeClient(choices)
    monkeypatch.setattr(openai, "OpenAI", lambda **kwargs: client)
    extra = ["teacher.model_id=m", "teacher.base_url=http://127.0.0.1:8000/v1"] if config == "openai" else []
    cfg = compose_cfg([f"teacher={config}", *extra, *[f"teacher.{k}={v}" for k, v in overrides.items()]])
    return OpenAITeacher(cfg.teacher), client


def _sampled_seeds(client: _FakeClient) -> list[int]:
    """Every seed a vLLM server samples with: seed + j for each of a request's n choices."""
    return [r["seed"] + j for r in client.requests for j in range(r["n"])]


@pytest.mark.parametrize("choices", [None, 1], ids=["server-honours-n", "one-choice-server"])
def test_no_two_samples_of_a_generation_share_a_seed(monkeypatch, tmp_path, choices) -> None:
    teacher, client = _teacher(monkeypatch, "openai", choices=choices, n_per_request=16)
    scenarios = grid(LIB, ["biz", "IR"], ["prison"], "x")
    rows = sample_teacher(teacher, scenarios, LIB, "action_motivation", 100, 0, 0.8, "train", tmp_path / "c")
    assert len(rows) == 200
    seeds = _sampled_seeds(client)
    assert len(seeds) == len(set(seeds))  # 4 chunks x several requests, not one seed twice
    assert len({r["raw"] for r in rows}) == 200  # so no answer is another's copy


def test_requests_carry_every_sampling_option_the_server_would_otherwise_fill(monkeypatch) -> None:
    teacher, client = _teacher(monkeypatch, "llama3_70b_instruct_server")
    teacher.sample(
        None, [{"role": "user", "content": "C or D?"}], "action_only", 3, np.random.default_rng(0), 0.8
    )
    (request,) = client.requests
    assert request["temperature"] == 0.8 and request["top_p"] == 1.0
    assert request["presence_penalty"] == 0.0 and request["frequency_penalty"] == 0.0
    # vLLM's own options: omitted, they would come from the model's generation_config.json
    assert request["extra_body"] == {"repetition_penalty": 1.1, "top_k": -1, "min_p": 0.0}
    # a hosted API gets only OpenAI API options (it refuses unknown ones)
    hosted, client = _teacher(monkeypatch, "openai")
    hosted.sample(
        None, [{"role": "user", "content": "C or D?"}], "action_only", 3, np.random.default_rng(0), 0.8
    )
    assert client.requests[0]["extra_body"] is None and client.requests[0]["top_p"] == 1.0


def test_greedy_served_teacher_asks_one_answer_and_repeats_it(monkeypatch) -> None:
    teacher, client = _teacher(monkeypatch, "llama3_70b_instruct_server")
    texts = teacher.sample(
        None, [{"role": "user", "content": "C or D?"}], "action_only", 5, np.random.default_rng(0), 0.0
    )
    assert len(texts) == 5 and len(set(texts)) == 1
    assert [r["n"] for r in client.requests] == [1]
    assert "greedy" in teacher.describe(0.0) and "greedy" not in teacher.describe(0.8)
    # the same client samples at another temperature on the next call
    teacher.sample(
        None, [{"role": "user", "content": "C or D?"}], "action_only", 3, np.random.default_rng(0), 0.8
    )
    assert client.requests[-1]["temperature"] == 0.8 and client.requests[-1]["n"] == 3
