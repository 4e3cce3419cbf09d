"""The exact estimator and the sampled one agree, within sampling error, on the same model."""

from __future__ import annotations

import math
import re

from stratdistill.evaluate import _digit_token_ids, exact_behaviour, sample_answers
from stratdistill.prompts import messages_for, render_chat
from stratdistill.scenarios import grid, load_library

LIB = load_library()
FORM = re.compile(r"^(?:I would choose strategy )?([CD])(?![A-Za-z])")


def test_sampled_answers_match_exact_probabilities(student_model) -> None:
    model, tok = student_model
    (sc,) = grid(LIB, ["biz"], ["prison"], "x")
    exact = exact_behaviour(model, tok, sc, LIB, "action_only", _digit_token_ids(tok))
    prompt = render_chat(messages_for(sc, "action_only", LIB), tok)
    n = 800
    # temperature 1, no repetition penalty, no truncation: the model's own distribution, as exact reads it
    texts = sample_answers(
        model, tok, prompt, n, temperature=1.0, max_new_tokens=7, repetition_penalty=1.0, seed=0, chunk=100
    )
    hits = [m.group(1) for t in texts if (m := FORM.match(t))]
    share_valid = len(hits) / n
    se_valid = math.sqrt(exact["valid_mass"] * (1 - exact["valid_mass"]) / n)
    assert abs(share_valid - exact["valid_mass"]) < 4 * se_valid, (share_valid, exact["valid_mass"])
    p_c = hits.count("C") / len(hits)
    se_c = math.sqrt(exact["p_c"] * (1 - exact["p_c"]) / len(hits))
    assert abs(p_c - exact["p_c"]) < 4 * se_c + 0.02, (p_c, exact["p_c"])


def test_sampling_is_seeded_and_shares_the_prompt_prefill(student_model) -> None:
    model, tok = student_model
    (sc,) = grid(LIB, ["team"], ["staghunt"], "x")
    prompt = render_chat(messages_for(sc, "action_only", LIB), tok)
    kw = {"temperature": 0.8, "max_new_tokens": 5, "repetition_penalty": 1.1, "chunk": 3}
    a = sample_answers(model, tok, prompt, 7, seed=5, **kw)
    assert len(a) == 7 and a == sample_answers(model, tok, prompt, 7, seed=5, **kw)
    assert a != sample_answers(model, tok, prompt, 7, seed=6, **kw)


def test_preallocated_cache_samples_what_the_growing_cache_samples(student_model, monkeypatch) -> None:
    """The in-place StaticCache is a speed choice only: same seed, same answers as DynamicCache copies."""
    import transformers

    model, tok = student_model
    (sc,) = grid(LIB, ["IR"], ["prison"], "x")
    prompt = render_chat(messages_for(sc, "action_motivation", LIB), tok)
    kw = {"temperature": 0.8, "max_new_tokens": 12, "repetition_penalty": 1.1, "chunk": 4, "seed": 3}
    static = sample_answers(model, tok, prompt, 6, **kw)

    calls = []

    def no_static(*args, **kwargs):
        calls.append(1)
        raise TypeError("StaticCache unavailable")

    monkeypatch.setattr(transformers, "StaticCache", no_static)
    dynamic = sample_answers(model, tok, prompt, 6, **kw)
    assert calls and static == dynamic
