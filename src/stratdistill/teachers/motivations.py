"""Varied, payoff-grounded reasoning texts for the offline stand-in teacher.

The stand-in teacher samples an action and must then write an answer in the teacher's format: the decision
on the first line, a blank line, then a few short sentences of reasoning. The reasoning has to be

* consistent with the sampled action (a C answer never argues that D pays more, and vice versa),
* true for the game's actual payoffs (every comparison quoted is checked against the numbers; a sentence
  whose premise does not hold for this game is never eligible), and
* varied in wording, so that a student cannot memorise a single string.

Each reason is a *condition* on the payoffs plus a bank of wordings. For a 2x2 game the only numbers
quoted are the payoffs R, S, T and P themselves (formatted so that 10.0 prints as 10 and 2.5 as 2.5). For
the donation game the numbers quoted are the inputs (amount, endowment, multiplier, player count) and a
few values derived from them, all computed here: the per-dollar return to the donor (multiplier /
players), the group's gain per dollar (multiplier - 1), what is kept (endowment - amount), what everyone
would get if all gave the full endowment (endowment * multiplier) and what everyone would get if all
matched the amount (endowment + amount * (multiplier - 1)).

Everything is driven by the ``numpy.random.Generator`` passed in, so the same generator state always gives
the same text.

The wordings and the condition under which each reason is true come from
:mod:`stratdistill.teachers.motivation_banks` (sentences in ``data/motivations/*.yaml``); this module only
decides which of them to use, in what order, and how long the answer gets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from stratdistill.errors import ConfigError
from stratdistill.teachers.motivation_banks import (
    DONATION_CONDITIONS,
    Donation,
    Reason,
    donation_banks,
    two_by_two_banks,
)

__all__ = ["compose_donation_motivation", "compose_motivation", "format_number"]

MIN_WORDS = 40
MAX_WORDS = 110


def format_number(x: float) -> str:
    """10.0 -> '10', 2.5 -> '2.5', 0.625 -> '0.625' (at most four decimals, never an exponent)."""
    x = float(x)
    if x.is_integer():
        return str(int(x))
    s = f"{x:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _money(x: float) -> str:
    """Dollar amounts: whole dollars as '$25', anything else to the cent as '$4.38'."""
    x = float(x)
    if x.is_integer():
        return f"${int(x)}"
    return f"${x:.2f}"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _join_names(names: Sequence[str]) -> str:
    names = [str(n) for n in names]
    if not names:
        return "the others"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _pick(rng: np.random.Generator, bank: Sequence[str]) -> str:
    return bank[int(rng.integers(len(bank)))]


def _points(x: float) -> str:
    s = format_number(x)
    return f"{s} point" if s in ("1", "-1") else f"{s} points"


def _choose_weighted(rng: np.random.Generator, items: Sequence[Reason], k: int) -> list[Reason]:
    if k <= 0 or not items:
        return []
    w = np.array([r.weight for r in items], dtype=float)
    idx = rng.choice(len(items), size=min(k, len(items)), replace=False, p=w / w.sum())
    return [items[int(i)] for i in idx]


def _assemble(
    header: str,
    core: list[str],
    extras: list[tuple[str, str]],
    spare: list[str],
    rng: np.random.Generator,
    min_core: int = 2,
) -> str:
    """Join header and sentences into paragraphs, then trim or pad to the word-count window.

    ``core`` holds the reasons (at least ``min_core`` are kept), ``extras`` the optional sentences as
    (slot, text) with slot 'start' or 'end', ``spare`` unused reasons that may be added when too short.
    """
    core, extras, spare = list(core), list(extras), list(spare)
    # Paragraph breaks are drawn once, for the longest sequence we might need, so trimming never
    # re-draws anything (determinism) and the layout stays varied.
    breaks = rng.random(16) < 0.45

    def render() -> tuple[str, int]:
        sentences = (
            [t for slot, t in extras if slot == "start"] + core + [t for slot, t in extras if slot == "end"]
        )
        paras: list[list[str]] = [[sentences[0]]]
        for i, s in enumerate(sentences[1:]):
            if breaks[i] or len(paras[-1]) >= 2:
                paras.append([s])
            else:
                paras[-1].append(s)
        text = header + "\n\n" + "\n\n".join(" ".join(p) for p in paras)
        return text, len(text.split())

    text, n = render()
    while n > MAX_WORDS:
        if extras:
            extras.pop(0)
        elif len(core) > min_core:
            core.pop()
        else:
            break
        text, n = render()
    while n < MIN_WORDS and spare:
        core.append(spare.pop(0))
        text, n = render()
    return text


def compose_motivation(
    action: str,
    payoffs: dict[str, float],
    rng: np.random.Generator,
    *,
    stake: str = "points",
    coplayer: str = "my coplayer",
) -> str:
    """Return the full answer: 'I would choose strategy {action}.' + blank line + 2-4 short reasoning
    paragraphs/sentences chosen and worded at random from banks, each grounded in the payoffs."""
    if action not in ("C", "D"):
        raise ConfigError("action", action, "'C' or 'D'")
    if not isinstance(payoffs, Mapping) or set(payoffs) != {"R", "S", "T", "P"}:
        raise ConfigError("payoffs", payoffs, "a mapping with exactly the keys R, S, T, P")
    p = {k: float(payoffs[k]) for k in ("R", "S", "T", "P")}
    coplayer = coplayer.strip() or "my coplayer"
    stake = stake.strip() or "points"

    fields = {
        "R": _points(p["R"]),
        "S": _points(p["S"]),
        "T": _points(p["T"]),
        "P": _points(p["P"]),
        "minC": _points(min(p["R"], p["S"])),
        "minD": _points(min(p["T"], p["P"])),
        "co": coplayer,
        "Co": _cap(coplayer),
        "stake": stake,
    }

    banks = two_by_two_banks()
    reasons = banks.reasons[action]
    concessions = banks.concessions[action]
    eligible = [r for r in reasons if r.cond(p)]
    n_core = int(rng.choice([2, 3, 4], p=[0.4, 0.4, 0.2]))  # reasons beyond the optional extras
    chosen = _choose_weighted(rng, eligible, n_core)
    rest = [r for r in eligible if r not in chosen]
    spare_order = rng.permutation(len(rest)) if rest else np.array([], dtype=int)
    # A fallback bank with several distinct wordings is always eligible; if fewer than two reasons
    # exist, a second wording from the same bank is used so the answer still has two reasons.
    core = [_pick(rng, r.bank).format(**fields) for r in chosen]
    if len(core) < 2:
        fallback = chosen[0].bank if chosen else reasons[-1].bank
        others = [b for b in fallback if b.format(**fields) not in core]
        core.append(_pick(rng, others).format(**fields))
    spare = [_pick(rng, rest[int(i)].bank).format(**fields) for i in spare_order]

    extras: list[tuple[str, str]] = []
    if rng.random() < 0.35:
        extras.append(("start", _pick(rng, banks.openers)))
    conc = [r for r in concessions if r.cond(p)]
    if conc and rng.random() < 0.4:
        extras.append(("end", _pick(rng, conc[0].bank).format(**fields)))
    if stake.lower() != "points":
        if rng.random() < 0.6:
            extras.append(("end", _pick(rng, banks.stake_lines[action]).format(**fields)))
    elif rng.random() < 0.25:
        extras.append(("end", _pick(rng, banks.points_lines[action])))
    if rng.random() < 0.5:
        extras.append(("end", _pick(rng, banks.closers[action])))

    return _assemble(f"I would choose strategy {action}.", core, extras, spare, rng)


def compose_donation_motivation(
    amount: int,
    *,
    endowment: int,
    players: int,
    multiplier: float,
    others: list[str],
    rng: np.random.Generator,
    stake: str = "dollars",
) -> str:
    """'I would donate ${amount}.' + reasoning grounded in the numbers (e.g. each dollar put in returns
    multiplier/players to me, the group gains multiplier-1 per dollar, the others' names)."""
    if isinstance(amount, bool) or not isinstance(amount, int | np.integer):
        raise ConfigError("amount", amount, "a whole number of dollars")
    if isinstance(endowment, bool) or not isinstance(endowment, int | np.integer) or endowment < 1:
        raise ConfigError("endowment", endowment, "a whole number of dollars >= 1")
    if isinstance(players, bool) or not isinstance(players, int | np.integer) or players < 2:
        raise ConfigError("players", players, "a whole number of players >= 2")
    if not 0 <= amount <= endowment:
        raise ConfigError("amount", amount, f"a whole number from 0 to {endowment}")
    amount, endowment, players = int(amount), int(endowment), int(players)
    multiplier = float(multiplier)
    if not np.isfinite(multiplier) or multiplier <= 0:
        raise ConfigError("multiplier", multiplier, "a positive number")
    stake = stake.strip() or "dollars"

    mpcr = multiplier / players
    names = _join_names(others)
    fields = {
        "A": _money(amount),
        "E": _money(endowment),
        "keep": _money(endowment - amount),
        "m": format_number(multiplier),
        "n": format_number(players),
        "r": _money(mpcr) if float(mpcr * 100).is_integer() else f"${format_number(mpcr)}",
        "g": _money(multiplier - 1)
        if float((multiplier - 1) * 100).is_integer()
        else format_number(multiplier - 1),
        "full": _money(endowment * multiplier),
        "match": _money(endowment + amount * (multiplier - 1)),
        "names": names,
        "Names": _cap(names),
        "stake": stake,
    }

    banks = donation_banks()
    case = Donation(gives_all=amount == endowment, gives_none=amount == 0, grows=multiplier > 1, mpcr=mpcr)
    # The mechanics sentence (multiplier and per-dollar return) is always part of the answer.
    core = [_pick(rng, banks.mechanics).format(**fields)]
    eligible = [(k, bank) for k, bank in banks.reasons if DONATION_CONDITIONS[k](case)]
    n_more = int(rng.integers(1, 4))  # 1-3 further reasons
    order = [int(i) for i in rng.permutation(len(eligible))]
    picked = [_pick(rng, eligible[i][1]).format(**fields) for i in order]
    core += picked[:n_more]
    spare = picked[n_more:]
    # Shuffle where the mechanics sentence sits among the first two positions for variety.
    if len(core) > 1 and rng.random() < 0.4:
        core[0], core[1] = core[1], core[0]

    extras: list[tuple[str, str]] = []
    if rng.random() < 0.3:
        extras.append(("start", _pick(rng, banks.openers)))
    if stake.lower() != "dollars" and rng.random() < 0.6:
        extras.append(("end", _pick(rng, banks.stake_lines).format(**fields)))
    if rng.random() < 0.5:
        extras.append(("end", _pick(rng, banks.closers).format(**fields)))

    return _assemble(f"I would donate {_money(amount)}.", core, extras, spare, rng)
