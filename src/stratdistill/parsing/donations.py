"""Parsing of a donation-game (public goods) answer: how many whole dollars, ``0..endowment``, it gives.

Kept apart from the action parser because amounts bring their own problems: number words and currency
signs, ranges ("5-7"), fractions and percentages that are not whole dollars, amounts about someone else
("the game asks me to give ..."), "I'll keep $6", and a negated verb that may mean 0 ("I won't donate")
or nothing at all ("I won't donate more than $5"). The precedence is documented on :func:`parse_donation`.
"""

from __future__ import annotations

import bisect
import re
from typing import Literal

from stratdistill.parsing.common import ParsedAnswer, clause_prefix, is_refusal, normalise, sentence_bounds

__all__ = ["parse_donation"]


_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        (
            *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
            *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"),
            *("nineteen", "twenty"),
        )
    )
}
# Amount words that only count right after a donation verb or as the whole answer, because in
# free text they usually mean something else ("Considering everything, ...").
_SPECIAL_WORDS = ("nothing", "none", "everything", "all of it", "all of my money", "half")

_TOKEN_RE = re.compile(
    r"(?P<sign>(?<![\w)$])-\s*)?(?P<cur>\$\s*)?(?P<sign2>-\s*)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<frac>\.\d+)?(?P<pct>\s*(?:%|percent\b))?(?![\w])"
    r"|(?<![\w-])(?<!no )(?P<word>" + "|".join(_NUMBER_WORDS) + r")(?![\w-])"
    r"|(?<![\w-])(?P<special>" + "|".join(w.replace(" ", r"\s+") for w in _SPECIAL_WORDS) + r")(?![\w-])",
    re.IGNORECASE,
)
_RANGE_AFTER = re.compile(
    r"\s*(?:-|\bto\b|\bor\b)\s*(?:\$\s*)?(?:\d+|(?:" + "|".join(_NUMBER_WORDS) + r")\b)"
    r"(?=\s*(?:dollars?|bucks)\b|\s*[.,;:!?)*]|\s*\Z)",
    re.IGNORECASE,
)
_BETWEEN_BEFORE = re.compile(r"\bbetween\s*(?:\$\s*)?\Z", re.IGNORECASE)
_DONATION_VERB = re.compile(
    r"\b(?:donate|donates|donating|donated|give|giving|gave|contribute|contributes|contributing|contributed|"
    r"send|sending|transfer|transferring|allocate|allocating|offer|offering|put|putting|pay|paying)\b"
    r"|(?P<label>\b(?:my\s+|final\s+)?(?:donation|contribution|amount|answer|decision|choice)\b[*_]*\s*"
    r"(?:is\b|would\s+be\b|will\s+be\b|:|=|of\b))",
    re.IGNORECASE,
)
_DONATION_SENTENCE_END = re.compile(r"[.!?](?=\s|\Z)")
# The amount is looked for at most this far after the donation verb (bounds the work on long text).
_MAX_DONATION_SENTENCE = 300


def _tokens_between(tokens: list[re.Match[str]], starts: list[int], lo: int, hi: int) -> list[re.Match[str]]:
    """The tokens starting in ``[lo, hi)``; ``starts`` are the tokens' start positions, in order."""
    return tokens[bisect.bisect_left(starts, lo) : bisect.bisect_left(starts, hi)]


_CANNOT = re.compile(r"\b(?:can't|cannot|can\s+not|unable|not\s+able|couldn't|could\s+not)\b", re.IGNORECASE)
_NEGATION = re.compile(r"(?:\bnot|n't|\bnever)\b(?:\s+[\w']+){0,3}?\s*\Z", re.IGNORECASE)
_NO_DONATION = re.compile(r"\bno\s+(?:donation|contribution|money|dollars)\b", re.IGNORECASE)
_AMOUNT_BEFORE_VERB = re.compile(
    r"\A[\s*_]*(?:(?:dollars?|bucks)[\s*_]*)?(?:is|would\s+be|will\s+be)\b[^.!?]{0,40}\Z", re.IGNORECASE
)


