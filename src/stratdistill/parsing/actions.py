"""Parsing of a two-player game answer: which strategy letter (normally ``"C"`` or ``"D"``) it chose.

Kept apart from the donation parser because the two share almost nothing but the helpers in
:mod:`stratdistill.parsing.common`: here the hard part is telling a decision from the reasoning around it,
which names the other option too ("if my coplayer chose D ...").

Design of :func:`parse_action` (the decision is normally stated first, reasoning comes later):

1. *Explicit decisions* (tier 1), scanned in text order: a first-person or imperative choice verb
   ("I would choose strategy C", "I'd go with D", "Choose C."), a label ("Answer: C",
   "My answer is (D)", "Strategy: C"), or an option standing alone at the very start of the
   answer ("C", "**D**", "D. Because ...", "'C'"). Hypotheticals ("If I choose C, ...") and
   questions ("Should I choose C?") are not decisions and are skipped.
2. *Marked mentions* (tier 2), scanned in text order: "strategy X", "option X", "**X**", "(X)",
   "'X'", a line starting with "X.", a verdict ("the best choice would be X"), a line ending in
   ": X" -- used only when tier 1 found nothing decisive. Here, too, the first one wins: "defecting
   (D) is dominant, but mutual cooperation (C) is better." parses as D.
3. The first statement naming exactly one option wins, even if the rest of the text names the
   other one. Statements naming several ("C or D", "either C or D", "C/D") are *ambiguous*; they
   only give status ``"ambiguous"`` when nothing decisive is found anywhere.
4. Only when no option letter was found at all: when the options are ``("C", "D")``, the words
   "cooperate"/"defect" (and their forms) are mapped to C/D -- first a first-person statement
   ("I will cooperate"), then, after refusal detection, a loose mention ("I think cooperation is
   best" -> C; both families mentioned -> ambiguous; negated mentions are ignored).
5. Refusals ("As an AI ...", "I cannot choose", empty text) -> ``"refusal"``; else ``"unparseable"``.

Letters are matched case-insensitively only where they clearly stand as a strategy token (after a
choice verb, label or the word "strategy"/"option", or as the whole answer); "**X**", "(X)" and
"'X'" need the upper-case letter. Lower-case "a" and "i" are never taken as options (they are
English words), and a letter inside a word never counts ("Cooperate" is not a "C").
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from stratdistill.parsing.common import (
    ParsedAnswer,
    is_hypothetical_or_question,
    is_refusal,
    normalise,
    sentence_bounds,
)

__all__ = ["parse_action", "split_action_and_motivation"]

# Decorations that may wrap an option: markdown emphasis, code ticks, quotes, brackets.
_PRE = r"[\s*_`'\"(\[]*"
_POST = r"[*_`'\")\]]*"
_SUBJECT = r"\b(?:I|we|let's|let\s+me|let\s+us)(?:'d|'ll|'m|'ve)?"
_FILLER = (
    r"(?:,?\s+(?:would|will|shall|should|must|do|am|are|have|had|has|therefore|thus|hence|then|so|"
    r"definitely|rather|also|still|now|instead|ultimately|finally|always|just|probably|certainly|clearly|"
    r"hereby|personally|again|actually|really|happily|confidently|simply|accordingly|consequently)\b,?)*"
)
_INTENT = (
    r"(?:\s+(?:(?:decide|decided|want|wish|plan|intend|like|prefer|choose|chose|opt|opted|going|"
    r"have|need|am\s+going)\s+)?to)?"
)
_CHOICE_VERB = (
    r"(?:choose|chose|choosing|pick|picked|picking|select|selected|selecting|go\s+(?:with|for)|"
    r"going\s+(?:with|for)|went\s+(?:with|for)|opt\s+for|opted\s+for|opting\s+for|play|played|playing|"
    r"take|took|taking|decide\s+on|decided\s+on|settle\s+on|settled\s+on|stick\s+with|stay\s+with|"
    r"vote\s+for|say|answer|prefer|submit|pick\s+out)"
)
_LABEL_WORD = r"(?:answer|choice|decision|selection|response|move|pick|strategy|action)"


@dataclass(frozen=True)
class _Hit:
    """One decision statement found in the text."""

    start: int
    end: int
    options: frozenset[str]


@dataclass(frozen=True)
class _ActionPatterns:
    option: re.Pattern[str]
    tier1: tuple[tuple[re.Pattern[str], bool], ...]  # (pattern, lower-case letters allowed)
    tier1_start: re.Pattern[str]
    tier2: tuple[tuple[re.Pattern[str], bool], ...]
    group: re.Pattern[str]


@functools.lru_cache(maxsize=32)
def _action_patterns(options: tuple[str, ...]) -> _ActionPatterns:
    alternation = "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))
    opt = rf"(?<![A-Za-z0-9])(?:{alternation})(?![A-Za-z0-9]|['-][A-Za-z])"
    group = (
        rf"(?P<grp>(?:either\s+)?{opt}(?:{_POST}\s*(?:,|/|\bor\b|\band\b|&|\bvs\.?|\bversus\b){_PRE}"
        rf"(?:(?:strategy|option)\s+)?{opt})*)"
    )
    keyword_prefix = rf"(?:(?:the\s+)?(?:strategy|option|action|letter|choice)\b(?:\s*[:#\-])?{_PRE})?"
    target = rf"(?:\s*[:\-])?{_PRE}{keyword_prefix}{group}"
    flags = re.IGNORECASE | re.MULTILINE
    first_person = re.compile(_SUBJECT + _FILLER + _INTENT + r"\s+" + _CHOICE_VERB + r"\b" + target, flags)
    imperative = re.compile(
        r"(?:^|(?<=[.!?:;]))[ \t*_#>\-]*(?:(?:so|therefore|thus|hence|then|ultimately|finally|overall|"
        r"in\s+conclusion|in\s+summary),?\s+)?(?:choose|pick|select|go\s+with|go\s+for|opt\s+for|play)\b"
        + target,
        flags,
    )
    label_is = re.compile(
        rf"(?:\b(?:my|our)\s+(?:final\s+)?|\bfinal\s+|\bthe\s+(?=answer)){_LABEL_WORD}[*_]*\s+"
        rf"(?:is|would\s+be|will\s+be)\b" + target,
        flags,
    )
    label_colon = re.compile(rf"\b(?:final\s+)?{_LABEL_WORD}\b[*_]*\s*[:=][*_]*" + target, flags)
    tier1_start = re.compile(
        r"\A[\s*_#>\"'`(\[]*(?:(?:strategy|option|answer|choice|decision)\b[*_]*(?:\s*[:#\-])?[\s*_\"'`(\[]*)?"
        + group
        + _POST
        + r"(?=\s*(?:[.!:;,)\-]|\Z|\n)|\s+(?:because|since|as)\b)",
        re.IGNORECASE,
    )
    keyword = re.compile(r"\b(?:strategy|option|action|choice)\b(?:\s*[:#\-])?" + _PRE + group, flags)
    bold = re.compile(
        r"(?:\*\*|__)\s*(?:(?:strategy|option)\s+)?" + group + r"\s*(?:[.!]\s*)?(?:\*\*|__)", flags
    )
    paren = re.compile(r"\(\s*" + group + r"\s*\)", flags)
    quoted = re.compile(r"(?<!\w)[\"'`]" + group + r"[\"'`](?!\w)", flags)
    line_start = re.compile(r"^[ \t*_#>\-]*" + group + r"[*_]*(?=\s*[.:)\-](?:\s|\Z)|[ \t]*$)", flags)
    # "The best choice would be D", "the dominant strategy is D": a verdict, but weaker than "I choose".
    verdict = re.compile(
        r"\b(?:choice|strategy|option|answer|move|action|decision)\s+(?:is|would\s+be|will\s+be)\b" + target,
        flags,
    )
    # "... a strategy that maximizes my payoff: D" -- an option closing a line after a colon.
    after_colon = re.compile(r":" + _PRE + group + _POST + r"[ \t]*(?:[.!][ \t]*)?$", flags)
    return _ActionPatterns(
        option=re.compile(opt, re.IGNORECASE),
        tier1=((first_person, True), (imperative, True), (label_is, True), (label_colon, True)),
        tier1_start=tier1_start,
        tier2=(
            (keyword, True),
            (verdict, True),
            (bold, False),
            (paren, False),
            (quoted, False),
            (line_start, False),
            (after_colon, False),
        ),
        group=re.compile(group),
    )


def _canonical(token: str, options: tuple[str, ...], lower_ok: bool) -> str | None:
    """Map a matched token onto its option, or None when its case rules it out."""
    if token != token.upper() and (not lower_ok or token in {"a", "i"}):
        return None
    for o in options:
        if o.upper() == token.upper():
            return o
    return None


def _hit(m: re.Match[str], pats: _ActionPatterns, options: tuple[str, ...], lower_ok: bool) -> _Hit | None:
    """The options named by one statement match, or None when case rules leave none."""
    found = {_canonical(t.group(), options, lower_ok) for t in pats.option.finditer(m.group("grp"))}
    named = frozenset(o for o in found if o is not None)
    return _Hit(m.start(), m.end(), named) if named else None


def _hits(
    pattern: re.Pattern[str], text: str, pats: _ActionPatterns, options: tuple[str, ...], lower_ok: bool
) -> list[_Hit]:
    hits = (_hit(m, pats, options, lower_ok) for m in pattern.finditer(text))
    return [h for h in hits if h is not None]


def _find_action(text: str, options: tuple[str, ...]) -> tuple[str, _Hit | None]:
    """Core of parse_action on normalised text: (status-or-option, the deciding statement)."""
    pats = _action_patterns(options)
    tier1: list[_Hit] = []
    start = pats.tier1_start.match(text)
    start_hit = _hit(start, pats, options, True) if start else None
    if start_hit is not None:
        tier1.append(start_hit)
    for pattern, lower_ok in pats.tier1:
        tier1 += [
            h
            for h in _hits(pattern, text, pats, options, lower_ok)
            if not is_hypothetical_or_question(text, h.start, h.end)
        ]
    tier2: list[_Hit] = []
    for pattern, lower_ok in pats.tier2:
        tier2 += _hits(pattern, text, pats, options, lower_ok)
    ambiguous = False
    for tier in (tier1, tier2):
        for hit in sorted(tier, key=lambda h: h.start):
            if len(hit.options) == 1:
                return next(iter(hit.options)), hit
            ambiguous = True
    if ambiguous:
        return "ambiguous", None
    # Options named together anywhere ("C or D", "between C and D") without any decision.
    for m in pats.group.finditer(text):
        hit = _hit(m, pats, options, False)
        if hit is not None and len(hit.options) > 1:
            return "ambiguous", None
    return "", None


_COOPERATE_OR_DEFECT = r"(?P<w>co-?operat\w*|defect\w*)"
_WORD_DECISION = re.compile(
    _SUBJECT
    + _FILLER
    + _INTENT
    + r"(?:\s+(?:choose|chose|pick|select|go\s+with|go\s+for|opt\s+for|play|prefer))?"
    + r"\s+(?:to\s+)?(?:the\s+)?(?:(?:strategy|option)\s+(?:of\s+|to\s+)?)?(?:mutual\s+)?"
    + _COOPERATE_OR_DEFECT
    + r"\b",
    re.IGNORECASE,
)
_WORD_MENTION = re.compile(r"(?<![\w-])" + _COOPERATE_OR_DEFECT, re.IGNORECASE)
_NEGATED_BEFORE = re.compile(r"(?:\bnot|n't|\bnever)\b(?:\s+[\w']+){0,2}\s*\Z", re.IGNORECASE)


def _word_option(word: str, options: tuple[str, ...]) -> str:
    letter = "C" if word.lower().startswith("co") else "D"
    return next(o for o in options if o.upper() == letter)


def _word_decision(text: str, options: tuple[str, ...]) -> str | None:
    for m in _WORD_DECISION.finditer(text):
        if not is_hypothetical_or_question(text, m.start(), m.end()):
            return _word_option(m.group("w"), options)
    return None


def _word_mention(text: str, options: tuple[str, ...]) -> str | None:
    """Loose fallback: the one cooperate/defect family mentioned (not negated); "ambiguous" if both."""
    found = {
        _word_option(m.group("w"), options)
        for m in _WORD_MENTION.finditer(text)
        if not _NEGATED_BEFORE.search(text[max(0, m.start() - 40) : m.start()])
    }
    if len(found) == 1:
        return found.pop()
    return "ambiguous" if found else None


def parse_action(text: str, options: tuple[str, ...] = ("C", "D")) -> ParsedAnswer:
    """Parse the strategy chosen in a two-player game answer.

    The first explicit decision statement wins, because models state the decision first and then
    reason with hypotheticals that name the other option. See the module docstring for the full
    precedence (explicit decision > marked mention > ambiguity > word fallback > refusal).

    Args:
        text: the raw model answer.
        options: the valid option tokens (default ``("C", "D")``). The returned value is the
            matching element of this tuple. The cooperate/defect word fallback only applies when the
            options are C and D.

    Returns:
        A :class:`ParsedAnswer` with value the chosen option, or ``None`` and status
        ``"ambiguous"``, ``"refusal"`` or ``"unparseable"``.
    """
    if not options or any(not o.strip() for o in options):
        raise ValueError(f"options must be non-empty strings, got {options!r}")
    norm = normalise(text)
    if not norm.strip():
        return ParsedAnswer(None, "refusal", text)
    found, _ = _find_action(norm, options)
    if found == "ambiguous":
        return ParsedAnswer(None, "ambiguous", text)
    if found:
        return ParsedAnswer(found, "ok", text)
    words_apply = sorted(o.upper() for o in options) == ["C", "D"]
    if words_apply:
        decided = _word_decision(norm, options)
        if decided:
            return ParsedAnswer(decided, "ok", text)
    if is_refusal(norm):
        return ParsedAnswer(None, "refusal", text)
    if words_apply:
        mentioned = _word_mention(norm, options)
        if mentioned == "ambiguous":
            return ParsedAnswer(None, "ambiguous", text)
        if mentioned:
            return ParsedAnswer(mentioned, "ok", text)
    return ParsedAnswer(None, "unparseable", text)


def split_action_and_motivation(text: str) -> tuple[str, str]:
    """Split an answer like 'I would choose strategy C.\\n\\nBecause ...' into
    (first sentence/line holding the decision, rest stripped).

    Training data for the student wants the decision and its motivation separately. The action part
    is the sentence (or line) that holds the decision found by :func:`parse_action` for the default
    C/D options -- usually the first one; if the answer reasons first and decides at the end, the
    motivation is the text around that sentence. Without a recognisable letter decision the first
    sentence or line is taken as the action part. Both parts are stripped; nothing else is changed.
    """
    stripped = text.strip()
    if not stripped:
        return "", ""
    norm = normalise(stripped)
    _, hit = _find_action(norm, ("C", "D"))
    # The sentence holding the decision; without one, the first sentence or line.
    start, end = sentence_bounds(norm, hit.start, hit.end) if hit is not None else sentence_bounds(norm, 0, 0)
    action = stripped[start:end].strip()
    before = stripped[:start].strip()
    after = stripped[end:].strip()
    motivation = f"{before}\n\n{after}" if before and after else before or after
    return action, motivation
