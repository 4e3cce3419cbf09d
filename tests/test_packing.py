"""Shared-prefix packs give the same loss and gradients as the ordinary per-example batch."""

from __future__ import annotations

import pytest
import torch

from conftest import perturbed_lora
from stratdistill.finetune import IGNORE_INDEX, tokenize_example
from stratdistill.packing import PackCollator, build_packs, pack_attention_mask, pack_loss
from stratdistill.prompts import messages_for
from stratdistill.scenarios import grid, load_library

LIB = load_library()


def _examples(answers: list[str]) -> list[dict]:
    (sc,) = grid(LIB, ["IR"], ["prison"], "x")
    msgs = messages_for(sc, "action_motivation", LIB)
    return [{"scenario": sc.key, "messages": msgs, "completion": a} for a in answers]


ANSWERS = [
    "I would choose strategy C.\n\nMutual cooperation pays 5 points each, more than 3.",
    "I would choose strategy D.",
    "I would choose strategy D.\n\nIf my coplayer picks C, D gives me 10 points instead of 5; "
    "if they pick D, "
    "3 points instead of 2.",
    "I would choose strategy C.\n\nTrust first.",
]


def _reference_loss(model, tok, examples) -> torch.Tensor:
    feats = [tokenize_example(e, tok, 4096) for e in examples]
    width = max(len(f["input_ids"]) for f in feats)
    ids = torch.full((len(feats), width), tok.pad_token_id)
    labels = torch.full((len(feats), width), IGNORE_INDEX)
    mask = torch.zeros((len(feats), width), dtype=torch.long)
    for i, f in enumerate(feats):
        n = len(f["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(f["input_ids"]), torch.tensor(f["labels"]), 1
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def _lora_grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.fixture(scope="module")
def lora(student_model):
    model, tok = student_model
    peft_model = perturbed_lora(model)
    peft_model.train()
    return peft_model, tok


def test_pack_layout_and_mask(student_tokenizer) -> None:
    packs, skipped = build_packs(_examples(ANSWERS), student_tokenizer, pack_size=3, max_length=4096)
    assert skipped == 0 and [len(p.segments) for p in packs] == [3, 1]
    pack = packs[0]
    (s0, e0), (s1, _) = pack.segments[:2]
    assert pack.position_ids[s1] == pack.prompt_len  # every answer restarts after the prompt
    assert pack.input_ids[e0 - 1] == student_tokenizer.eos_token_id
    mask = pack_attention_mask(pack, torch.float32)[0, 0]
    blocked = torch.finfo(torch.float32).min
    assert mask[s1, pack.prompt_len - 1] == 0  # an answer sees the prompt ...
    assert mask[s1 + 1, s0] == blocked  # ... but never another answer
    assert mask[s1, s1 + 1] == blocked  # and is causal within itself
    assert pack.sources[0] == pack.prompt_len - 1 and pack.targets[0] == pack.input_ids[s0]


def test_pack_loss_and_grads_match_the_per_example_batch(lora) -> None:
    model, tok = lora
    examples = _examples(ANSWERS)
    (pack,), _ = build_packs(examples, tok, pack_size=8, max_length=4096)
    model.zero_grad()
    ref = _reference_loss(model, tok, examples)
    ref.backward()
    ref_grads = _lora_grads(model)
    model.zero_grad()
    packed = pack_loss(model, PackCollator(torch.float32)([pack]))
    packed.backward()
    grads = _lora_grads(model)
    assert torch.allclose(packed, ref, rtol=1e-5), (packed.item(), ref.item())
    for name, g in ref_grads.items():
        assert torch.allclose(grads[name], g, rtol=1e-3, atol=1e-6), name


def test_without_the_mask_the_loss_differs(lora) -> None:
    """Guard against a test that cannot fail: answers attending to each other change the loss."""
    model, tok = lora
    (pack,), _ = build_packs(_examples(ANSWERS), tok, pack_size=8, max_length=4096)
    inputs = PackCollator(torch.float32)([pack])
    length = inputs["input_ids"].shape[1]
    inputs["attention_mask"] = torch.zeros(1, 1, length, length).masked_fill_(
        ~torch.ones(length, length, dtype=torch.bool).tril(), torch.finfo(torch.float32).min
    )
    with torch.no_grad():
        wrong = pack_loss(model, inputs)
        right = pack_loss(model, PackCollator(torch.float32)([pack]))
    assert abs(wrong.item() - right.item()) / right.item() > 0.01


def test_decision_loss_equals_the_answers_decision_tokens(lora) -> None:
    """The decision segment reads the student where every answer that began with the opening would make
    its decision: the decision loss with the teacher's shares equals the mean cross-entropy of those
    answers' option tokens, and the segment sees only the prompt (same logits as prompt + opening alone)."""
    from stratdistill.decision import DEFAULT_OPENING_2X2
    from stratdistill.packing import DecisionTarget, decision_loss, opening_tokens
    from stratdistill.prompts import render_chat

    model, tok = lora
    examples = _examples(ANSWERS)
    prompt = render_chat(examples[0]["messages"], tok)
    opening = opening_tokens(tok, prompt, DEFAULT_OPENING_2X2)
    c, d = (tok(f" {a}", add_special_tokens=False).input_ids[0] for a in "CD")
    target = DecisionTarget(opening, {c: 0.7, d: 0.3})
    (pack,), _ = build_packs(examples, tok, 8, 4096, {examples[0]["scenario"]: target})
    inputs = PackCollator(torch.float32)([pack])
    with torch.no_grad():
        out = model(
            input_ids=inputs["input_ids"],
            position_ids=inputs["position_ids"],
            attention_mask=inputs["attention_mask"],
            logits_to_keep=inputs["sources"],
        ).logits[0]
        alone = model(
            input_ids=torch.tensor([tok(prompt, add_special_tokens=False).input_ids + opening])
        ).logits
    assert torch.allclose(out[-1], alone[0, -1], atol=1e-4)
    # 10 answers "<opening> C..." x 7 and "<opening> D..." x 3: mean CE of their option tokens
    logp = torch.log_softmax(alone[0, -1], dim=-1)
    answers_ce = -(7 * logp[c] + 3 * logp[d]) / 10
    got = decision_loss(out[-1:], inputs["decision_ids"], inputs["decision_shares"], temperature=1.0)
    assert got.item() == pytest.approx(answers_ce.item(), rel=1e-4)
    # and pack_loss adds it, weighted, to the text loss
    with torch.no_grad():
        text_only = pack_loss(model, PackCollator(torch.float32)([build_packs(examples, tok, 8, 4096)[0][0]]))
        both = pack_loss(model, inputs, decision_weight=2.0, temperature=1.0)
    assert both.item() == pytest.approx(text_only.item() + 2.0 * got.item(), rel=1e-4)


def test_decision_pack_reads_each_games_decision_as_a_separate_pass_would(lora) -> None:
    """The four games of a context in one decision pack (their prompts' common tokens once): each
    segment's last row has the logits of that game's prompt + opening run alone, and the pack is much
    shorter than the four prompts."""
    from stratdistill.decision import DEFAULT_OPENING_2X2
    from stratdistill.packing import DecisionTarget, build_decision_packs, opening_tokens
    from stratdistill.prompts import render_chat

    model, tok = lora
    games = ["prison", "delight", "staghunt", "snowdrift"]
    group, alone = [], []
    for sc in grid(LIB, ["team"], games, "x"):
        prompt = render_chat(messages_for(sc, "action_motivation", LIB), tok)
        ids = tok(prompt, add_special_tokens=False).input_ids
        opening = opening_tokens(tok, prompt, DEFAULT_OPENING_2X2)
        group.append((ids, DecisionTarget(opening, {1: 0.5, 2: 0.5})))
        alone.append(ids + opening)
    (pack,) = build_decision_packs([group], max_length=4096)
    assert len(pack.decisions) == 4 and len(pack.input_ids) < 0.6 * sum(map(len, alone))
    inputs = PackCollator(torch.float32)([pack])
    with torch.no_grad():
        rows = model(
            input_ids=inputs["input_ids"],
            position_ids=inputs["position_ids"],
            attention_mask=inputs["attention_mask"],
            logits_to_keep=inputs["sources"],
        ).logits[0]
        for i, ids in enumerate(alone):
            ref = model(input_ids=torch.tensor([ids])).logits[0, -1]
            assert torch.allclose(rows[i], ref, atol=1e-4), i
    # a pack over the length limit is split, never truncated
    assert len(build_decision_packs([group], max_length=len(alone[0]) + 300)) > 1


def test_gradient_checkpointing_keeps_the_pack_loss_and_grads_exact(lora) -> None:
    """train.gradient_checkpointing recomputes each layer in the backward pass (non-reentrant, as
    finetune sets it): the 4-D pack mask and position ids must reach the recomputation unchanged."""
    model, tok = lora
    examples = _examples(ANSWERS)
    (pack,), _ = build_packs(examples, tok, pack_size=8, max_length=4096)
    model.zero_grad()
    ref = pack_loss(model, PackCollator(torch.float32)([pack]))
    ref.backward()
    ref_grads = _lora_grads(model)
    mlp = model.get_base_model().model.layers[0].mlp  # runs inside the checkpointed layer
    calls, forward = [], mlp.forward

    def counted(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    mlp.forward = counted  # an instance attribute: a hook would not see the recomputation
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    try:
        model.zero_grad()
        packed = pack_loss(model, PackCollator(torch.float32)([pack]))
        packed.backward()
    finally:
        model.gradient_checkpointing_disable()
        del mlp.forward
    assert len(calls) == 2  # the layer ran again in the backward pass: checkpointing was on
    assert torch.allclose(packed, ref, rtol=1e-6)
    for name, g in ref_grads.items():
        assert torch.allclose(_lora_grads(model)[name], g, rtol=1e-4, atol=1e-7), name
