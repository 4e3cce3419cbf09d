"""Shared-prefix packing: one prompt followed by K answers in one sequence, trained exactly.

In this workload hundreds of answers share each prompt. The ordinary per-example batch recomputes the
~300-token prompt for every answer; a pack computes it once. Exactness needs three things, each of
which is easy to get wrong (see ``shared/notes/shared-prefix.md`` for measurements):

* an attention mask in which every answer sees the whole prompt and its own earlier tokens, never
  another answer. It is an *additive float* mask of shape (1, 1, L, L) (0 = allowed, dtype min =
  blocked): a boolean 4-D mask was silently wrong under eager attention;
* position ids that restart at len(prompt) for every answer, so each answer is positioned as if it
  followed the prompt alone;
* the loss taken from the right rows: an answer's first token is predicted from the prompt's last
  position, not from the previous answer's last token, so the usual shift-by-one labels cannot be
  used. We gather (source row, target token) pairs and compute logits only on those rows
  (``logits_to_keep``), which also skips the vocabulary projection for every prompt row.

The loss of a pack is the mean over its answer tokens, the same normalisation as a per-example batch
of the same answers with prompt tokens masked.

A pack may also carry a *decision segment*: the forced-choice opening (:mod:`stratdistill.decision`)
placed after the answers like one more answer, seeing only the prompt and itself. Its last row gives
the student's distribution at the decision point, and the decision loss compares it with the teacher's
share of each action over all its answers to this prompt:

    decision loss = - sum_a share(a) * log softmax(logits / T)[token(a)]

which is, divided by the number of answers, exactly what the decision tokens of all those answers
would contribute if each began with the opening; it costs one short segment per pack. ``T`` is the
evaluation temperature, so that the student's behaviour *as evaluated* is what is fitted to the
teacher's sampled shares.

*Decision packs* (:func:`build_decision_packs`) carry decisions only: the prompts of one context's games
share their first tokens (system part, context, the start of the payoff table), so a pack holds that
common token prefix once and, as segments, each prompt's remaining tokens followed by the opening. Each
segment sees the common prefix and itself, so its last row equals a separate pass over its own prompt
and opening; one pass trains the decisions of four scenarios at about 1.5 prompts' cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from stratdistill.prompts import render_chat


@dataclass
class Pack:
    input_ids: list[int]
    position_ids: list[int]
    prompt_len: int
    segments: list[tuple[int, int]]  # [start, end) of each answer in the sequence
    decisions: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of decision segments
    decision_targets: list[dict[int, float]] = field(default_factory=list)  # option token id -> share

    @property
    def sources(self) -> list[int]:
        """Row whose logits predict each answer token: the prompt's last row for an answer's first token."""
        out: list[int] = []
        for s, e in self.segments:
            out += [self.prompt_len - 1, *range(s, e - 1)]
        return out

    @property
    def targets(self) -> list[int]:
        return [t for s, e in self.segments for t in self.input_ids[s:e]]


@dataclass(frozen=True)
class DecisionTarget:
    """What the decision segment of a scenario's packs holds: the opening's tokens after the prompt and
    the teacher's share of each option, by the option's token id."""

    opening_ids: list[int]
    shares: dict[int, float]


def opening_tokens(tokenizer, prompt: str, opening: str) -> list[int]:
    """The opening's tokens as they follow the prompt (joint tokenisation, split at the prompt's end)."""
    head = tokenizer(prompt, add_special_tokens=False).input_ids
    whole = tokenizer(prompt + opening, add_special_tokens=False).input_ids
    if whole[: len(head)] == head:
        return whole[len(head) :]
    return tokenizer(opening, add_special_tokens=False).input_ids


def build_packs(
    examples: list[dict[str, Any]],
    tokenizer,
    pack_size: int,
    max_length: int,
    decisions: dict[str, DecisionTarget] | None = None,
) -> tuple[list[Pack], int]:
    """Group examples by prompt and pack up to ``pack_size`` answers per sequence of <= max_length tokens.

    ``decisions`` (scenario -> target) adds a decision segment to every pack of that scenario.
    Returns (packs, number of answers that cannot fit even alone and were skipped).
    """
    groups: dict[str, list[list[int]]] = {}
    prompt_ids: dict[str, list[int]] = {}
    decision_of: dict[str, DecisionTarget | None] = {}
    for ex in examples:
        prompt = render_chat(ex["messages"], tokenizer)
        if prompt not in prompt_ids:
            prompt_ids[prompt] = tokenizer(prompt, add_special_tokens=False).input_ids
            decision_of[prompt] = (decisions or {}).get(ex["scenario"])
        answer = [*tokenizer(ex["completion"], add_special_tokens=False).input_ids, tokenizer.eos_token_id]
        groups.setdefault(prompt, []).append(answer)
    packs: list[Pack] = []
    skipped = 0
    for prompt, answers in groups.items():
        p = prompt_ids[prompt]
        target = decision_of[prompt]
        reserve = len(target.opening_ids) if target else 0  # room for the decision segment
        current: list[list[int]] = []

        def flush(chunk: list[list[int]], p: list[int] = p, target: DecisionTarget | None = target) -> None:
            ids, pos, segs = list(p), list(range(len(p))), []
            for a in chunk:
                segs.append((len(ids), len(ids) + len(a)))
                ids += a
                pos += list(range(len(p), len(p) + len(a)))
            decisions, targets = [], []
            if target is not None:
                decisions.append((len(ids), len(ids) + len(target.opening_ids)))
                targets.append(target.shares)
                ids += target.opening_ids
                pos += list(range(len(p), len(p) + len(target.opening_ids)))
            packs.append(Pack(ids, pos, len(p), segs, decisions, targets))

        for a in answers:
            if len(p) + len(a) + reserve > max_length:
                skipped += 1
                continue
            if current and (
                len(current) >= pack_size or len(p) + sum(map(len, current)) + len(a) + reserve > max_length
            ):
                flush(current)
                current = []
            current.append(a)
        if current:
            flush(current)
    return packs, skipped


def _common_prefix(seqs: list[list[int]]) -> int:
    n = min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != seqs[0][i] for s in seqs[1:]):
            return i
    return n


def build_decision_packs(groups: list[list[tuple[list[int], DecisionTarget]]], max_length: int) -> list[Pack]:
    """One decision pack per group of (prompt tokens, target): the group's common token prefix once,
    then per prompt its remaining tokens and the opening as a segment (a group is split where it would
    pass ``max_length``). The prefix never takes a prompt's last token, so every segment has one."""
    packs: list[Pack] = []
    for group in groups:
        chunks: list[list[tuple[list[int], DecisionTarget]]] = [[]]
        for item in group:
            trial = [*chunks[-1], item]
            plen = min(_common_prefix([ids for ids, _ in trial]), min(len(ids) for ids, _ in trial) - 1)
            total = plen + sum(len(ids) - plen + len(t.opening_ids) for ids, t in trial)
            if chunks[-1] and total > max_length:
                chunks.append([item])
            else:
                chunks[-1] = trial
        for chunk in chunks:
            prompts = [ids for ids, _ in chunk]
            plen = min(_common_prefix(prompts), min(map(len, prompts)) - 1)
            ids, pos = list(prompts[0][:plen]), list(range(plen))
            decisions, targets = [], []
            for prompt, target in chunk:
                seg = [*prompt[plen:], *target.opening_ids]
                decisions.append((len(ids), len(ids) + len(seg)))
                targets.append(target.shares)
                ids += seg
                pos += list(range(plen, plen + len(seg)))
            packs.append(Pack(ids, pos, plen, [], decisions, targets))
    return packs


