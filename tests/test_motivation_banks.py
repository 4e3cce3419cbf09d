"""The stand-in teacher's sentence banks load from their data files and every sentence can be worded.

A placeholder typo in a YAML file would otherwise only fail when a seed happens to pick that sentence.
"""

from __future__ import annotations

import string

from stratdistill.teachers.motivation_banks import (
    DONATION_CONDITIONS,
    TWO_BY_TWO_CONDITIONS,
    donation_banks,
    two_by_two_banks,
)

TWO_BY_TWO_FIELDS = {"R", "S", "T", "P", "minC", "minD", "co", "Co", "stake"}
DONATION_FIELDS = {"A", "E", "keep", "m", "n", "r", "g", "full", "match", "names", "Names", "stake"}


def placeholders(sentence: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(sentence) if name is not None}


def test_two_by_two_banks_cover_every_condition_and_use_known_placeholders() -> None:
    banks = two_by_two_banks()
    reasons = [r for a in "CD" for r in (*banks.reasons[a], *banks.concessions[a])]
    assert sorted(r.key for r in reasons) == sorted(TWO_BY_TWO_CONDITIONS)
    sentences = [s for r in reasons for s in r.bank] + list(banks.openers)
    for bank in (banks.closers, banks.stake_lines, banks.points_lines):
        assert set(bank) == {"C", "D"}
        sentences += [s for a in "CD" for s in bank[a]]
    for s in sentences:
        assert placeholders(s) <= TWO_BY_TWO_FIELDS, s


def test_donation_banks_cover_every_condition_and_use_known_placeholders() -> None:
    banks = donation_banks()
    assert sorted(k for k, _ in banks.reasons) == sorted(DONATION_CONDITIONS)
    sentences = [s for _, bank in banks.reasons for s in bank]
    sentences += [*banks.mechanics, *banks.openers, *banks.stake_lines, *banks.closers]
    for s in sentences:
        assert placeholders(s) <= DONATION_FIELDS, s


def test_banks_are_read_once() -> None:
    assert two_by_two_banks() is two_by_two_banks()
    assert donation_banks() is donation_banks()