def _finish_donation(m: re.Match[str], text: str, raw: str, endowment: int) -> ParsedAnswer:
    """Turn the committed amount token into a ParsedAnswer, applying the whole-dollar and range rules."""
    if _RANGE_AFTER.match(text, m.end()) or _BETWEEN_BEFORE.search(text, 0, m.start()):
        return ParsedAnswer(None, "ambiguous", raw)  # "5-7", "5 or 6", "between 3 and 5"
    if m.group("special"):
        special = " ".join(m.group("special").lower().split())
        if special == "half":
            if endowment % 2:
                return ParsedAnswer(None, "unparseable", raw)
            return ParsedAnswer(endowment // 2, "ok", raw)
        value = endowment if special in {"everything", "all of it", "all of my money"} else 0
        return ParsedAnswer(value, "ok", raw)
    if m.group("word"):
        value = _NUMBER_WORDS[m.group("word").lower()]
    else:
        if m.group("pct"):
            return ParsedAnswer(None, "unparseable", raw)  # a share, not a dollar amount
        frac = m.group("frac")
        if frac and frac.strip(".0"):
            return ParsedAnswer(None, "unparseable", raw)  # "$7.50": not a whole-dollar amount
        value = int(m.group("num").replace(",", ""))
        if m.group("sign") or m.group("sign2"):
            value = -value
    if value < 0 or value > endowment:
        return ParsedAnswer(None, "out_of_range", raw)
    return ParsedAnswer(value, "ok", raw)


_DOLLARS_AFTER = re.compile(r"\s*(?:dollars?|bucks)\b", re.IGNORECASE)
_OWN = re.compile(r"\b(?:I|we|my|our|let's)\b|\bI'|\A[\s*_#>\-]*\Z", re.IGNORECASE)


def _verb_rank(text: str, verb: re.Match[str]) -> tuple[int, int]:
    """Sort key: the model's own donation verbs and donation labels first, generic labels ("Answer:",
    "Decision:") next, verbs about someone else ("The game asks me to give ...") last."""
    label = verb.group("label")
    if label:
        generic = not re.search(r"donation|contribution", label, re.IGNORECASE)
        return (1 if generic else 0, verb.start())
    own = bool(_OWN.search(clause_prefix(text, verb.start())))
    return (0 if own else 2, verb.start())


_KEEP = re.compile(
    r"\b(?:I|we)(?:'ll|'d)?(?:\s+(?:would|will|shall|want\s+to|prefer\s+to|choose\s+to|decide\s+to|"
    r"plan\s+to|am\s+going\s+to))*\s+(?:keep|keeping|retain)\b",
    re.IGNORECASE,
)


def _amount_kept(tokens: list[re.Match[str]], text: str, raw: str, endowment: int) -> ParsedAnswer | None:
    """ "I'll keep $6 for myself" -> a donation of endowment - 6 (whatever is not kept is donated)."""
    starts = [t.start() for t in tokens]
    for keep in _KEEP.finditer(text):
        end_m = _DONATION_SENTENCE_END.search(text, keep.end(), keep.end() + _MAX_DONATION_SENTENCE)
        sentence_end = end_m.start() if end_m else min(len(text), keep.end() + _MAX_DONATION_SENTENCE)
        after = _tokens_between(tokens, starts, keep.end(), sentence_end)
        if after:
            kept = _finish_donation(after[0], text, raw, endowment)
            if isinstance(kept.value, int):
                return ParsedAnswer(endowment - kept.value, "ok", raw)
            return kept
    return None


def _amount_for_verb(
    verb: re.Match[str], tokens: list[re.Match[str]], starts: list[int], text: str, raw: str, endowment: int
) -> ParsedAnswer | Literal["hedged"] | None:
    """The amount a donation verb commits to; None when this verb does not settle it, "hedged" for a
    negated verb with an amount ("I won't donate more than $5"), which is no commitment either."""
    end_m = _DONATION_SENTENCE_END.search(text, verb.end(), verb.end() + _MAX_DONATION_SENTENCE)
    sentence_end = end_m.start() if end_m else min(len(text), verb.end() + _MAX_DONATION_SENTENCE)
    sentence_start, _ = sentence_bounds(text, verb.start(), verb.start())
    after = _tokens_between(tokens, starts, verb.end(), sentence_end)
    prefix = clause_prefix(text, verb.start())
    if _NEGATION.search(prefix):
        if _CANNOT.search(prefix):
            return None  # "I cannot donate": a refusal, not a choice of 0
        if not after:
            return ParsedAnswer(0, "ok", raw)  # "I would not donate anything"
        return "hedged"
    if after:
        return _finish_donation(after[0], text, raw, endowment)
    lo = max(sentence_start, verb.start() - 80)
    before = [
        t
        for t in _tokens_between(tokens, starts, lo, verb.start())
        if t.end() <= verb.start() and _AMOUNT_BEFORE_VERB.match(text[t.end() : verb.start()])
    ]
    return _finish_donation(before[-1], text, raw, endowment) if before else None


def parse_donation(text: str, endowment: int = 10) -> ParsedAnswer:
    """Parse how many whole dollars a donation-game answer commits to.

    Precedence (first that applies):

    1. Empty text -> ``"refusal"``.
    2. A donation verb phrase ("donate", "give", "contribute", "Donation:", "My answer is", ...): the
       first amount after it in the same sentence ("Out of my $10, I would donate $4" -> 4; "Given
       the multiplier 2.5, I donate 5" -> 5), or an amount just before it ("$4 is what I'd donate").
       Amount words count here: "donate nothing" -> 0, "give everything" -> endowment, "half" ->
       endowment / 2. First-person verbs and "Donation:" come before generic labels ("Answer:")
       and before verbs about others ("The game asks me to give ..."). A negated verb without an
       amount ("I would not donate anything", "I won't give") means a donation of 0 -- not
       donating is a legitimate move in this game; "I cannot donate" is treated as a refusal
       instead, and a negated verb with an amount ("I won't donate more than $5") commits to
       nothing, so such an answer ends as ``"unparseable"`` rather than falling back to its number.
    3. "I'll keep $6 (for myself)" -> endowment - 6: what is not kept is donated.
    4. "no donation"/"no money" -> 0.
    5. Refusal language -> ``"refusal"``. Checked before the first-number fallback because refusals
       often restate the endowment ("I can't decide how to split my $10").
    6. Otherwise the first number in the answer (the paper's rule), including number words
       ("seven") and a bare "nothing" -> 0.

    The committed amount must be a whole number of dollars: "$7.50" or "50%" -> ``"unparseable"``
    ("$7.00" is accepted as 7); a range ("5-7", "5 or 6") -> ``"ambiguous"``; values below 0 or above
    ``endowment`` -> ``"out_of_range"``. In all non-ok cases the value is ``None``.
    """
    if endowment < 0:
        raise ValueError(f"endowment must be >= 0, got {endowment}")
    norm = normalise(text)
    if not norm.strip():
        return ParsedAnswer(None, "refusal", text)
    tokens = list(_TOKEN_RE.finditer(norm))

    # The model's own donation verbs before anyone else's, so that "The game asks me to give part of
    # my $10. I donate 3." parses as 3.
    verbs = sorted(_DONATION_VERB.finditer(norm), key=lambda v: _verb_rank(norm, v))
    starts = [t.start() for t in tokens]
    hedged = False
    for verb in verbs:
        result = _amount_for_verb(verb, tokens, starts, norm, text, endowment)
        if result == "hedged":
            hedged = True
        elif result is not None:
            return result
    kept = _amount_kept(tokens, norm, text, endowment)
    if kept is not None:
        return kept
    if _NO_DONATION.search(norm):
        return ParsedAnswer(0, "ok", text)
    if is_refusal(norm):
        return ParsedAnswer(None, "refusal", text)
    if hedged:
        # The only amount is bounded by a negated verb: taking it as "the first integer" would
        # turn "I won't donate more than $5" into a donation of 5.
        return ParsedAnswer(None, "unparseable", text)

    bare = re.sub(r"[\s*_`'\".!]+", " ", norm).strip().lower()
    for t in tokens:
        if t.group("special") and " ".join(t.group("special").lower().split()) != bare:
            continue  # "Considering everything, ...": only a bare "nothing" is an amount here
        if (
            t.group("word")
            and t.group("word").lower() == "one"
            and bare != "one"
            and not _DOLLARS_AFTER.match(norm, t.end())
        ):
            continue  # "one-shot", "one of the ...": not an amount
        return _finish_donation(t, norm, text, endowment)
    return ParsedAnswer(None, "unparseable", text)
