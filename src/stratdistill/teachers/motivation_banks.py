"""The stand-in teacher's sentence banks: words from data files, joined to the conditions that make them true.

The banks are prose that gets reworded and extended, so they live in YAML next to this module
(``data/motivations/*.yaml``); what makes a sentence *true* for a game is logic, so it lives here, as one
condition per reason key. The key is the join: the loader refuses a file whose keys do not match the
conditions below, so no reason is ever used without the check that makes it true for the game at hand.
Each file is read once per process. :mod:`stratdistill.teachers.motivations` composes the texts.

Order in the files matters: a seed picks a sentence by its position, so the same seed gives the same text
only while the lists keep their order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

__all__ = ["Donation", "DonationBanks", "Reason", "TwoByTwoBanks", "donation_banks", "two_by_two_banks"]

Cond = Callable[[Mapping[str, float]], bool]


@dataclass(frozen=True)
class Reason:
    """One reason for a 2x2 action: the payoff condition under which it holds and its wordings."""

    key: str
    cond: Cond
    bank: tuple[str, ...]
    weight: float = 1.0


# 2x2 games: p holds the payoffs R, S, T, P.
TWO_BY_TWO_CONDITIONS: dict[str, Cond] = {
    "c_mutual": lambda p: p["R"] > p["P"],
    "c_reward": lambda p: p["R"] > p["T"],
    "c_protect": lambda p: p["S"] > p["P"],
    "c_dominant": lambda p: p["R"] > p["T"] and p["S"] > p["P"],
    "c_best": lambda p: p["R"] > max(p["S"], p["T"], p["P"]),
    "c_maximin": lambda p: min(p["R"], p["S"]) > min(p["T"], p["P"]),
    "c_helps": lambda p: p["R"] > p["S"] and p["T"] > p["P"],
    "c_values": lambda p: True,
    "d_temptation": lambda p: p["T"] > p["R"],
    "d_protect": lambda p: p["P"] > p["S"],
    "d_dominant": lambda p: p["T"] > p["R"] and p["P"] > p["S"],
    "d_best": lambda p: p["T"] > max(p["R"], p["S"], p["P"]),
    "d_mutual": lambda p: p["P"] > p["R"],
    "d_maximin": lambda p: min(p["T"], p["P"]) > min(p["R"], p["S"]),
    "d_caution": lambda p: True,
    "c_concede_temptation": lambda p: p["T"] > p["R"],
    # Not when C is dominant: there a D answer keeps to caution and does not point at the numbers.
    "d_concede_mutual": lambda p: p["R"] > p["P"] and not (p["R"] > p["T"] and p["S"] > p["P"]),
}


@dataclass(frozen=True)
class Donation:
    """What the donation reasons' conditions look at."""

    gives_all: bool
    gives_none: bool
    grows: bool  # the fund multiplies donations (multiplier > 1)
    mpcr: float  # what one donated dollar returns to the donor

    @property
    def partial(self) -> bool:
        return not self.gives_all and not self.gives_none


DONATION_CONDITIONS: dict[str, Callable[[Donation], bool]] = {
    "group_gain": lambda d: d.grows and not d.gives_none,
    "everyone_full": lambda d: d.grows and d.gives_all,
    "example": lambda d: d.gives_all,
    "self_gain": lambda d: d.mpcr > 1 and not d.gives_none,
    "cost_conceded": lambda d: d.mpcr < 1 and not d.gives_none,
    "hedge": lambda d: d.partial,
    "everyone_match": lambda d: d.partial and d.grows,
    "unsure_partial": lambda d: d.partial,
    "keep_better": lambda d: d.gives_none and d.mpcr < 1,
    "share_anyway": lambda d: d.gives_none and d.grows,
    "unsure_none": lambda d: d.gives_none,
}


@dataclass(frozen=True)
class TwoByTwoBanks:
    """Everything a 2x2 motivation is worded from; the mappings are keyed by action, C or D."""

    reasons: Mapping[str, tuple[Reason, ...]]  # the last one of each action is its fallback bank
    concessions: Mapping[str, tuple[Reason, ...]]
    openers: tuple[str, ...]
    closers: Mapping[str, tuple[str, ...]]
    stake_lines: Mapping[str, tuple[str, ...]]
    points_lines: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class DonationBanks:
    """Everything a donation motivation is worded from."""

    mechanics: tuple[str, ...]
    reasons: tuple[tuple[str, tuple[str, ...]], ...]  # (key, bank), in file order
    openers: tuple[str, ...]
    stake_lines: tuple[str, ...]
    closers: tuple[str, ...]


@functools.cache
def _load(name: str) -> dict[str, Any]:
    """One bank file of ``data/motivations``, parsed once per process."""
    path = resources.files("stratdistill.teachers") / "data" / "motivations" / f"{name}.yaml"
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of sentence banks, got {type(loaded).__name__}")
    return loaded


def _bank(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise ValueError(f"motivation bank {where}: expected a non-empty list of sentences")
    return tuple(value)


def _check_keys(file: str, found: Sequence[str], expected: Mapping[str, object]) -> None:
    if sorted(found) != sorted(expected):
        raise ValueError(
            f"data/motivations/{file}.yaml: reason keys {sorted(found)} do not match the conditions in "
            f"{__name__} {sorted(expected)}"
        )


def _reasons(data: dict[str, Any], section: str) -> tuple[Reason, ...]:
    return tuple(
        Reason(
            key=str(e["key"]),
            cond=TWO_BY_TWO_CONDITIONS[e["key"]],
            bank=_bank(e.get("sentences"), f"{section}.{e['key']}"),
            weight=float(e.get("weight", 1.0)),
        )
        for e in data[section]
    )


def _by_action(data: dict[str, Any], section: str) -> dict[str, tuple[str, ...]]:
    return {a: _bank((data.get(section) or {}).get(a), f"{section}.{a}") for a in ("C", "D")}


@functools.cache
def two_by_two_banks() -> TwoByTwoBanks:
    """The 2x2-game banks (``two_by_two.yaml`` and the openers of ``common.yaml``), read once."""
    data = _load("two_by_two")
    sections = ("c_reasons", "d_reasons", "c_concessions", "d_concessions")
    _check_keys(
        "two_by_two", [e.get("key") for s in sections for e in data.get(s) or []], TWO_BY_TWO_CONDITIONS
    )
    return TwoByTwoBanks(
        reasons={"C": _reasons(data, "c_reasons"), "D": _reasons(data, "d_reasons")},
        concessions={"C": _reasons(data, "c_concessions"), "D": _reasons(data, "d_concessions")},
        openers=_bank(_load("common").get("openers"), "openers"),
        closers=_by_action(data, "closers"),
        stake_lines=_by_action(data, "stake_lines"),
        points_lines=_by_action(data, "points_lines"),
    )


@functools.cache
def donation_banks() -> DonationBanks:
    """The donation-game banks (``donation.yaml`` and the openers of ``common.yaml``), read once."""
    data = _load("donation")
    entries = data.get("reasons") or []
    _check_keys("donation", [e.get("key") for e in entries], DONATION_CONDITIONS)
    return DonationBanks(
        mechanics=_bank(data.get("mechanics"), "mechanics"),
        reasons=tuple((str(e["key"]), _bank(e.get("sentences"), f"reasons.{e['key']}")) for e in entries),
        openers=_bank(_load("common").get("openers"), "openers"),
        stake_lines=_bank(data.get("stake_lines"), "stake_lines"),
        closers=_bank(data.get("closers"), "closers"),
    )
