"""Tests for stratdistill.parsing: real-looking, messy model answers and their expected parses."""

from __future__ import annotations

import dataclasses

import pytest

from stratdistill.parsing import (
    ParsedAnswer,
    parse_action,
    parse_donation,
    split_action_and_motivation,
)

# (answer text, expected value, expected status)
ACTION_CASES: list[tuple[str, str | None, str]] = [
    # Bare answers and markdown.
    ("C", "C", "ok"),
    ("D.", "D", "ok"),
    ("  c  ", "C", "ok"),
    ("'C'", "C", "ok"),
    ("`D`", "D", "ok"),
    ("**D**", "D", "ok"),
    ("**D**\n\nDefecting protects me against exploitation.", "D", "ok"),
    ("D. Because defection is the dominant strategy.", "D", "ok"),
    ("D, because I cannot trust the other player.", "D", "ok"),
    ("**Strategy C** - I'll cooperate because trust matters.", "C", "ok"),
    # Labels.
    ("Strategy: C", "C", "ok"),
    ("Answer: **C**", "C", "ok"),
    ("**Answer:** D", "D", "ok"),
    ("**Answer**: c", "C", "ok"),
    ("My answer is (D)", "D", "ok"),
    ("My final answer: D", "D", "ok"),
    ("Decision: D\nReasoning: C would be exploited if the coplayer defects.", "D", "ok"),
    ("Option D", "D", "ok"),
    # Choice verbs; the first decision wins even when reasoning names the other letter.
    ("I would choose strategy C.\n\nReasoning: if the coplayer picks D, I get 0 points.", "C", "ok"),
    ("I would choose strategy C. If my coplayer chose D I would get 2 points", "C", "ok"),
    ("i choose d", "D", "ok"),
    ("I'd go with C", "C", "ok"),
    ("I\u2019d choose C", "C", "ok"),  # typographic apostrophe
    ("I'm going to choose option C", "C", "ok"),
    ("I'll play D", "D", "ok"),
    ("I select: **D**", "D", "ok"),
    ("I choose option 'D' (defect).", "D", "ok"),
    ("I'd choose D. I know C is nicer, but I can't risk it.", "D", "ok"),
    ("I pick C and my partner picks D.", "C", "ok"),
    ("Choose D.", "D", "ok"),
    ("As an AI, I have no personal stake, but I would choose C.", "C", "ok"),
    ("I won't pick D. I pick C.", "C", "ok"),
    # Reasoning first, decision last: hypotheticals ("If I choose C") are not decisions.
    (
        "Let me think. If I choose C, we both get 3 points. If I choose D and they cooperate, "
        "I get 5 points. Therefore, I choose D.",
        "D",
        "ok",
    ),
    ("Strategy C gives 3 each, strategy D gives up to 5. I'd pick D.", "D", "ok"),
    ("The dominant strategy is D, but I choose C.", "C", "ok"),
    ("C or D? I choose C", "C", "ok"),
    ("I think I'll go with strategy D since C is risky.", "D", "ok"),
    # Marked mentions without a choice verb.
    ("Cooperate (C)", "C", "ok"),
    ("The best choice would be D.", "D", "ok"),
    ("I choose a strategy that maximizes my expected payoff: D", "D", "ok"),
    # Both options named without a decision.
    ("either C or D", None, "ambiguous"),
    ("C/D", None, "ambiguous"),
    ("Should I choose C or D? It is hard to say.", None, "ambiguous"),
    ("Both C and D have their merits here.", None, "ambiguous"),
    # Word fallback (only when no option letter appears at all).
    ("I think cooperation is best", "C", "ok"),
    ("I will defect.", "D", "ok"),
    ("I choose to cooperate.", "C", "ok"),
    ("I don't think defecting is right, so cooperation it is.", "C", "ok"),
    ("Cooperation is nice but defection pays more.", None, "ambiguous"),
    ("My choice: Cooperate", "C", "ok"),
    # Refusals.
    ("", None, "refusal"),
    ("   \n  ", None, "refusal"),
    ("I cannot choose", None, "refusal"),
    ("As an AI, I don't have personal preferences.", None, "refusal"),
    ("I'm not able to make this decision.", None, "refusal"),
    ("I won't pick", None, "refusal"),
    ("I'm sorry, but I can't participate in this game.", None, "refusal"),
    ("I'd rather not say.", None, "refusal"),
    # Nothing usable: letters inside words or in unrelated phrases never count.
    ("Vitamin D is good for you.", None, "unparseable"),
    ("The weather is nice today.", None, "unparseable"),
    ("I would not cooperate.", None, "unparseable"),  # negation is not turned into the other option
]

