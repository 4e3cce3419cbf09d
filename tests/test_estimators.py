"""The scored estimators and sampling agree, within sampling error, on the same model; an estimator with
nothing to count says so."""

from __future__ import annotations

import math
import re

import pytest

from stratdistill.decision import (
    DEFAULT_OPENING_2X2,
    DEFAULT_OPENING_PUBLIC_GOODS,
    decision_point,
    score_decision,
)
from stratdistill.evaluate import _digit_token_ids, forms_behaviour, sample_answers, sampled_behaviour
from stratdistill.prompts import messages_for, render_chat
from stratdistill.scenarios import grid, load_library

LIB = load_library()
FORM = re.compile(r"^(?:I would choose strategy )?([CD])(?![A-Za-z])")


def test_sampled_answers_match_forms_probabilities(student_model) -> None:
    model, tok = student_model
    (sc,) = grid(LIB, ["biz"], ["prison"], "x")
    exact = forms_behaviour(model, tok, sc, LIB, "action_only", _digit_token_ids(tok))
    fams = exact["form_families"]
    assert set(fams) == {"letter", "phrase"}
    assert fams["letter"]["valid_mass"] + fams["phrase"]["valid_mass"] == pytest.approx(exact["valid_mass"])
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


def test_forced_choice_matches_sampling_after_the_opening_at_the_papers_decoding(student_model) -> None:
    """Sampled with temperature 0.8 and repetition penalty 1.1 after the opening, the student's first
    option has the share of C that the forced-choice estimate gives for those settings."""
    model, tok = student_model
    (sc,) = grid(LIB, ["team"], ["prison"], "x")
    prompt = render_chat(messages_for(sc, "action_only", LIB), tok)
    point = decision_point(sc, DEFAULT_OPENING_2X2, DEFAULT_OPENING_PUBLIC_GOODS)
    fc = score_decision(model, tok, prompt, point, 0.8, 1.1)
    n = 400
    texts = sample_answers(
        model,
        tok,
        prompt + point.opening,
        n,
        temperature=0.8,
        max_new_tokens=2,
        repetition_penalty=1.1,
        seed=1,
    )
    first = [m.group(1) for t in texts if (m := re.match(r"^\s*([CD])(?![A-Za-z0-9])", t))]
    assert (
        abs(len(first) / n - fc["valid_mass"])
        < 4 * math.sqrt(fc["valid_mass"] * (1 - fc["valid_mass"]) / n) + 0.01
    )
    p = fc["p"]["C"]
    assert abs(first.count("C") / len(first) - p) < 4 * math.sqrt(p * (1 - p) / len(first))


def test_sampled_estimate_with_no_parsed_answer_is_undefined(student_model, monkeypatch) -> None:
    """A student that never answers C or D has no P(C): None (n/a in the report), not 0 or a crash."""
    from omegaconf import OmegaConf

    import stratdistill.evaluate as evaluate

    model, tok = student_model
    monkeypatch.setattr(evaluate, "sample_answers", lambda *a, **k: ["I cannot decide."] * 5)
    (sc,) = grid(LIB, ["IR"], ["prison"], "x")
    cfg = OmegaConf.create({"samples": 5, "temperature": 0.8, "max_new_tokens": 4, "repetition_penalty": 1.1})
    row = sampled_behaviour(model, tok, sc, LIB, "action_only", cfg, seed=0)
    assert row["p_c"] is None and row["c"] is None and row["n_ok"] == 0 and row["valid_mass"] == 0
