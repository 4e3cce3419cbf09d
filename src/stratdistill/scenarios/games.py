"""Games as payoff data, and the game-theoretic facts derived from them.

Two kinds of game are supported. A symmetric 2x2 game is four numbers for the row player
(R = both C, S = I play C and the coplayer D, T = I play D and the coplayer C, P = both D); the paper's
four dilemmas differ only in the ordering of these numbers. An n-player public goods game is a player
count, an endowment and a multiplier. Both are plain frozen dataclasses built from YAML files, so a
user adds a game by writing data, not code.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

from stratdistill.errors import ConfigError

ACTIONS: tuple[str, str] = ("C", "D")
PAYOFF_KEYS: tuple[str, ...] = ("R", "S", "T", "P")

# The four strict orderings that define the classic symmetric dilemmas (Rapoport's taxonomy).
_CLASS_BY_ORDERING = {
    "T>R>P>S": "prisoners_dilemma",
    "T>R>S>P": "chicken",
    "R>T>P>S": "stag_hunt",
    "R>T>S>P": "harmony",
}


def format_game_number(x: float) -> str:
    """A game's number (payoff, multiplier) as a person would write it: 10.0 as 10, 2.5 as 2.5.

    Payoffs are stored as floats but read by models in prompts, where "10.0 points" would be an odd,
    distracting way to write them.
    """
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class TwoByTwoGame:
    """A symmetric two-player game with actions C and D."""

    key: str
    name: str
    R: float
    S: float
    T: float
    P: float
    kind: Literal["2x2"] = "2x2"
    description: str | None = None  # optional custom payoff text; default is rendered from the numbers

    @property
    def payoffs(self) -> dict[str, float]:
        return {"R": self.R, "S": self.S, "T": self.T, "P": self.P}

    def payoff(self, mine: str, theirs: str) -> float:
        """Row player's payoff for the action pair (mine, theirs)."""
        return {("C", "C"): self.R, ("C", "D"): self.S, ("D", "C"): self.T, ("D", "D"): self.P}[
            (mine, theirs)
        ]

    def best_responses(self, theirs: str) -> tuple[str, ...]:
        best = max(self.payoff(a, theirs) for a in ACTIONS)
        return tuple(a for a in ACTIONS if self.payoff(a, theirs) == best)

    @property
    def pure_nash_equilibria(self) -> tuple[tuple[str, str], ...]:
        """Action pairs in which each player's action is a best response to the other's."""
        return tuple(
            (a, b)
            for a, b in itertools.product(ACTIONS, ACTIONS)
            if a in self.best_responses(b) and b in self.best_responses(a)
        )

    @property
    def dominant_strategy(self) -> str | None:
        """The action that is strictly better whatever the coplayer does, if one exists."""
        if self.T > self.R and self.P > self.S:
            return "D"
        if self.R > self.T and self.S > self.P:
            return "C"
        return None

    @property
    def pareto_efficient(self) -> tuple[tuple[str, str], ...]:
        """Outcomes that no other outcome improves for one player without hurting the other."""
        outcomes = {
            (a, b): (self.payoff(a, b), self.payoff(b, a)) for a, b in itertools.product(ACTIONS, ACTIONS)
        }

        def dominated(o: tuple[str, str]) -> bool:
            u = outcomes[o]
            return any(v[0] >= u[0] and v[1] >= u[1] and v != u for v in outcomes.values())

        return tuple(o for o in outcomes if not dominated(o))

    @property
    def ordering(self) -> str:
        """The payoff ordering, e.g. 'T>R>P>S' ('=' for ties)."""
        items = sorted(self.payoffs.items(), key=lambda kv: -kv[1])
        out = items[0][0]
        for (_, prev), (k, v) in itertools.pairwise(items):
            out += ("=" if v == prev else ">") + k
        return out

    @property
    def game_class(self) -> str:
        """The classic dilemma this ordering defines, or 'other' for any other ordering."""
        return _CLASS_BY_ORDERING.get(self.ordering, "other")

    def facts(self) -> dict[str, object]:
        return {
            "class": self.game_class,
            "ordering": self.ordering,
            "pure_nash": ["".join(e) for e in self.pure_nash_equilibria],
            "pareto_efficient": ["".join(e) for e in self.pareto_efficient],
            "dominant_strategy": self.dominant_strategy,
        }


