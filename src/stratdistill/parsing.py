"""Robust parsing of free-text LLM answers to one-shot game prompts.

Two kinds of answers are parsed:

* two-player games, where the model picks one strategy letter (normally ``"C"`` or ``"D"``);
* the donation game, where the model states how many whole dollars (``0..endowment``) it donates.

Real model output is messy: markdown, reasoning before or after the decision, hypotheticals that
mention the other option ("if my coplayer chose D ..."), refusals. The parsers therefore never
drop an answer silently: every result keeps the raw text unchanged and carries a status, so that
downstream statistics can report how many answers were ambiguous, refused or unparseable instead
of quietly biasing the rates they compute.

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

import bisect
import functools
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ParseStatus",
    "ParsedAnswer",
    "parse_action",
    "parse_donation",
    "split_action_and_motivation",
]

ParseStatus = Literal["ok", "ambiguous", "refusal", "unparseable", "out_of_range"]
"""Outcome of a parse; anything but ``"ok"`` means there is no usable value."""


@dataclass(frozen=True)
class ParsedAnswer:
    """One parsed model answer.

    The raw text is kept unchanged so that every answer can be audited or re-parsed later, and the
    status says why a value is missing instead of dropping the answer.
    """

    value: str | int | None
    """``"C"``/``"D"`` (an element of the options) for actions, ``int`` for donations; ``None`` unless ok."""
    status: ParseStatus
    """How the parse went; ``"ok"`` exactly when :attr:`value` is not ``None``."""
    raw: str
    """The model's answer exactly as given."""

    def __post_init__(self) -> None:
        # Enforce the invariant "value is None iff not ok" so consumers can rely on it.
        if (self.status == "ok") != (self.value is not None):
            raise ValueError(f"inconsistent ParsedAnswer: status={self.status!r} with value={self.value!r}")

    @property
    def ok(self) -> bool:
        """Whether a usable value was parsed (status ``"ok"``)."""
        return self.status == "ok"


# ---------------------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------------------

# Length-preserving normalisation (one character to one character), so that match positions in the
# normalised text are valid positions in the raw text too.
_NORMALISE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\uff04": "$",
    }
)


def _normalise(text: str) -> str:
    return text.translate(_NORMALISE)


_ABBREVIATIONS = frozenset({"i.e", "e.g", "etc", "vs", "cf", "approx", "mr", "ms", "dr", "no"})
_SENTENCE_END = re.compile(r"[.!?](?=\s|\Z)|\n")


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the '.' at ``dot`` ends an abbreviation like 'i.e.' rather than a sentence."""
    if text[dot] != ".":
        return False
    m = re.search(r"([A-Za-z.]+)\Z", text[max(0, dot - 12) : dot])
    return bool(m) and m.group(1).lower().strip(".") in _ABBREVIATIONS


@dataclass(frozen=True)
class _Boundaries:
    """Sentence and clause boundaries of one text, precomputed so that per-match look-ups are
    logarithmic: answers can be long and hold hundreds of candidate statements."""

    sentence_starts: tuple[int, ...]  # where the text after each terminator begins
    sentence_ends: tuple[int, ...]  # sentence end (past '.', before a newline) for each terminator
    terminator_starts: tuple[int, ...]
    clause_starts: tuple[int, ...]


_CLAUSE_BREAK = re.compile(r"[.!?;:,\n]")


@functools.lru_cache(maxsize=16)
def _boundaries(text: str) -> _Boundaries:
    terminators = [m for m in _SENTENCE_END.finditer(text) if not _is_abbreviation(text, m.start())]
    return _Boundaries(
        sentence_starts=tuple(m.end() for m in terminators),
        sentence_ends=tuple(m.start() if m.group() == "\n" else m.end() for m in terminators),
        terminator_starts=tuple(m.start() for m in terminators),
        clause_starts=tuple(m.end() for m in _CLAUSE_BREAK.finditer(text)),
    )


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Bounds of the sentence (or line) around ``text[start:end]``; the end includes its terminator."""
    b = _boundaries(text)
    i = bisect.bisect_right(b.sentence_starts, start)
    s = b.sentence_starts[i - 1] if i else 0
    j = bisect.bisect_left(b.terminator_starts, end)
    e = b.sentence_ends[j] if j < len(b.terminator_starts) else len(text)
    return s, e


