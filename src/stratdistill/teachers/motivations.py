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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from stratdistill.errors import ConfigError

__all__ = ["compose_donation_motivation", "compose_motivation", "format_number"]

MIN_WORDS = 40
MAX_WORDS = 110

Cond = Callable[[Mapping[str, float]], bool]


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


@dataclass(frozen=True)
class _Reason:
    key: str
    cond: Cond
    bank: tuple[str, ...]
    weight: float = 1.0


def _always(_: Mapping[str, float]) -> bool:
    return True


# --------------------------------------------------------------------------------------------------------
# 2x2 games. Placeholders: {R} {S} {T} {P} are "N points"; {minC}/{minD} are the worst payoff of C/D;
# {co} is the coplayer, {Co} the same capitalised. Keywords the tests rely on: every sentence about the
# temptation (T > R) contains "tempt"; every sentence saying an action shields me against a defecting
# coplayer contains "protect" or "safe"; no other sentence uses those words.
# --------------------------------------------------------------------------------------------------------

_C_REASONS: tuple[_Reason, ...] = (
    _Reason(
        "c_mutual",
        lambda p: p["R"] > p["P"],
        (
            "If {co} and I both choose C, we each get {R}, whereas if we both choose D we each get only {P}.",
            "Mutual cooperation pays {R} each, clearly more than the {P} each that mutual defection would "
            "leave us with.",
            "The outcome where we both cooperate ({R} each) beats the one where we both defect ({P} each), "
            "and I want to aim for the better one.",
            "Between the two symmetric outcomes, both playing C gives {R} apiece and both playing D only {P} "
            "apiece, so cooperation is the one worth reaching for.",
            "{Co} faces exactly the same numbers as I do, so if they reason the way I do we both end up "
            "with {R} rather than {P}.",
            "Since the game is the same from both sides, I expect {co} to see that two cooperators get {R} "
            "each while two defectors get just {P}.",
            "I assume {co} is thinking along the same lines, and if we both act on it we each take home {R} "
            "instead of {P}.",
        ),
        2.0,
    ),
    _Reason(
        "c_reward",
        lambda p: p["R"] > p["T"],
        (
            "If {co} cooperates, C earns me {R}, which is more than the {T} I would get by defecting.",
            "Defecting on a cooperating {co} would actually cost me: {T} instead of {R}.",
            "Against a cooperator, sticking with C gives me {R} while switching to D gives me less, "
            "only {T}.",
        ),
        2.0,
    ),
    _Reason(
        "c_protect",
        lambda p: p["S"] > p["P"],
        (
            "Even if {co} chooses D, C still gives me {S} rather than {P}, so cooperating protects me in "
            "that case too.",
            "C is also the safe reply to a defector: I get {S} instead of the {P} I would get if we both "
            "chose D.",
            "Should {co} defect, I am better protected by having chosen C, with {S} compared to {P}.",
        ),
        2.0,
    ),
    _Reason(
        "c_dominant",
        lambda p: p["R"] > p["T"] and p["S"] > p["P"],
        (
            "C comes out ahead whatever {co} does: {R} against {T} if they cooperate, and {S} against {P} "
            "if they defect.",
            "Whatever {co} decides, C is the better reply for me, so it is simply the dominant choice.",
        ),
        2.0,
    ),
    _Reason(
        "c_best",
        lambda p: p["R"] > max(p["S"], p["T"], p["P"]),
        (
            "The highest payoff in the whole table, {R}, is only possible if we both choose C.",
            "Nothing in this game beats the {R} each of us gets from mutual cooperation.",
        ),
        1.5,
    ),
    _Reason(
        "c_maximin",
        lambda p: min(p["R"], p["S"]) > min(p["T"], p["P"]),
        (
            "Looking at the worst case, C never gives me less than {minC}, while D could leave me with "
            "{minD}.",
            "My worst outcome with C is {minC}, better than the {minD} that D can end in.",
        ),
        1.5,
    ),
    _Reason(
        "c_helps",
        lambda p: p["R"] > p["S"] and p["T"] > p["P"],
        (
            "Choosing C also raises what {co} receives, whatever they pick, and I care about that.",
            "My cooperation makes {co} better off no matter what they choose, which matters to me.",
        ),
        1.0,
    ),
    _Reason(
        "c_values",
        _always,
        (
            "I would rather show good faith and be someone {co} can rely on.",
            "I think starting from trust is the right attitude, even in a single encounter with {co}.",
            "Cooperating reflects how I want to treat others, even when nothing forces me to.",
            "I prefer to offer cooperation first and give {co} the chance to match it.",
        ),
        0.7,
    ),
)

