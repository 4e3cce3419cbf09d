"""Robust parsing of free-text LLM answers to one-shot game prompts.

Two kinds of answers are parsed:

* two-player games, where the model picks one strategy letter (normally ``"C"`` or ``"D"``);
* the donation game, where the model states how many whole dollars (``0..endowment``) it donates.

Real model output is messy: markdown, reasoning before or after the decision, hypotheticals that
mention the other option ("if my coplayer chose D ..."), refusals. The parsers therefore never
drop an answer silently: every result keeps the raw text unchanged and carries a status, so that
downstream statistics can report how many answers were ambiguous, refused or unparseable instead
of quietly biasing the rates they compute.

The package is split by job: :mod:`~stratdistill.parsing.actions` parses two-player answers (its
docstring documents the precedence of decisions), :mod:`~stratdistill.parsing.donations` parses donation
answers, and :mod:`~stratdistill.parsing.common` holds what both need. Import from
``stratdistill.parsing``; the submodules are an implementation detail.
"""

from stratdistill.parsing.actions import parse_action, split_action_and_motivation
from stratdistill.parsing.common import ParsedAnswer, ParseStatus
from stratdistill.parsing.donations import parse_donation

__all__ = [
    "ParseStatus",
    "ParsedAnswer",
    "parse_action",
    "parse_donation",
    "split_action_and_motivation",
]
