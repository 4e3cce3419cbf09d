"""Prompt rendering is stable and goes through the model's own chat template."""

from __future__ import annotations

import hashlib

from stratdistill.prompts import PROMPT_VERSION, messages_for, render_chat, template_id
from stratdistill.scenarios import grid, load_library

LIB = load_library()


def _digest(obj: object) -> str:
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def test_messages_have_the_designed_structure() -> None:
    (sc,) = grid(LIB, ["IR"], ["prison"], "x")
    system, user = messages_for(sc, "action_motivation", LIB)
    assert system["role"] == "system" and user["role"] == "user"
    assert system["content"].startswith("Take part in the situation")
    assert "delegate" in system["content"] and "coplayer" in system["content"]
    assert "you get 10 points and your coplayer gets 2 points" in user["content"]
    assert user["content"].endswith("Think it through step by step.")
    only = messages_for(sc, "action_only", LIB)[1]["content"]
    assert "exactly one letter, C or D" in only and "reasoning" not in only


def test_prompt_texts_are_pinned() -> None:
    """Any edit to a prompt text must bump PROMPT_VERSION (it keys every cached artifact)."""
    scenarios = grid(LIB, sorted(LIB.contexts), ["prison", "staghunt"], "x") + grid(
        LIB, [], ["donation"], "x"
    )
    texts = [messages_for(s, i, LIB) for s in scenarios for i in ("action_only", "action_motivation")]
    assert PROMPT_VERSION == "1"
    assert _digest(texts) == EXPECTED_DIGEST, (
        "prompt texts changed: bump PROMPT_VERSION and update the digest"
    )


def test_rendering_uses_the_students_chat_template(student_tokenizer) -> None:
    (sc,) = grid(LIB, ["biz"], ["delight"], "x")
    rendered = render_chat(messages_for(sc, "action_only", LIB), student_tokenizer)
    assert rendered.startswith("<|im_start|>system\nTake part in the situation")
    assert rendered.endswith("<|im_start|>assistant\n")
    assert "You are a helpful AI assistant" not in rendered  # our system prompt replaces the default
    assert rendered == render_chat(messages_for(sc, "action_only", LIB), student_tokenizer)
    assert len(template_id(student_tokenizer)) == 12


EXPECTED_DIGEST = "7621ed0987e05a14"