_D_REASONS: tuple[_Reason, ...] = (
    _Reason(
        "d_temptation",
        lambda p: p["T"] > p["R"],
        (
            "If {co} chooses C, D gets me {T} instead of {R}, and that temptation is hard to ignore.",
            "The temptation is plain: defecting against a cooperator pays {T}, against {R} for cooperating.",
            "It is tempting to take the {T} that D earns when {co} cooperates, rather than settle for {R}.",
        ),
        2.0,
    ),
    _Reason(
        "d_protect",
        lambda p: p["P"] > p["S"],
        (
            "If {co} defects, choosing C would leave me with just {S}, while D protects me with {P}.",
            "D is the safer option: if {co} also goes for D I get {P}, not the {S} I would be stuck with "
            "after cooperating.",
            "I want to protect myself against being exploited; cooperating with a defector pays only {S}, "
            "and D guarantees at least {P} in that case.",
        ),
        2.0,
    ),
    _Reason(
        "d_dominant",
        lambda p: p["T"] > p["R"] and p["P"] > p["S"],
        (
            "D does better for me whatever {co} chooses: {T} rather than {R} if they cooperate, and {P} "
            "rather than {S} if they defect.",
            "Whatever {co} decides, D is the better reply, which makes it the dominant strategy here.",
        ),
        2.0,
    ),
    _Reason(
        "d_best",
        lambda p: p["T"] > max(p["R"], p["S"], p["P"]),
        (
            "The largest payoff in the table, {T}, can only be reached by choosing D.",
            "Only D gives me a shot at {T}, the best result available to me.",
        ),
        1.5,
    ),
    _Reason(
        "d_mutual",
        lambda p: p["P"] > p["R"],
        (
            "Even if we both choose D, we each get {P}, more than the {R} from mutual cooperation.",
            "Mutual defection pays {P} each here, which is better than the {R} each from mutual cooperation.",
        ),
        2.0,
    ),
    _Reason(
        "d_maximin",
        lambda p: min(p["T"], p["P"]) > min(p["R"], p["S"]),
        (
            "In the worst case D still gives me {minD}, while C could leave me with only {minC}.",
            "My worst outcome with D is {minD}, which is better than the {minC} that C can end in.",
        ),
        1.5,
    ),
    _Reason(
        "d_caution",
        _always,
        (
            "I cannot talk to {co} beforehand or make any binding agreement, so I cannot count on them "
            "choosing C.",
            "This is a one-shot decision and I cannot see what {co} will do, so I am wary of committing to C "
            "on trust alone.",
            "I may be misjudging the situation, but in a single encounter my instinct is to hold back "
            "rather than cooperate.",
            "I have no way of knowing what {co} will pick, and I prefer not to stake my decision on their "
            "goodwill.",
            "Perhaps I am being too cautious, but I would rather not rely on a promise that nobody has made.",
        ),
        0.8,
    ),
)

