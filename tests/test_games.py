"""Payoff tables and the facts derived from them, for every game the paper uses."""

from __future__ import annotations

import pytest

from stratdistill.errors import ConfigError
from stratdistill.scenarios import PublicGoodsGame, TwoByTwoGame, load_library
from stratdistill.scenarios.games import game_from_dict

LIB = load_library()

# key: (R, S, T, P, class, ordering, pure Nash, Pareto-efficient, dominant strategy) — from the paper.
PAPER = {
    "prison": (5, 2, 10, 3, "prisoners_dilemma", "T>R>P>S", ["DD"], ["CC", "CD", "DC"], "D"),
    "snowdrift": (5, 3, 10, 2, "chicken", "T>R>S>P", ["CD", "DC"], ["CC", "CD", "DC"], None),
    "staghunt": (10, 2, 5, 3, "stag_hunt", "R>T>P>S", ["CC", "DD"], ["CC"], None),
    "delight": (10, 3, 5, 2, "harmony", "R>T>S>P", ["CC"], ["CC"], "C"),
}


@pytest.mark.parametrize("key", sorted(PAPER))
def test_paper_games_payoffs_and_facts(key: str) -> None:
    r, s, t, p, cls, order, nash, pareto, dominant = PAPER[key]
    game = LIB.games[key]
    assert isinstance(game, TwoByTwoGame)
    assert (r, s, t, p) == (game.R, game.S, game.T, game.P)
    facts = game.facts()
    assert facts["class"] == cls
    assert facts["ordering"] == order
    assert facts["pure_nash"] == nash
    assert facts["pareto_efficient"] == pareto
    assert facts["dominant_strategy"] == dominant


@pytest.mark.parametrize("key", sorted(PAPER))
def test_doubled_variants_double_every_payoff_and_keep_the_class(key: str) -> None:
    game, doubled = LIB.games[key], LIB.games[f"{key}_d"]
    assert doubled.payoffs == {k: 2 * v for k, v in game.payoffs.items()}
    assert doubled.facts() == game.facts()


def test_donation_game_is_the_papers() -> None:
    game = LIB.games["donation"]
    assert isinstance(game, PublicGoodsGame)
    assert (game.players, game.endowment, game.multiplier) == (4, 10, 2.5)
    assert game.player_name == "Alex" and game.others == ("Taylor", "Jordan", "Casey")
    facts = game.facts()
    assert facts["mpcr"] == 0.625
    assert facts["nash_donation"] == 0 and facts["efficient_donation"] == 10
    # everyone donating everything beats everyone keeping everything: 25 vs 10
    assert game.payoff(10, 30) == 25 and game.payoff(0, 0) == 10


def test_a_game_with_ties_gets_class_other() -> None:
    game = game_from_dict({"key": "flat", "kind": "2x2", "payoffs": {"R": 3, "S": 3, "T": 3, "P": 1}}, "x")
    assert game.game_class == "other"
    assert game.ordering == "R=S=T>P"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"key": "g", "payoffs": {"R": 1, "S": 2, "T": 3}}, "x.payoffs"),
        ({"key": "g", "payoffs": {"R": 1, "S": 2, "T": 3, "P": "lots"}}, "x.payoffs.P"),
        ({"key": "g", "payoffs": [1, 2, 3, 4]}, "x.payoffs"),
        ({"key": "g", "payoffs": {"R": 1, "S": 2, "T": 3, "P": 4}, "colour": "red"}, "x"),
        ({"key": "g", "kind": "3x3"}, "x.kind"),
        ({"key": "bad key", "payoffs": {"R": 1, "S": 2, "T": 3, "P": 4}}, "x.key"),
        ({"key": "pg", "kind": "public_goods", "players": 1, "endowment": 10, "multiplier": 2}, "x.players"),
        (
            {"key": "pg", "kind": "public_goods", "players": 4, "endowment": 10, "multiplier": 5},
            "x.multiplier",
        ),
        (
            {"key": "pg", "kind": "public_goods", "players": 4, "endowment": 10, "multiplier": 0.5},
            "x.multiplier",
        ),
        ({"key": "pg", "kind": "public_goods", "players": 4, "endowment": 0, "multiplier": 2}, "x.endowment"),
    ],
)
def test_malformed_games_fail_with_the_key_named(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        game_from_dict(data, "x")
    assert str(info.value).startswith(f"{key}=")
    assert "\n" not in str(info.value)