DONATION_CASES: list[tuple[str, int | None, str]] = [
    ("$7", 7, "ok"),
    ("$7.", 7, "ok"),
    ("7", 7, "ok"),
    ("0", 0, "ok"),
    ("**6**", 6, "ok"),
    ("seven", 7, "ok"),
    ("seven dollars", 7, "ok"),
    ("I would donate $7 to the party fund.", 7, "ok"),
    ("I'd donate 7", 7, "ok"),
    ("I'd donate 7 dollars", 7, "ok"),
    ("Donation: 5", 5, "ok"),
    ("I will contribute $10 to the fund", 10, "ok"),
    ("Out of my $10, I would donate $4", 4, "ok"),
    ("Given the multiplier 2.5, I donate 5", 5, "ok"),
    ("After careful thought, my donation is $3 out of $10.", 3, "ok"),
    ("The game asks me to give part of my $10. I donate 3.", 3, "ok"),
    ("$4 is what I would donate.", 4, "ok"),
    ("I would like to donate:\n\n**$6**", 6, "ok"),
    ("I would donate $7.00", 7, "ok"),
    ("I keep $6 and donate $4.", 4, "ok"),
    ("I'll keep $6 for myself.", 4, "ok"),
    ("This is a one-shot game, so 6.", 6, "ok"),
    ("I'd give one dollar.", 1, "ok"),
    ("I'd donate everything.", 10, "ok"),
    ("I'd donate half", 5, "ok"),
    ("I would donate $7 to 3 people", 7, "ok"),
    # Not donating is a legitimate move: 0, not a refusal.
    ("nothing", 0, "ok"),
    ("Nothing.", 0, "ok"),
    ("I would not donate anything", 0, "ok"),
    ("I won't donate.", 0, "ok"),
    ("I would donate nothing.", 0, "ok"),
    ("I'd make no donation.", 0, "ok"),
    # Not whole dollars, ranges, hedges.
    ("$7.50", None, "unparseable"),
    ("I would donate $7.50 to the fund.", None, "unparseable"),
    ("Hmm, 2.5", None, "unparseable"),
    ("I'd give 50%", None, "unparseable"),
    ("I do not want to donate more than 2 dollars", None, "unparseable"),
    ("I'd donate 5-7 dollars", None, "ambiguous"),
    ("I donate 5 or 6", None, "ambiguous"),
    ("I'd donate between 3 and 5", None, "ambiguous"),
    # Out of range.
    ("11", None, "out_of_range"),
    ("-2", None, "out_of_range"),
    ("I would donate -2 dollars", None, "out_of_range"),
    ("I'd donate $12", None, "out_of_range"),
    ("twelve", None, "out_of_range"),
    # Refusals and nothing usable.
    ("", None, "refusal"),
    ("I cannot donate.", None, "refusal"),
    ("I cannot decide how to split my $10.", None, "refusal"),
    ("As an AI, I don't have money.", None, "refusal"),
    ("That is a hard question.", None, "unparseable"),
]


@pytest.mark.parametrize(("text", "value", "status"), ACTION_CASES)
def test_parse_action(text: str, value: str | None, status: str) -> None:
    parsed = parse_action(text)
    assert (parsed.value, parsed.status) == (value, status)
    assert parsed.raw == text


