"""Exact evaluation: the probability a model puts on each valid answer, one prompt pass per scenario.

Sampling 300 answers per scenario (the paper's estimator) is noisy and ~300x more expensive. Instead we
score a fixed set of answer *forms* for each action, e.g. for C the bare letter "C" and the teacher's
phrasing "I would choose strategy C", and take P(action) = sum of P(response starts with form). The
forms of different actions start differently, so they are disjoint events; their total is reported as
``valid_mass`` (how much of the model's probability lands on a recognisable answer). Numbers in a
donation form must not continue with another digit ("1" is not "10"), so a number form's probability
is multiplied by P(next token is not a digit).

The prompt runs once with its key/value cache kept; all forms of a scenario then run as one small
batch against that cache.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from tqdm import tqdm

from stratdistill.prompts import messages_for, render_chat, template_id
from stratdistill.scenarios import Library, PublicGoodsGame, Scenario

FORMS_VERSION = "1"


def answer_forms(scenario: Scenario) -> dict[Any, list[str]]:
    """Valid answer openings per outcome (action letter, or donated dollars)."""
    game = scenario.game
    if isinstance(game, PublicGoodsGame):
        return {k: [f"{k}", f"${k}", f"I would donate ${k}"] for k in range(game.endowment + 1)}
    return {a: [a, f"I would choose strategy {a}"] for a in ("C", "D")}


def _digit_token_ids(tokenizer) -> list[int]:
    ids = set()
    for tok, idx in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([tok]).strip()
        if text and text[0].isdigit():
            ids.add(idx)
    return sorted(ids)


def score_forms(
    model, tokenizer, prompt: str, forms: list[str], digit_ids: list[int] | None, number_form: list[bool]
) -> list[float]:
    """log P(response starts with form) for each form (number forms: and is not followed by a digit)."""
    import torch

    device = next(model.parameters()).device
    prompt_ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids.to(device)
    form_ids = [tokenizer(f, add_special_tokens=False).input_ids for f in forms]
    with torch.no_grad():
        out = model(input_ids=prompt_ids, use_cache=True)
        first_logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        n, width, plen = len(forms), max(len(f) for f in form_ids), prompt_ids.shape[1]
        batch = torch.full((n, width), tokenizer.pad_token_id, dtype=torch.long, device=device)
        mask = torch.zeros((n, plen + width), dtype=torch.long, device=device)
        mask[:, :plen] = 1
        for i, ids in enumerate(form_ids):
            batch[i, : len(ids)] = torch.tensor(ids, device=device)
            mask[i, plen : plen + len(ids)] = 1
        cache = copy.deepcopy(out.cache)
        cache.batch_repeat_interleave(n)
        positions = torch.arange(plen, plen + width, device=device).expand(n, width)
        logits = model(
            input_ids=batch,
            attention_mask=mask,
            cache=cache,
            position_ids=positions,
            use_cache=True,
        ).logits.float()
        logp = torch.log_softmax(logits, dim=-1)
    scores = []
    for i, ids in enumerate(form_ids):
        total = float(first_logp[ids[0]])
        for j in range(1, len(ids)):
            total += float(logp[i, j - 1, ids[j]])
        if number_form[i] and digit_ids:
            p_digit = float(torch.exp(logp[i, len(ids) - 1, digit_ids]).sum())
            total += math.log(max(1.0 - p_digit, 1e-30))
        scores.append(total)
    return scores


def exact_behaviour(
    model, tokenizer, scenario: Scenario, library: Library, instruction: str, digit_ids: list[int]
) -> dict[str, Any]:
    prompt = render_chat(messages_for(scenario, instruction, library), tokenizer)
    forms_by_outcome = answer_forms(scenario)
    flat = [(outcome, f) for outcome, fs in forms_by_outcome.items() for f in fs]
    is_number = [isinstance(o, int) and f[-1].isdigit() for o, f in flat]
    logps = score_forms(model, tokenizer, prompt, [f for _, f in flat], digit_ids, is_number)
    mass: dict[Any, float] = {}
    for (outcome, _), lp in zip(flat, logps, strict=True):
        mass[outcome] = mass.get(outcome, 0.0) + math.exp(lp)
    valid = sum(mass.values())
    dist = {o: m / valid for o, m in mass.items()} if valid > 0 else {o: 1 / len(mass) for o in mass}
    result: dict[str, Any] = {
        "scenario": scenario.key,
        "valid_mass": valid,
        "estimator": "exact",
        "prompt": prompt,
        "chat_template": template_id(tokenizer),
        "forms": {f: lp for (_, f), lp in zip(flat, logps, strict=True)},
    }
    if isinstance(scenario.game, PublicGoodsGame):
        result["distribution"] = {str(k): v for k, v in dist.items()}
        result["mean_donation"] = sum(k * v for k, v in dist.items())
    else:
        result["p_c"] = dist["C"]
    return result


def _expanded_cache(model, prefix_cache, k: int, max_len: int):
    """The prompt's cache repeated for k samples, preallocated for ``max_len`` tokens.

    Why static: a ``DynamicCache`` grows by ``torch.cat`` at every decoding step, which copies the whole
    prompt cache each step; profiling 16 x 16 samples of SmolLM2 on CPU put 29% of the time in ``cat``.
    A preallocated ``StaticCache`` writes each new token in place and gives identical samples (same
    seed, same text). Models whose cache layout StaticCache cannot hold fall back to the dynamic copy.
    """
    from transformers import StaticCache

    try:
        cache = StaticCache(config=model.config, max_cache_len=max_len)
        if len(cache.layers) != len(prefix_cache.layers):
            raise ValueError("layer count differs")
        for static_layer, layer in zip(cache.layers, prefix_cache.layers, strict=True):
            static_layer.update(
                layer.keys.expand(k, -1, -1, -1).contiguous(), layer.values.expand(k, -1, -1, -1).contiguous()
            )
        return cache
    except (AttributeError, TypeError, ValueError, NotImplementedError):
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(k)
        return cache


def sample_answers(
    model,
    tokenizer,
    prompt: str,
    n: int,
    *,
    temperature: float,
    max_new_tokens: int,
    repetition_penalty: float,
    seed: int,
    chunk: int = 32,
) -> list[str]:
    """n sampled answers to one prompt, the prompt's prefill computed once and shared by every sample.

    ``num_return_sequences`` would prefill the prompt n times; we prefill all but its last token once,
    copy that cache for each chunk of samples, and let ``generate`` continue from it. Sampling is pure
    (no top-k/top-p truncation) so that, at temperature 1 without repetition penalty, answers follow the
    distribution that the exact estimator reads off the logits.
    """
    import torch

    device = next(model.parameters()).device
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids.to(device)
    torch.manual_seed(seed)
    with torch.no_grad():
        prefix_cache = model(input_ids=ids[:, :-1], use_cache=True).cache
    texts: list[str] = []
    while len(texts) < n:
        k = min(chunk, n - len(texts))
        cache = _expanded_cache(model, prefix_cache, k, ids.shape[1] + max_new_tokens)
        with torch.no_grad():
            out = model.generate(
                input_ids=ids.expand(k, -1),
                attention_mask=torch.ones_like(ids).expand(k, -1),
                cache=cache,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_k=0,
                top_p=1.0,
                repetition_penalty=repetition_penalty,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        texts += tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
        del cache, out  # free this chunk's cache before the next one is built
    return texts


def sampled_behaviour(
    model, tokenizer, scenario: Scenario, library: Library, instruction: str, eval_cfg: Any, seed: int
) -> dict[str, Any]:
    """The paper's estimator: N answers at the configured temperature, parsed and counted."""
    from stratdistill.dataset import parse_answer, scenario_rng

    prompt = render_chat(messages_for(scenario, instruction, library), tokenizer)
    answer_seed = int(scenario_rng(seed, scenario.key, "student-samples").integers(2**31))
    texts = sample_answers(
        model,
        tokenizer,
        prompt,
        eval_cfg.samples,
        temperature=eval_cfg.temperature,
        max_new_tokens=eval_cfg.max_new_tokens,
        repetition_penalty=eval_cfg.repetition_penalty,
        seed=answer_seed,
    )
    parsed = [parse_answer(scenario, t) for t in texts]
    ok = [p.value for p in parsed if p.ok]
    statuses = sorted({p.status for p in parsed})
    result: dict[str, Any] = {
        "scenario": scenario.key,
        "estimator": "sampled",
        "prompt": prompt,
        "chat_template": template_id(tokenizer),
        "n": len(texts),
        "n_ok": len(ok),
        "valid_mass": len(ok) / len(texts),
        "parse_status": {st: sum(p.status == st for p in parsed) for st in statuses},
        "answers": texts,
    }
    if isinstance(scenario.game, PublicGoodsGame):
        endowment = scenario.game.endowment
        result["distribution"] = {str(k): ok.count(k) / len(ok) for k in range(endowment + 1)} if ok else {}
        result["mean_donation"] = sum(ok) / len(ok) if ok else None
    else:
        result["c"] = ok.count("C")
        result["p_c"] = ok.count("C") / len(ok) if ok else None
    return result


def evaluate_model(
    model,
    tokenizer,
    scenarios: list[Scenario],
    library: Library,
    instruction: str,
    label: str,
    eval_cfg: Any = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Each scenario's behaviour, by ``eval_cfg.method``: 'exact' (the default) or 'sampled'."""
    if eval_cfg is not None and eval_cfg.method == "sampled":
        return [
            sampled_behaviour(model, tokenizer, sc, library, instruction, eval_cfg, seed)
            for sc in tqdm(scenarios, desc=f"sample {label}", unit="scenario")
        ]
    digit_ids = _digit_token_ids(tokenizer)
    return [
        exact_behaviour(model, tokenizer, sc, library, instruction, digit_ids)
        for sc in tqdm(scenarios, desc=f"evaluate {label}", unit="scenario")
    ]