# Optional sentences that acknowledge the other side and explain why the chosen action still stands.
_C_CONCESSIONS: tuple[_Reason, ...] = (
    _Reason(
        "c_concede_temptation",
        lambda p: p["T"] > p["R"],
        (
            "I know it is tempting to defect and collect {T} instead of {R}, but I do not want to win by "
            "exploiting {co}.",
            "The {T} from defecting on a cooperator is tempting, yet I would rather not take advantage of "
            "{co}.",
        ),
    ),
)
_D_CONCESSIONS: tuple[_Reason, ...] = (
    _Reason(
        "d_concede_mutual",
        # Not when C is dominant: there a D answer keeps to caution and does not point at the numbers.
        lambda p: p["R"] > p["P"] and not (p["R"] > p["T"] and p["S"] > p["P"]),
        (
            "I realise that if we both cooperated we would each get {R} instead of {P}, but I cannot be "
            "sure {co} will see it that way.",
            "Mutual cooperation at {R} each would beat mutual defection at {P}, yet that needs trust I do "
            "not have here.",
        ),
    ),
)

_OPENERS = (
    "Here is how I see it.",
    "Let me explain my reasoning.",
    "I looked at the payoffs carefully.",
    "My thinking goes like this.",
)
_CLOSERS = {
    "C": (
        "So, on balance, C is my choice.",
        "That is why I go with C.",
        "For these reasons I cooperate.",
        "All things considered, C makes the most sense to me.",
    ),
    "D": (
        "So, on balance, D is my choice.",
        "That is why I go with D.",
        "For these reasons I defect.",
        "All things considered, I will go with D.",
    ),
}
_STAKE_LINES = {
    "C": (
        "The points here stand for {stake}, and I want an outcome that is good for both of us.",
        "When it comes to {stake}, I think working together is the more sensible approach.",
        "With {stake} at stake for both of us, I would rather build something than grab for it.",
    ),
    "D": (
        "The points here stand for {stake}, and I prefer to look after my own position first.",
        "When it comes to {stake}, I would rather be careful than hopeful.",
        "With my own {stake} on the line, I am not willing to gamble on goodwill.",
    ),
}
_POINTS_LINES = {
    "C": (
        "Points matter to me, but so does how I reach them.",
        "I would like my points to come from working together.",
    ),
    "D": (
        "I try to read the points without wishful thinking.",
        "I would rather judge the points coldly than hope for the best.",
    ),
}


def _points(x: float) -> str:
    s = format_number(x)
    return f"{s} point" if s in ("1", "-1") else f"{s} points"


def _choose_weighted(rng: np.random.Generator, items: Sequence[_Reason], k: int) -> list[_Reason]:
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

    reasons = _C_REASONS if action == "C" else _D_REASONS
    concessions = _C_CONCESSIONS if action == "C" else _D_CONCESSIONS
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
        extras.append(("start", _pick(rng, _OPENERS)))
    conc = [r for r in concessions if r.cond(p)]
    if conc and rng.random() < 0.4:
        extras.append(("end", _pick(rng, conc[0].bank).format(**fields)))
    if stake.lower() != "points":
        if rng.random() < 0.6:
            extras.append(("end", _pick(rng, _STAKE_LINES[action]).format(**fields)))
    elif rng.random() < 0.25:
        extras.append(("end", _pick(rng, _POINTS_LINES[action])))
    if rng.random() < 0.5:
        extras.append(("end", _pick(rng, _CLOSERS[action])))

    return _assemble(f"I would choose strategy {action}.", core, extras, spare, rng)


# --------------------------------------------------------------------------------------------------------
# Donation (linear public goods) game.
# --------------------------------------------------------------------------------------------------------

_MECHANICS = (
    "Every dollar in the fund is multiplied by {m} and split {n} ways, so each dollar I give brings {r} "
    "back to me.",
    "The pool is multiplied by {m} and shared equally, which means each dollar I contribute returns {r} to "
    "me personally.",
    "With a multiplier of {m} shared among {n} of us, one donated dollar comes back to me as {r}.",
    "Because the fund grows by a factor of {m} and is divided {n} ways, my own return on a donated dollar "
    "is {r}.",
)