@pytest.mark.parametrize(("text", "value", "status"), DONATION_CASES)
def test_parse_donation(text: str, value: int | None, status: str) -> None:
    parsed = parse_donation(text)
    assert (parsed.value, parsed.status) == (value, status)
    assert parsed.raw == text


def test_tables_are_large_enough() -> None:
    assert len(ACTION_CASES) >= 40
    assert len(DONATION_CASES) >= 40


@pytest.mark.parametrize(
    "parsed",
    [parse_action(t) for t, _, _ in ACTION_CASES] + [parse_donation(t) for t, _, _ in DONATION_CASES],
)
def test_value_is_none_iff_not_ok(parsed: ParsedAnswer) -> None:
    assert parsed.ok == (parsed.status == "ok")
    assert (parsed.value is None) == (not parsed.ok)
    if parsed.ok and isinstance(parsed.value, str):
        assert parsed.value in ("C", "D")
    if parsed.ok and isinstance(parsed.value, int):
        assert 0 <= parsed.value <= 10


def test_raw_is_kept_byte_for_byte() -> None:
    text = "  **Answer:** D\u2019s the one \u2014 I\u2019d choose D.\r\n\n"
    assert parse_action(text).raw == text
    assert parse_donation(text).raw == text
    assert parse_action(text).value == "D"


def test_parsed_answer_rejects_inconsistent_value_and_status() -> None:
    with pytest.raises(ValueError):
        ParsedAnswer(value="C", status="ambiguous", raw="C")
    with pytest.raises(ValueError):
        ParsedAnswer(value=None, status="ok", raw="")
    parsed = ParsedAnswer(value=3, status="ok", raw="3")
    assert parsed.ok
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.value = 4  # type: ignore[misc]


def test_donation_respects_endowment() -> None:
    assert parse_donation("I donate $15", endowment=20).value == 15
    assert parse_donation("I donate $15", endowment=10).status == "out_of_range"
    assert parse_donation("I'd donate half", endowment=7).status == "unparseable"
    assert parse_donation("I'd donate everything", endowment=20).value == 20
    with pytest.raises(ValueError):
        parse_donation("5", endowment=-1)


def test_custom_options() -> None:
    options = ("A", "B")
    assert parse_action("A", options).value == "A"
    assert parse_action("I choose B because A is risky.", options).value == "B"
    # The article "a" is never read as option A, and the word fallback is only for C/D.
    assert parse_action("I choose a strategy that is fair to both.", options).status == "unparseable"
    assert parse_action("I think cooperation is best", options).status == "unparseable"
    # A letter that is not an option is not an answer.
    assert parse_action("I choose C", options).status == "unparseable"
    with pytest.raises(ValueError):
        parse_action("C", ())


def test_value_is_the_given_option_spelling() -> None:
    assert parse_action("i choose d", ("c", "d")).value == "d"


@pytest.mark.parametrize(
    ("text", "action", "motivation"),
    [
        (
            "I would choose strategy C.\n\nBecause mutual cooperation pays 3 each.",
            "I would choose strategy C.",
            "Because mutual cooperation pays 3 each.",
        ),
        ("**C**\n\nBecause trust.", "**C**", "Because trust."),
        ("D. Because it dominates.", "D.", "Because it dominates."),
        ("C", "C", ""),
        ("", "", ""),
        (
            "I choose C, i.e. cooperate. If they pick D I lose.",
            "I choose C, i.e. cooperate.",
            "If they pick D I lose.",
        ),
        (
            "Let me think. If I choose C, we get 3. Therefore, I choose D. That's final.",
            "Therefore, I choose D.",
            "Let me think. If I choose C, we get 3.\n\nThat's final.",
        ),
        ("Hello there.\nNo decision here.", "Hello there.", "No decision here."),
    ],
)
def test_split_action_and_motivation(text: str, action: str, motivation: str) -> None:
    assert split_action_and_motivation(text) == (action, motivation)
