"""What both parsers share: the result type, text normalisation, sentence bounds, hypotheticals, refusals.

The action parser (:mod:`stratdistill.parsing.actions`) and the donation parser
(:mod:`stratdistill.parsing.donations`) read different things out of an answer, but they agree on what an
answer *is*: a :class:`ParsedAnswer` that keeps the raw text and says why a value is missing, the same
length-preserving normalisation (so match positions are valid in the raw text), the same notion of a
sentence and a clause, the same test for "if I choose ..." and questions, and the same refusal language.
Keeping those here means the two parsers cannot drift apart on them.
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
    "clause_prefix",
    "is_hypothetical_or_question",
    "is_refusal",
    "normalise",
    "sentence_bounds",
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


def normalise(text: str) -> str:
    """Fold typographic quotes, dashes and spaces to ASCII, one character for one (positions survive)."""
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


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
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


def clause_prefix(text: str, pos: int) -> str:
    """Text from the last clause break before ``pos`` up to ``pos`` (at most 200 characters)."""
    b = _boundaries(text)
    i = bisect.bisect_right(b.clause_starts, pos)
    last = b.clause_starts[i - 1] if i else 0
    return text[max(last, pos - _MAX_CLAUSE_PREFIX) : pos]


def is_hypothetical_or_question(text: str, start: int, end: int) -> bool:
    """Skip "If I choose C, ..." and "Should I choose C?": neither states a decision."""
    if _HYPOTHETICAL.search(clause_prefix(text, start)):
        return True
    _, e = sentence_bounds(text, start, end)
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


def is_refusal(text: str) -> bool:
    """Empty text or refusal language ("As an AI ...", "I cannot choose")."""
    return not text.strip() or bool(_REFUSAL_RE.search(text))