def _donation_reasons(
    amount: int, endowment: int, multiplier: float, mpcr: float
) -> list[tuple[str, bool, tuple[str, ...]]]:
    """(key, eligible, bank) for the donation game, given the chosen amount."""
    gives_all = amount == endowment
    gives_none = amount == 0
    partial = not gives_all and not gives_none
    grows = multiplier > 1
    return [
        (
            "group_gain",
            grows and not gives_none,
            (
                "For the group as a whole, every dollar given turns into {m} dollars, a net gain of {g} per "
                "dollar.",
                "Across all of us, each donated dollar creates {g} of extra value, since it becomes {m} "
                "dollars.",
            ),
        ),
        (
            "everyone_full",
            grows and gives_all,
            (
                "If all of us give the full {E}, everyone ends up with {full} instead of the {E} we "
                "started with.",
                "Should {names} also give everything, each of us walks away with {full} rather than {E}.",
            ),
        ),
        (
            "example",
            gives_all,
            (
                "I want to set an example for {names} and show that I am willing to contribute fully.",
                "Giving everything is the clearest signal to {names} that I am serious about the fund.",
            ),
        ),
        (
            "self_gain",
            mpcr > 1 and not gives_none,
            (
                "Each dollar I give returns more than it costs me, so donating pays off for me as well.",
                "Since my own return on a dollar exceeds the dollar itself, giving is worth it even for me.",
            ),
        ),
        (
            "cost_conceded",
            mpcr < 1 and not gives_none,
            (
                "Each dollar returns less than it costs me directly, but the fund is where the real gains "
                "for all of us lie.",
                "I accept that my direct return on each dollar is below one, because the shared fund grows "
                "for everyone.",
            ),
        ),
        (
            "hedge",
            partial,
            (
                "Giving {A} and keeping {keep} is a middle path: I support the fund without risking "
                "everything if {names} hold back.",
                "I keep {keep} for myself in case {names} give little, while still putting {A} into the "
                "shared fund.",
            ),
        ),
        (
            "everyone_match",
            partial and grows,
            (
                "If everyone matched my {A}, each of us would finish with {match}, more than the {E} we "
                "started with.",
                "Should {names} each give {A} as well, we would all end up with {match} rather than {E}.",
            ),
        ),
        (
            "unsure_partial",
            partial,
            (
                "I would like to back the party fund, but I do not know how much {names} will put in.",
                "Without knowing what {names} will do, a moderate donation feels like the balanced choice.",
            ),
        ),
        (
            "keep_better",
            gives_none and mpcr < 1,
            (
                "Since {r} is less than the dollar it costs me, keeping my money is better for me whatever "
                "{names} decide.",
                "A dollar kept is worth a full dollar to me, while a dollar donated returns only {r}.",
            ),
        ),
        (
            "share_anyway",
            gives_none and grows,
            (
                "If {names} donate, I still receive my share of the fund without having given anything.",
                "Whatever {names} put in is shared with me too, so I benefit from their donations either "
                "way.",
            ),
        ),
        (
            "unsure_none",
            gives_none,
            (
                "I cannot be sure the others will contribute, and I do not want to be the only one who "
                "pays in.",
                "I would rather keep my {E} in hand than rely on a fund I do not control.",
            ),
        ),
    ]


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

    # The mechanics sentence (multiplier and per-dollar return) is always part of the answer.
    core = [_pick(rng, _MECHANICS).format(**fields)]
    eligible = [(k, bank) for k, ok, bank in _donation_reasons(amount, endowment, multiplier, mpcr) if ok]
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
        extras.append(("start", _pick(rng, _OPENERS)))
    if stake.lower() != "dollars" and rng.random() < 0.6:
        line = (
            "What is really at stake here is {stake}, and I weighed my donation with that in mind.",
            "Since these dollars stand for {stake}, I thought carefully about how much to give.",
        )
        extras.append(("end", _pick(rng, line).format(**fields)))
    if rng.random() < 0.5:
        closers = (
            f"So {_money(amount)} is what I put in.",
            "That is how I settled on my amount.",
            f"On balance, {_money(amount)} feels right to me.",
        )
        extras.append(("end", _pick(rng, closers)))

    return _assemble(f"I would donate {_money(amount)}.", core, extras, spare, rng)