def pack_attention_mask(pack: Pack, dtype: torch.dtype) -> torch.Tensor:
    """Additive (1, 1, L, L) mask: the prompt is causal; each answer sees the prompt and itself."""
    length = len(pack.input_ids)
    allowed = torch.zeros(length, length, dtype=torch.bool)
    p = pack.prompt_len
    allowed[:p, :p] = torch.ones(p, p, dtype=torch.bool).tril()
    for s, e in [*pack.segments, *pack.decisions]:
        allowed[s:e, :p] = True
        allowed[s:e, s:e] = torch.ones(e - s, e - s, dtype=torch.bool).tril()
    mask = torch.zeros(length, length, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[None, None]


class PackCollator:
    """Turns one :class:`Pack` into model inputs (the Trainer runs it with batch size 1)."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype

    def __call__(self, batch: list[Pack]) -> dict[str, torch.Tensor]:
        if len(batch) != 1:
            raise ValueError("shared-prefix packs are trained one per forward pass (per-device batch size 1)")
        pack = batch[0]
        sources = pack.sources
        out = {
            "input_ids": torch.tensor([pack.input_ids]),
            "position_ids": torch.tensor([pack.position_ids]),
            "attention_mask": pack_attention_mask(pack, self.dtype),
            "targets": torch.tensor(pack.targets, dtype=torch.long),
        }
        if pack.decisions:
            sources = [*sources, *(e - 1 for _, e in pack.decisions)]  # read at each opening's last row
            out["decision_ids"] = torch.tensor([list(t) for t in pack.decision_targets])
            out["decision_shares"] = torch.tensor(
                [list(t.values()) for t in pack.decision_targets], dtype=torch.float32
            )
        out["sources"] = torch.tensor(sources)
        return out


def decision_loss(
    logits: torch.Tensor, ids: torch.Tensor, shares: torch.Tensor, temperature: float
) -> torch.Tensor:
    """- sum_a share(a) log softmax(logits / T)[a] per decision row (the teacher's answers' decisions,
    once per prompt), averaged over the rows. ``logits`` (rows, vocab), ``ids`` and ``shares`` (rows,
    options)."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    picked = logp.gather(1, ids.to(logp.device))
    return -(shares.to(logp.device) * picked).sum(dim=1).mean()


def pack_loss(
    model, inputs: dict[str, torch.Tensor], decision_weight: float = 0.0, temperature: float = 1.0
) -> torch.Tensor:
    """Mean cross-entropy over the pack's answer tokens (logits only on the source rows), plus
    ``decision_weight`` times the decision loss when the pack has decision segments (a decision pack
    has no answers: its loss is the weighted decision loss alone)."""
    out = model(
        input_ids=inputs["input_ids"],
        position_ids=inputs["position_ids"],
        attention_mask=inputs["attention_mask"],
        logits_to_keep=inputs["sources"],
        use_cache=False,
    )
    logits = out.logits[0].float()
    n_text = inputs["targets"].shape[0]
    loss = logits.new_zeros(())
    if n_text:
        loss = torch.nn.functional.cross_entropy(logits[:n_text], inputs["targets"].to(logits.device))
    if "decision_ids" in inputs and decision_weight > 0:
        loss = loss + decision_weight * decision_loss(
            logits[n_text:], inputs["decision_ids"], inputs["decision_shares"], temperature
        )
    return loss
