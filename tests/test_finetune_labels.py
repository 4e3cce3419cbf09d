"""Exactly which tokens carry labels: the prompt never does, the answer does, and it ends with eos."""

from __future__ import annotations

from stratdistill.dataset import training_examples
from stratdistill.finetune import IGNORE_INDEX, tokenize_example
from stratdistill.prompts import messages_for, render_chat
from stratdistill.scenarios import grid, load_library

LIB = load_library()
(SC,) = grid(LIB, ["team"], ["snowdrift"], "x")
RAW = "I would choose strategy C.\n\nWe both get 5 points if we cooperate.\n\nThat beats 2 points."


def _rows() -> list[dict]:
    msgs = messages_for(SC, "action_motivation", LIB)
    base = {"scenario": SC.key, "messages": msgs, "parse_status": "ok", "value": "C", "raw": RAW}
    return [base, {**base, "parse_status": "unparseable", "value": None, "raw": "hmm"}]


def test_pad_is_not_eos(student_tokenizer) -> None:
    assert student_tokenizer.pad_token_id is not None
    assert student_tokenizer.pad_token_id != student_tokenizer.eos_token_id


def test_labels_cover_exactly_the_answer_and_end_with_eos(student_tokenizer) -> None:
    tok = student_tokenizer
    (example,) = training_examples(_rows(), motivations=True, per_scenario=None)
    feat = tokenize_example(example, tok, 4096)
    prompt_len = len(tok(render_chat(example["messages"], tok), add_special_tokens=False).input_ids)
    labels = feat["labels"]
    assert labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert IGNORE_INDEX not in labels[prompt_len:]
    assert labels[-1] == tok.eos_token_id
    assert tok.decode(labels[prompt_len:-1]) == RAW


def test_action_only_arm_keeps_only_the_decision(student_tokenizer) -> None:
    (example,) = training_examples(_rows(), motivations=False, per_scenario=None)
    assert example["completion"] == "I would choose strategy C."
    feat = tokenize_example(example, student_tokenizer, 4096)
    answer = [t for t in feat["labels"] if t != IGNORE_INDEX]
    assert student_tokenizer.decode(answer[:-1]) == "I would choose strategy C."
    assert answer[-1] == student_tokenizer.eos_token_id


def test_unparseable_answers_are_not_trained_on_and_per_scenario_caps() -> None:
    rows = _rows() * 5
    assert len(training_examples(rows, motivations=True, per_scenario=None)) == 5
    assert len(training_examples(rows, motivations=True, per_scenario=2)) == 2


def _game_rows() -> list[dict]:
    """Four answers in one game (two C, two D) with distinct motivations."""
    msgs = messages_for(SC, "action_motivation", LIB)
    out = []
    for i, action in enumerate(["C", "C", "D", "D"]):
        raw = f"I would choose strategy {action}.\n\nReason number {i} for {action}."
        out.append(
            {
                "scenario": SC.key,
                "game": SC.game.key,
                "messages": msgs,
                "parse_status": "ok",
                "value": action,
                "raw": raw,
            }
        )
    return out


def test_motivation_first_arm_puts_the_decision_last() -> None:
    ex = training_examples(_game_rows(), motivations=True, per_scenario=None, order="motivation_first")
    assert ex[0]["completion"] == "Reason number 0 for C.\n\nI would choose strategy C."


def test_shuffled_motivations_keep_the_action_and_swap_the_reason() -> None:
    rows = _game_rows()
    ex = training_examples(rows, motivations=True, per_scenario=None, shuffle_motivations=True, seed=3)
    for row, e in zip(rows, ex, strict=True):
        decision, reason = e["completion"].split("\n\n")
        assert decision == f"I would choose strategy {row['value']}."
        assert reason.endswith(f"for {row['value']}.")  # a motivation written for the same action
        assert reason != row["raw"].split("\n\n")[1]  # but never the answer's own
    assert ex == training_examples(
        rows, motivations=True, per_scenario=None, shuffle_motivations=True, seed=3
    )