_HYPOTHETICAL = re.compile(
    r"\b(?:if|when|whenever|whether|suppose|supposing|assuming|assume|unless|in\s+case|imagine)\b",
    re.IGNORECASE,
)
_MAX_CLAUSE_PREFIX = 200


def _clause_prefix(text: str, pos: int) -> str:
    """Text from the last clause break before ``pos`` up to ``pos`` (at most 200 characters)."""
    b = _boundaries(text)
    i = bisect.bisect_right(b.clause_starts, pos)
    last = b.clause_starts[i - 1] if i else 0
    return text[max(last, pos - _MAX_CLAUSE_PREFIX) : pos]


def _is_hypothetical_or_question(text: str, start: int, end: int) -> bool:
    """Skip "If I choose C, ..." and "Should I choose C?": neither states a decision."""
    if _HYPOTHETICAL.search(_clause_prefix(text, start)):
        return True
    _, e = _sentence_bounds(text, start, end)
    return text[:e].rstrip().endswith("?")


# Refusal language. Checked only after no decision was found, so "As an AI I have no preferences,
# but I choose C" still parses as C.
_REFUSAL_VERBS = (
    r"(?:choose|choosing|pick|select|decide|make|play|participate|answer|respond|engage|take\s+part|"
    r"provide|express|comply|help|assist|feel|have|say|determine|specify|commit|"
    r"endorse|state|indicate|share|simulate|pretend|role-?play)"
)
_REFUSAL_RE = re.compile(
    r"\bas\s+an?\s+(?:ai|a\.i\.|artificial\s+intelligence|(?:large\s+)?language\s+model|llm|assistant|"
    r"ai\s+(?:language\s+)?model)\b"
    r"|\bI(?:'m|\s+am)\s+(?:sorry|afraid)\b"
    r"|\b(?:sorry|apologies),?\s+but\b"
    r"|\bI\s+(?:must\s+|have\s+to\s+|will\s+|'ll\s+)?(?:apologi[sz]e|refuse|decline)\b"
    # "I cannot ...", "I'm not able to ...": inability, including "I cannot donate".
    r"|\b(?:I|we)(?:\s+(?:cannot|can\s*not|can't)|(?:'m|\s+am)\s+(?:not\s+able|unable|not\s+in\s+a\s+position|"
    r"not\s+comfortable))\b(?:\s+[\w']+){0,4}?\s+(?:" + _REFUSAL_VERBS + r"|donate|contribute|give)\b"
    # "I won't pick", "I don't have preferences": unwillingness (but "I won't donate" is a donation of 0).
    r"|\b(?:I|we)(?:\s+(?:won't|will\s+not|wouldn't|would\s+not|don't|do\s+not|prefer\s+not)|"
    r"(?:'m|\s+am)\s+not\s+going|(?:'d|\s+would)\s+(?:rather|prefer)\s+not)\b"
    r"(?:\s+[\w']+){0,4}?\s+" + _REFUSAL_VERBS + r"\b",
    re.IGNORECASE,
)


def _is_refusal(text: str) -> bool:
    return not text.strip() or bool(_REFUSAL_RE.search(text))


# ---------------------------------------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------------------------------------

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
            if not _is_hypothetical_or_question(text, h.start, h.end)
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
        if not _is_hypothetical_or_question(text, m.start(), m.end()):
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
    norm = _normalise(text)
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
    if _is_refusal(norm):
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
    norm = _normalise(stripped)
    _, hit = _find_action(norm, ("C", "D"))
    # The sentence holding the decision; without one, the first sentence or line.
    start, end = (
        _sentence_bounds(norm, hit.start, hit.end) if hit is not None else _sentence_bounds(norm, 0, 0)
    )
    action = stripped[start:end].strip()
    before = stripped[:start].strip()
    after = stripped[end:].strip()
    motivation = f"{before}\n\n{after}" if before and after else before or after
    return action, motivation


# ---------------------------------------------------------------------------------------------------------
# Donations
# ---------------------------------------------------------------------------------------------------------

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
    own = bool(_OWN.search(_clause_prefix(text, verb.start())))
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
    sentence_start, _ = _sentence_bounds(text, verb.start(), verb.start())
    after = _tokens_between(tokens, starts, verb.end(), sentence_end)
    prefix = _clause_prefix(text, verb.start())
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
    norm = _normalise(text)
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
    if _is_refusal(norm):
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
