"""The forced-choice decision point: where a model's answer is read, in evaluation and in training.

A free-form answer can start in many ways ("C", "I would choose strategy C", "**Option C**", "As a
delegate, ..."); scoring a few hand-picked forms reads a sliver of the model (measured on SmolLM2-135M:
0.07-0.09 of the base student's probability). Instead, the assistant turn is opened with a fixed text,
the *opening* ("Of the two options, C and D, I would choose option"), and the model's next-token
distribution is read over the options (" C", " D"), the way lm-evaluation-harness scores multiple
choice. The mass on the options at that point (*valid mass*) says how much of the model the estimate
covers; with the default opening the base SmolLM2 student puts 0.96 of it there, against 0.50-0.63 for
"I would choose strategy" (the opening was chosen by that measurement, see the README).

Tokenisation is handled, not assumed:

* an option is scored as every token path that spells it after the opening: the joint tokenisation of
  opening + option (as lm-eval splits context and continuation) and, for an option with a leading
  space, the space as its own token followed by the rest;
* an option must end there: its probability is multiplied by the probability that the next token does
  not continue it ("C" followed by "ooperate" is not the answer C; "1" followed by "0" is "10", not 1).
  Multi-token amounts ("10" = "1" "0" in many vocabularies) are scored token by token.

``temperature`` and ``repetition_penalty`` transform every step's logits exactly as ``generate`` does
(transformers' own logits processors), so the estimate is the probability that sampling with those
settings, having written the opening, answers each option. The raw figures (temperature 1, no penalty:
the model's own distribution) are kept beside them.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from stratdistill.errors import ConfigError
from stratdistill.scenarios import PublicGoodsGame, Scenario

DEFAULT_OPENING_2X2 = "Of the two options, C and D, I would choose option"
DEFAULT_OPENING_PUBLIC_GOODS = "I would donate $"


@dataclass(frozen=True)
class DecisionPoint:
    """Where the answer is read: the opening of the assistant turn and the options that may follow."""

    opening: str
    options: dict[str, str]  # outcome ("C", "D", or dollars as text) -> continuation text
    numeric: bool  # options are numbers: a following digit continues them


def check_opening(key: str, opening: str) -> None:
    """An opening must be non-empty and must not end in whitespace (the option carries the space)."""
    if not opening or not opening.strip():
        raise ConfigError(key, opening, "a non-empty text that opens the assistant's answer")
    if opening != opening.rstrip():
        raise ConfigError(key, opening, "a text without trailing whitespace (options carry their own space)")


def decision_point(scenario: Scenario, opening_2x2: str, opening_public_goods: str) -> DecisionPoint:
    game = scenario.game
    if isinstance(game, PublicGoodsGame):
        sep = "" if opening_public_goods.endswith("$") else " "
        return DecisionPoint(
            opening_public_goods,
            {str(k): f"{sep}{k}" for k in range(game.endowment + 1)},
            numeric=True,
        )
    return DecisionPoint(opening_2x2, {"C": " C", "D": " D"}, numeric=False)


def point_for(scenario: Scenario, eval_cfg: Any) -> DecisionPoint:
    return decision_point(scenario, eval_cfg.opening_2x2, eval_cfg.opening_public_goods)


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def option_paths(tokenizer, context: str, option: str) -> list[list[int]]:
    """Every token path considered to spell ``option`` right after ``context``.

    The joint tokenisation of context + option, split where the context's own tokens end (if the last
    context token merges with the option, the option is encoded alone), and, for " X", the path
    [" ", "X"] when the vocabulary has a lone space token.
    """
    ctx = _encode(tokenizer, context)
    whole = _encode(tokenizer, context + option)
    paths = [whole[len(ctx) :]] if whole[: len(ctx)] == ctx else [_encode(tokenizer, option)]
    if option.startswith(" ") and len(option) > 1:
        space = _encode(tokenizer, " ")
        split = [*space, *_encode(tokenizer, option[1:])] if len(space) == 1 else None
        if split and split not in paths:
            paths.append(split)
    return [p for p in paths if p]


@cache
def continuation_ids(tokenizer, numeric: bool) -> tuple[int, ...]:
    """Token ids that would continue an option instead of ending it: tokens whose text starts with a
    digit (numbers) or with a letter or digit (letters). Cached per tokenizer object."""
    out = []
    for tok, idx in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([tok])
        if text and (text[0].isdigit() if numeric else text[0].isalnum()):
            out.append(idx)
    return tuple(sorted(out))


def _step_logprobs(logits, history, temperature: float, penalty: float):
    """(decoding log-probs, raw log-probs) for a batch of next-token logits, as ``generate`` would
    transform them given the ids so far (``history``)."""
    import torch
    from transformers import RepetitionPenaltyLogitsProcessor

    logits = logits.float()
    raw = torch.log_softmax(logits, dim=-1)
    scored = logits
    if penalty != 1.0:
        scored = RepetitionPenaltyLogitsProcessor(penalty)(history, scored.clone())
    return torch.log_softmax(scored / temperature, dim=-1), raw


def continuation_logits(model, context_ids, paths: list[list[int]], pad_id: int):
    """(steps, batch): for every path, the logits of each of its tokens and of the token after it.

    ``steps[i, j]`` is the next-token distribution before token j of path i (j = 0: straight after the
    context). The context runs once with its cache kept; the paths run as one right-padded batch
    against copies of it, positioned after the context. ``batch`` holds the padded paths."""
    import torch

    device = context_ids.device
    n, width, plen = len(paths), max(len(p) for p in paths), context_ids.shape[1]
    out = model(input_ids=context_ids, use_cache=True)
    batch = torch.full((n, width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((n, plen + width), dtype=torch.long, device=device)
    mask[:, :plen] = 1
    for i, path in enumerate(paths):
        batch[i, : len(path)] = torch.tensor(path, device=device)
        mask[i, plen : plen + len(path)] = 1
    cache = copy.deepcopy(out.cache)
    cache.batch_repeat_interleave(n)
    positions = torch.arange(plen, plen + width, device=device).expand(n, width)
    later = model(
        input_ids=batch, attention_mask=mask, cache=cache, position_ids=positions, use_cache=True
    ).logits
    return torch.cat([out.logits[:, -1:].expand(n, 1, -1), later], dim=1), batch


def score_decision(
    model, tokenizer, prompt: str, point: DecisionPoint, temperature: float, repetition_penalty: float
) -> dict[str, Any]:
    """Probability of each option at the decision point, under the decoding settings and raw.

    Returns {"p": {outcome: share of the valid mass} or None if no mass, "valid_mass", "raw_p",
    "raw_valid_mass", "mass": {outcome: decoding mass}, "paths": number of token paths scored}.
    """
    import torch

    if temperature <= 0:
        raise ConfigError("eval.temperature", temperature, "a number > 0 for forced-choice scoring")
    device = next(model.parameters()).device
    context = prompt + point.opening
    ctx_ids = torch.tensor([_encode(tokenizer, context)], device=device)
    flat = [(o, p) for o, text in point.options.items() for p in option_paths(tokenizer, context, text)]
    stop_ids = torch.tensor(continuation_ids(tokenizer, point.numeric), dtype=torch.long, device=device)
    n, plen = len(flat), ctx_ids.shape[1]
    with torch.no_grad():
        steps, batch = continuation_logits(model, ctx_ids, [p for _, p in flat], tokenizer.pad_token_id)
        history = torch.cat([ctx_ids.expand(n, plen), batch], dim=1)
        logp = {"decoding": torch.zeros(n, device=device), "raw": torch.zeros(n, device=device)}
        for i, (_, path) in enumerate(flat):
            for j in range(len(path) + 1):  # the path's tokens, then "the option ends here"
                dec, raw = _step_logprobs(
                    steps[i : i + 1, j], history[i : i + 1, : plen + j], temperature, repetition_penalty
                )
                for name, lp in (("decoding", dec), ("raw", raw)):
                    if j < len(path):
                        logp[name][i] += lp[0, path[j]]
                    else:
                        cont = torch.exp(lp[0, stop_ids]).sum().clamp(max=1.0)
                        logp[name][i] += torch.log1p(-cont).clamp(min=-1e30)
    result: dict[str, Any] = {"paths": n}
    for name, prefix in (("decoding", ""), ("raw", "raw_")):
        mass: dict[str, float] = {}
        for (outcome, _), lp in zip(flat, logp[name].tolist(), strict=True):
            mass[outcome] = mass.get(outcome, 0.0) + math.exp(lp)
        valid = sum(mass.values())
        result[f"{prefix}valid_mass"] = valid
        result[f"{prefix}p"] = {o: m / valid for o, m in mass.items()} if valid > 0 else None
        if name == "decoding":
            result["mass"] = mass
    return result


def decision_target_ids(tokenizer, context: str, point: DecisionPoint) -> dict[str, int]:
    """For training: the one token each option starts with after ``context`` (canonical path).

    The decision loss reads one next-token distribution per prompt, so every option must be a single
    token there and options must differ; a vocabulary where they are not gets a one-line error."""
    out: dict[str, int] = {}
    for outcome, text in point.options.items():
        path = option_paths(tokenizer, context, text)[0]
        if len(path) != 1:
            raise ConfigError(
                "eval.opening_2x2",
                point.opening,
                f"an opening after which each option is one token ({text!r} is {len(path)} here)",
            )
        out[outcome] = path[0]
    if len(set(out.values())) != len(out):
        raise ConfigError("eval.opening_2x2", point.opening, "an opening after which the options differ")
    return out
