"""The forced-choice decision point: token paths, exact scoring against a brute-force computation, the
valid mass of the default student, and the one-line errors for bad openings."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import RepetitionPenaltyLogitsProcessor

from conftest import compose_cfg
from stratdistill.config import validate
from stratdistill.decision import (
    DEFAULT_OPENING_2X2,
    DEFAULT_OPENING_PUBLIC_GOODS,
    DecisionPoint,
    check_opening,
    decision_point,
    option_paths,
    score_decision,
)
from stratdistill.errors import ConfigError
from stratdistill.evaluate import forced_choice_behaviour
from stratdistill.prompts import messages_for, render_chat
from stratdistill.scenarios import grid, load_library

LIB = load_library()


def _scenario(ctx: str, game: str):
    return grid(LIB, [ctx] if ctx else [], [game], "x")[0]


def _brute_force(
    model, tok, context: str, point: DecisionPoint, temperature: float, penalty: float, only=None
):
    """Each option's probability by one full forward pass per token path and step: no cache, no batch."""
    from stratdistill.decision import continuation_ids

    stop = list(continuation_ids(tok, point.numeric))
    ctx = tok(context, add_special_tokens=False).input_ids
    mass = {}
    for outcome, text in point.options.items():
        if only is not None and outcome not in only:
            continue
        for path in option_paths(tok, context, text):
            total = 0.0
            for j in range(len(path) + 1):
                ids = torch.tensor([ctx + path[:j]])
                with torch.no_grad():
                    logits = model(input_ids=ids).logits[:, -1].float()
                if penalty != 1.0:
                    logits = RepetitionPenaltyLogitsProcessor(penalty)(ids, logits)
                logp = torch.log_softmax(logits / temperature, dim=-1)[0]
                if j < len(path):
                    total += float(logp[path[j]])
                else:
                    total += math.log1p(-float(torch.exp(logp[stop]).sum()))
            mass[outcome] = mass.get(outcome, 0.0) + math.exp(total)
    return mass


def test_option_paths_cover_the_split_space(student_tokenizer) -> None:
    tok = student_tokenizer
    paths = option_paths(tok, "I would choose option", " C")
    assert paths[0] == tok(" C", add_special_tokens=False).input_ids
    assert [
        *tok(" ", add_special_tokens=False).input_ids,
        *tok("C", add_special_tokens=False).input_ids,
    ] in paths
    # a two-digit amount is scored token by token
    ten = option_paths(tok, "I would donate $", "10")
    assert ten == [tok("10", add_special_tokens=False).input_ids] and len(ten[0]) == 2


@pytest.mark.parametrize(("temperature", "penalty"), [(1.0, 1.0), (0.8, 1.1)])
def test_scores_equal_a_brute_force_computation(student_model, temperature: float, penalty: float) -> None:
    """The cached, batched route gives every option the probability that step-by-step forward passes
    give, temperature and repetition penalty applied as generate does."""
    model, tok = student_model
    sc = _scenario("biz", "staghunt")
    prompt = render_chat(messages_for(sc, "action_only", LIB), tok)
    point = decision_point(sc, DEFAULT_OPENING_2X2, DEFAULT_OPENING_PUBLIC_GOODS)
    got = score_decision(model, tok, prompt, point, temperature, penalty)
    want = _brute_force(model, tok, prompt + point.opening, point, temperature, penalty)
    for outcome in ("C", "D"):
        assert got["mass"][outcome] == pytest.approx(want[outcome], rel=1e-4)
    assert got["valid_mass"] == pytest.approx(sum(want.values()), rel=1e-4)


def test_donation_amounts_end_where_the_number_ends(student_model) -> None:
    """P($1) excludes "$10": the amounts' probabilities are disjoint events (they sum to at most 1),
    and each equals the brute-force figure."""
    model, tok = student_model
    sc = _scenario("", "donation")
    prompt = render_chat(messages_for(sc, "action_only", LIB), tok)
    point = decision_point(sc, DEFAULT_OPENING_2X2, DEFAULT_OPENING_PUBLIC_GOODS)
    got = score_decision(model, tok, prompt, point, 1.0, 1.0)
    assert 0 < got["valid_mass"] <= 1 + 1e-6
    want = _brute_force(model, tok, prompt + point.opening, point, 1.0, 1.0, only=("1", "10"))
    for k in ("1", "10"):
        assert got["mass"][k] == pytest.approx(want[k], rel=1e-4)


@pytest.mark.parametrize("key", ["environment_prison", "sports_staghunt"])
def test_default_opening_holds_the_base_students_choice(student_model, key: str) -> None:
    """The issue's floor: the options hold >= 0.95 of the base student's probability at the default
    opening and temperature (the old forms held 0.07-0.09)."""
    model, tok = student_model
    ctx, game = key.split("_", 1)
    row = forced_choice_behaviour(model, tok, _scenario(ctx, game), LIB, "action_only", compose_cfg().eval)
    assert row["valid_mass"] >= 0.95, row["valid_mass"]
    assert row["raw_valid_mass"] <= row["valid_mass"] + 1e-9  # temperature 0.8 sharpens toward the options
    assert 0 < row["p_c"] < 1 and row["opening"] == DEFAULT_OPENING_2X2


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("eval.opening_2x2='I would choose '", "without trailing whitespace"),
        ("eval.temperature=0", "eval.temperature=0"),
        ("eval.method=exact", "one of ['forced_choice', 'forms', 'sampled']"),
        ("train.decision_weight=-1", "train.decision_weight=-1"),
    ],
)
def test_bad_evaluation_settings_stop_with_one_line(override: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg([override]))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_empty_opening_is_refused() -> None:
    with pytest.raises(ConfigError, match="non-empty"):
        check_opening("eval.opening_2x2", "  ")
