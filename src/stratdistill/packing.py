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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from stratdistill.prompts import render_chat


@dataclass
class Pack:
    input_ids: list[int]
    position_ids: list[int]
    prompt_len: int
    segments: list[tuple[int, int]]  # [start, end) of each answer in the sequence

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


def build_packs(
    examples: list[dict[str, Any]], tokenizer, pack_size: int, max_length: int
) -> tuple[list[Pack], int]:
    """Group examples by prompt and pack up to ``pack_size`` answers per sequence of <= max_length tokens.

    Returns (packs, number of answers that cannot fit even alone and were skipped).
    """
    groups: dict[str, list[list[int]]] = {}
    prompt_ids: dict[str, list[int]] = {}
    for ex in examples:
        prompt = render_chat(ex["messages"], tokenizer)
        if prompt not in prompt_ids:
            prompt_ids[prompt] = tokenizer(prompt, add_special_tokens=False).input_ids
        answer = [*tokenizer(ex["completion"], add_special_tokens=False).input_ids, tokenizer.eos_token_id]
        groups.setdefault(prompt, []).append(answer)
    packs: list[Pack] = []
    skipped = 0
    for prompt, answers in groups.items():
        p = prompt_ids[prompt]
        current: list[list[int]] = []

        def flush(chunk: list[list[int]], p: list[int] = p) -> None:
            ids, pos, segs = list(p), list(range(len(p))), []
            for a in chunk:
                segs.append((len(ids), len(ids) + len(a)))
                ids += a
                pos += list(range(len(p), len(p) + len(a)))
            packs.append(Pack(ids, pos, len(p), segs))

        for a in answers:
            if len(p) + len(a) > max_length:
                skipped += 1
                continue
            if current and (
                len(current) >= pack_size or len(p) + sum(map(len, current)) + len(a) > max_length
            ):
                flush(current)
                current = []
            current.append(a)
        if current:
            flush(current)
    return packs, skipped


def pack_attention_mask(pack: Pack, dtype: torch.dtype) -> torch.Tensor:
    """Additive (1, 1, L, L) mask: the prompt is causal; each answer sees the prompt and itself."""
    length = len(pack.input_ids)
    allowed = torch.zeros(length, length, dtype=torch.bool)
    p = pack.prompt_len
    allowed[:p, :p] = torch.ones(p, p, dtype=torch.bool).tril()
    for s, e in pack.segments:
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
        return {
            "input_ids": torch.tensor([pack.input_ids]),
            "position_ids": torch.tensor([pack.position_ids]),
            "attention_mask": pack_attention_mask(pack, self.dtype),
            "sources": torch.tensor(pack.sources),
            "targets": torch.tensor(pack.targets),
        }


def pack_loss(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the pack's answer tokens, with logits only on the source rows."""
    out = model(
        input_ids=inputs["input_ids"],
        position_ids=inputs["position_ids"],
        attention_mask=inputs["attention_mask"],
        logits_to_keep=inputs["sources"],
        use_cache=False,
    )
    logits = out.logits[0].float()
    return torch.nn.functional.cross_entropy(logits, inputs["targets"])