@dataclass(frozen=True)
class PublicGoodsGame:
    """An n-player linear public goods game: keep what you do not donate, share multiplier x pool."""

    key: str
    name: str
    players: int
    endowment: int
    multiplier: float
    player_name: str = "Alex"
    others: tuple[str, ...] = field(default_factory=tuple)
    setting: str = "a shared fund"
    group: str = "fellow players"  # how the player refers to the others, e.g. 'dorm-mates'
    kind: Literal["public_goods"] = "public_goods"
    description: str | None = None

    @property
    def marginal_per_capita_return(self) -> float:
        """What one donated dollar returns to the donor: multiplier / players."""
        return self.multiplier / self.players

    def payoff(self, mine: int, others_total: int) -> float:
        return self.endowment - mine + self.multiplier * (mine + others_total) / self.players

    @property
    def is_social_dilemma(self) -> bool:
        """Donating is individually costly but collectively profitable iff 1 < multiplier < players."""
        return 1 < self.multiplier < self.players

    def facts(self) -> dict[str, object]:
        mpcr = self.marginal_per_capita_return
        return {
            "class": "public_goods_dilemma" if self.is_social_dilemma else "public_goods_other",
            "mpcr": round(mpcr, 6),
            "nash_donation": 0 if mpcr < 1 else self.endowment,
            "efficient_donation": self.endowment if self.multiplier > 1 else 0,
            "dominant_strategy": "donate 0"
            if mpcr < 1
            else (f"donate {self.endowment}" if mpcr > 1 else None),
        }


Game = TwoByTwoGame | PublicGoodsGame


def _number(where: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}.{name}", value, "a finite number")
    return float(value)


def game_from_dict(data: dict, where: str) -> Game:
    """Build a game from a YAML mapping, checking shape and types with a one-line error on failure."""
    if not isinstance(data, dict):
        raise ConfigError(where, data, "a mapping with keys key, name, kind and the game's parameters")
    kind = data.get("kind", "2x2")
    key = data.get("key")
    if not isinstance(key, str) or not key.isidentifier():
        raise ConfigError(f"{where}.key", key, "an identifier-like name such as 'prison' or 'my_game'")
    name = str(data.get("name", key))
    desc = data.get("description")
    if kind == "2x2":
        allowed = {"key", "name", "kind", "payoffs", "description"}
        extra = set(data) - allowed
        if extra:
            raise ConfigError(f"{where}", sorted(extra), f"2x2 game keys are {sorted(allowed)}")
        pay = data.get("payoffs")
        if not isinstance(pay, dict) or set(pay) != set(PAYOFF_KEYS):
            raise ConfigError(f"{where}.payoffs", pay, "a mapping with exactly the keys R, S, T, P (numbers)")
        vals = {k: _number(f"{where}.payoffs", k, pay[k]) for k in PAYOFF_KEYS}
        return TwoByTwoGame(key=key, name=name, description=desc, **vals)
    if kind == "public_goods":
        allowed = {
            "key",
            "name",
            "kind",
            "players",
            "endowment",
            "multiplier",
            "player_name",
            "others",
            "setting",
            "group",
            "description",
        }
        extra = set(data) - allowed
        if extra:
            raise ConfigError(f"{where}", sorted(extra), f"public_goods game keys are {sorted(allowed)}")
        players, endowment = data.get("players"), data.get("endowment")
        if isinstance(players, bool) or not isinstance(players, int) or players < 2:
            raise ConfigError(f"{where}.players", players, "a whole number of players >= 2")
        if isinstance(endowment, bool) or not isinstance(endowment, int) or endowment < 1:
            raise ConfigError(f"{where}.endowment", endowment, "a whole number of dollars >= 1")
        mult = _number(where, "multiplier", data.get("multiplier"))
        if not 1 < mult < players:
            raise ConfigError(
                f"{where}.multiplier",
                data.get("multiplier"),
                f"a number strictly between 1 and players={players}, so that donating is collectively "
                "profitable but individually costly (a public goods dilemma)",
            )
        others = tuple(data.get("others") or ())
        if others and len(others) != players - 1:
            raise ConfigError(f"{where}.others", list(others), f"{players - 1} names (players - 1)")
        if not others:
            others = tuple(f"Player {i}" for i in range(2, players + 1))
        return PublicGoodsGame(
            key=key,
            name=name,
            players=players,
            endowment=endowment,
            multiplier=mult,
            player_name=str(data.get("player_name", "Alex")),
            others=others,
            setting=str(data.get("setting", "a shared fund")),
            group=str(data.get("group", "fellow players")),
            description=desc,
        )
    raise ConfigError(f"{where}.kind", kind, "one of '2x2', 'public_goods'")
