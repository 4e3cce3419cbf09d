"""Tests for the stand-in teacher's reasoning texts (stratdistill.teachers.motivations)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from stratdistill.teachers.motivations import (
    compose_donation_motivation,
    compose_motivation,
    format_number,
)

PRISON = {"R": 5, "S": 2, "T": 10, "P": 3}  # T>R>P>S
SNOWDRIFT = {"R": 5, "S": 3, "T": 10, "P": 2}  # T>R>S>P
STAGHUNT = {"R": 10, "S": 2, "T": 5, "P": 3}  # R>T>P>S
DELIGHT = {"R": 10, "S": 3, "T": 5, "P": 2}  # R>T>S>P, C dominant
PAPER = {"prison": PRISON, "snowdrift": SNOWDRIFT, "staghunt": STAGHUNT, "delight": DELIGHT}
DOUBLED = {f"{k}2": {p: 2.0 * v for p, v in g.items()} for k, g in PAPER.items()}  # floats on purpose
TIE_TR = {"R": 6, "S": 1, "T": 6, "P": 2}  # T == R: no temptation
ODD = {"R": 2.5, "S": -1, "T": 4, "P": 0}  # decimals and a negative payoff
DEF_BETTER = {"R": 2, "S": 0, "T": 3, "P": 4}  # P > R: mutual defection beats mutual cooperation
ALL_GAMES = {**PAPER, **DOUBLED, "tie_tr": TIE_TR, "odd": ODD, "def_better": DEF_BETTER}

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
N_DRAWS = 200


def texts(action, payoffs, n=N_DRAWS, **kw):
    return [compose_motivation(action, payoffs, np.random.default_rng(seed), **kw) for seed in range(n)]


def body(text: str) -> str:
    _head, sep, rest = text.partition("\n\n")
    assert sep, "the decision line must be followed by a blank line"
    return rest


def donation(amount, seed, **kw):
    args = {"endowment": 10, "players": 4, "multiplier": 2.5, "others": ["Taylor", "Jordan", "Casey"]}
    args.update(kw)
    return compose_donation_motivation(amount, rng=np.random.default_rng(seed), **args)


# ---------------------------------------------------------------------------------------------- format
@pytest.mark.parametrize("game", sorted(ALL_GAMES))
@pytest.mark.parametrize("action", ["C", "D"])
def test_first_line_and_blank_line(game, action):
    for t in texts(action, ALL_GAMES[game], n=30):
        lines = t.split("\n")
        assert lines[0] == f"I would choose strategy {action}."
        assert lines[1] == ""
        assert body(t).strip()
        assert "\n\n\n" not in t


def test_format_number():
    assert format_number(10.0) == "10"
    assert format_number(2.5) == "2.5"
    assert format_number(0.625) == "0.625"
    assert format_number(-3.0) == "-3"
    assert format_number(1234567.5) == "1234567.5"


# --------------------------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("game", sorted(ALL_GAMES))
@pytest.mark.parametrize("action", ["C", "D"])
def test_every_quoted_number_is_a_payoff(game, action):
    """Only R, S, T and P are ever quoted for a 2x2 game (no differences or sums), in the 10-not-10.0 form."""
    pay = ALL_GAMES[game]
    allowed = {format_number(v) for v in pay.values()}
    seen = set()
    for t in texts(action, pay, stake="economic gains", coplayer="the other firm"):
        nums = NUMBER.findall(body(t))
        assert set(nums) <= allowed, (nums, allowed, t)
        for n in re.findall(r"(-?\d+(?:\.\d+)?) points?\b", t):
            assert n in allowed
        assert ".0 " not in t and ".0," not in t
        seen |= set(nums)
    # The reasoning is grounded: at least some answers quote numbers, unless only caution applies.
    if not (game.startswith("delight") and action == "D"):
        assert seen


def test_doubled_game_prints_integers_without_decimal_point():
    ts = texts("D", DOUBLED["prison2"])
    assert any("20 points" in t for t in ts)
    assert not any("20.0" in t or "4.0" in t for t in ts)


def test_decimal_payoff_kept_as_is():
    assert any("2.5 points" in t for t in texts("C", ODD))


# ----------------------------------------------------------------------------------------- consistency
def _has(ts, *words):
    return [t for t in ts if any(w in t.lower() for w in words)]


@pytest.mark.parametrize("game", ["staghunt", "delight", "staghunt2", "delight2", "tie_tr"])
@pytest.mark.parametrize("action", ["C", "D"])
def test_no_temptation_when_t_not_above_r(game, action):
    pay = ALL_GAMES[game]
    assert pay["T"] <= pay["R"]
    assert not _has(texts(action, pay), "tempt")


@pytest.mark.parametrize("action", ["C", "D"])
def test_temptation_is_mentioned_when_it_exists(action):
    # Guards the keyword used above: the temptation wording does exist and is used when T > R.
    assert _has(texts(action, PRISON), "tempt")


@pytest.mark.parametrize("game", sorted(ALL_GAMES))
def test_protection_claims_match_payoffs(game):
    pay = ALL_GAMES[game]
    c_protects = _has(texts("C", pay), "protect", "safe")
    d_protects = _has(texts("D", pay), "protect", "safe")
    if pay["S"] <= pay["P"]:
        assert not c_protects
    else:
        assert c_protects
    if pay["P"] <= pay["S"]:
        assert not d_protects
    else:
        assert d_protects


def test_defection_when_cooperation_dominates_makes_no_payoff_claim():
    """In delight C is dominant: a D answer may only give caution / uncertainty reasons."""
    for t in texts("D", DELIGHT, stake="profit for my firm"):
        b = body(t).lower()
        assert not NUMBER.search(b), t
        for w in ("better", "more than", "higher", "larger", "dominant", "pays", "protect", "safe", "tempt"):
            assert w not in b, (w, t)


def test_cooperation_in_prisoners_dilemma_never_claims_dominance_or_safety():
    for t in texts("C", PRISON):
        b = body(t).lower()
        assert "dominant" not in b and "protect" not in b and "safe" not in b


@pytest.mark.parametrize(
    ("pay", "c_may_praise_mutual"), [(PRISON, True), (STAGHUNT, True), (DEF_BETTER, False)]
)
def test_mutual_cooperation_claim_only_when_r_above_p(pay, c_may_praise_mutual):
    phrases = ("mutual defection", "both defect", "both choose d", "both playing d", "two defectors")
    found = _has(texts("C", pay), *phrases)
    assert bool(found) == c_may_praise_mutual
    if not c_may_praise_mutual:
        # ... while a D answer in that game does point out that mutual defection pays more.
        assert _has(texts("D", pay), "mutual defection pays", "both choose d")


# ---------------------------------------------------------------------------------- variety and length
@pytest.mark.parametrize("game", sorted(PAPER))
@pytest.mark.parametrize("action", ["C", "D"])
def test_variety_and_length(game, action):
    ts = texts(action, PAPER[game])
    assert len(set(ts)) >= 50
    words = [len(t.split()) for t in ts]
    assert all(40 <= w <= 110 for w in words), (min(words), max(words))


def test_variety_in_first_reasoning_sentence():
    # Not just the ordering of a fixed set of sentences: the wording itself varies.
    firsts = {body(t).split(".")[0] for t in texts("C", PRISON)}
    assert len(firsts) >= 10


def test_deterministic_given_rng_state():
    for action, pay in (("C", PRISON), ("D", STAGHUNT)):
        a = compose_motivation(action, pay, np.random.default_rng(123), stake="economic gains")
        b = compose_motivation(action, pay, np.random.default_rng(123), stake="economic gains")
        assert a == b
    rng = np.random.default_rng(7)
    first = [compose_motivation("C", PRISON, rng) for _ in range(5)]
    rng = np.random.default_rng(7)
    assert [compose_motivation("C", PRISON, rng) for _ in range(5)] == first


def test_stake_and_coplayer_are_woven_in():
    ts = texts("C", SNOWDRIFT, stake="promotion opportunities", coplayer="the other candidate")
    assert _has(ts, "promotion opportunities")
    assert _has(ts, "the other candidate")
    assert not _has(texts("C", SNOWDRIFT), "promotion opportunities")


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        compose_motivation("X", PRISON, np.random.default_rng(0))
    with pytest.raises(ValueError):
        compose_motivation("C", {"R": 1, "S": 2, "T": 3}, np.random.default_rng(0))


# -------------------------------------------------------------------------------------------- donation
# Numbers a donation answer may quote, for endowment 10, 4 players, multiplier 2.5: the amount, the
# endowment, what is kept (10 - amount), the multiplier, the player count, the per-dollar return to me
# (2.5 / 4 = 0.625), the group's gain per dollar (2.5 - 1 = 1.5), everyone's outcome if all give 10
# (10 * 2.5 = 25) and everyone's outcome if all match the amount (10 + amount * 1.5).
def _donation_allowed(amount):
    return {float(x) for x in (amount, 10, 10 - amount, 2.5, 4, 0.625, 1.5, 25, 10 + amount * 1.5)}


@pytest.mark.parametrize("amount", [0, 3, 7, 10])
def test_donation_text(amount):
    ts = [donation(amount, seed) for seed in range(N_DRAWS)]
    assert len(set(ts)) >= 50
    allowed = _donation_allowed(amount)
    for t in ts:
        assert t.split("\n")[0] == f"I would donate ${amount}."
        assert t.split("\n")[1] == ""
        b = body(t)
        assert "2.5" in b, t  # the multiplier
        assert "0.625" in b, t  # what one donated dollar returns to me
        assert {float(n) for n in NUMBER.findall(b)} <= allowed, t
        assert 40 <= len(t.split()) <= 110
    assert _has(ts, "taylor, jordan and casey")


def test_donation_reasons_fit_the_amount():
    zero = [donation(0, s) for s in range(N_DRAWS)]
    full = [donation(10, s) for s in range(N_DRAWS)]
    assert not _has(zero, "set an example", "contribute fully", "middle path")
    assert not _has(full, "keeping my money", "dollar kept", "middle path")
    assert _has(full, "1.50")  # the group's gain per dollar, 2.5 - 1
    assert _has(full, "$25")  # everyone gives everything: 10 * 2.5 each


def test_donation_deterministic_and_validated():
    assert donation(7, 42) == donation(7, 42)
    with pytest.raises(ValueError):
        donation(11, 0)
    with pytest.raises(ValueError):
        donation(-1, 0)


def test_donation_other_numbers_are_formatted_cleanly():
    ts = [donation(4, s, multiplier=3.0, players=5, others=["Sam", "Lee", "Kim", "Ash"]) for s in range(50)]
    for t in ts:
        assert "3.0" not in t
        assert "$0.60" in t  # 3 / 5 per donated dollar
    assert _has(ts, "sam, lee, kim and ash")
