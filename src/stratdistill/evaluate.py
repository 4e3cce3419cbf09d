"""Student evaluation: each model's behaviour per scenario, by one of three estimators.

* ``forced_choice`` (the default): the assistant turn is opened with a fixed text and the model's
  next-token distribution is read over the options (:mod:`stratdistill.decision`). One prompt pass per
  scenario, no sampling noise, and the mass on the options (*valid mass*) says how much of the model
  the estimate covers.
* ``forms``: the probability that a free-form answer *starts with* each of a few answer forms (the bare
  letter "C", the phrase "I would choose strategy C"), normalised. Kept for comparison: it covers a small
  part of the model (valid mass 0.07-0.35 on SmolLM2) and its forms can move in opposite directions, so
  each form family's own P(C) is reported beside the blend.
* ``sampled``: the paper's estimator, N answers generated and parsed.

The prompt runs once with its key/value cache kept; continuations run as one small batch against it.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from tqdm import tqdm

from stratdistill.decision import continuation_logits, point_for, score_decision
from stratdistill.prompts import messages_for, render_chat, template_id
from stratdistill.scenarios import Library, PublicGoodsGame, Scenario


def answer_forms(scenario: Scenario) -> dict[Any, list[str]]:
    """Valid answer openings per outcome (action letter, or donated dollars), by form family."""
    game = scenario.game
    if isinstance(game, PublicGoodsGame):
        return {k: [f"{k}", f"${k}", f"I would donate ${k}"] for k in range(game.endowment + 1)}
    return {a: [a, f"I would choose strategy {a}"] for a in ("C", "D")}


FORM_FAMILIES_2X2 = ("letter", "phrase")
FORM_FAMILIES_DONATION = ("number", "dollars", "phrase")


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
        steps, _ = continuation_logits(model, prompt_ids, form_ids, tokenizer.pad_token_id)
        logp = torch.log_softmax(steps.float(), dim=-1)
    scores = []
    for i, ids in enumerate(form_ids):
        total = sum(float(logp[i, j, ids[j]]) for j in range(len(ids)))
        if number_form[i] and digit_ids:
            p_digit = float(torch.exp(logp[i, len(ids), digit_ids]).sum())
            total += math.log(max(1.0 - p_digit, 1e-30))
        scores.append(total)
    return scores


def _summarise(scenario: Scenario, mass: dict[Any, float]) -> dict[str, Any]:
    """P(C) or the donation distribution and mean from unnormalised masses; None when there is no mass
    (an undefined value is never drawn as 0.5 or 0)."""
    valid = sum(mass.values())
    dist = {str(o): m / valid for o, m in mass.items()} if valid > 0 else None
    if isinstance(scenario.game, PublicGoodsGame):
        mean = sum(int(k) * v for k, v in dist.items()) if dist else None
        return {"distribution": dist or {}, "mean_donation": mean}
    return {"p_c": dist["C"] if dist else None}


def forms_behaviour(
    model, tokenizer, scenario: Scenario, library: Library, instruction: str, digit_ids: list[int]
) -> dict[str, Any]:
    """The free-form estimator: P(answer starts with each form), normalised, and per form family."""
    prompt = render_chat(messages_for(scenario, instruction, library), tokenizer)
    forms_by_outcome = answer_forms(scenario)
    families = FORM_FAMILIES_DONATION if isinstance(scenario.game, PublicGoodsGame) else FORM_FAMILIES_2X2
    flat = [
        (outcome, fam, f)
        for outcome, fs in forms_by_outcome.items()
        for fam, f in zip(families, fs, strict=True)
    ]
    is_number = [isinstance(o, int) and f[-1].isdigit() for o, _, f in flat]
    logps = score_forms(model, tokenizer, prompt, [f for _, _, f in flat], digit_ids, is_number)
    mass: dict[Any, float] = {}
    by_family: dict[str, dict[Any, float]] = {fam: {} for fam in families}
    for (outcome, fam, _), lp in zip(flat, logps, strict=True):
        mass[outcome] = mass.get(outcome, 0.0) + math.exp(lp)
        by_family[fam][outcome] = math.exp(lp)
    result: dict[str, Any] = {
        "scenario": scenario.key,
        "valid_mass": sum(mass.values()),
        "estimator": "forms",
        "prompt": prompt,
        "chat_template": template_id(tokenizer),
        "forms": {f: lp for (_, _, f), lp in zip(flat, logps, strict=True)},
        "form_families": {
            fam: {"valid_mass": sum(m.values()), **_summarise(scenario, m)} for fam, m in by_family.items()
        },
        **_summarise(scenario, mass),
    }
    return result


def forced_choice_behaviour(
    model, tokenizer, scenario: Scenario, library: Library, instruction: str, eval_cfg: Any
) -> dict[str, Any]:
    """The default estimator: the options' probabilities after the opening (see stratdistill.decision)."""
    prompt = render_chat(messages_for(scenario, instruction, library), tokenizer)
    point = point_for(scenario, eval_cfg)
    scored = score_decision(
        model, tokenizer, prompt, point, float(eval_cfg.temperature), float(eval_cfg.repetition_penalty)
    )
    raw = {o: p * scored["raw_valid_mass"] for o, p in (scored["raw_p"] or {}).items()}
    return {
        "scenario": scenario.key,
        "estimator": "forced_choice",
        "prompt": prompt,
        "opening": point.opening,
        "chat_template": template_id(tokenizer),
        "temperature": float(eval_cfg.temperature),
        "repetition_penalty": float(eval_cfg.repetition_penalty),
        "valid_mass": scored["valid_mass"],
        "raw_valid_mass": scored["raw_valid_mass"],
        "token_paths": scored["paths"],
        **_summarise(scenario, scored["mass"]),
        "raw": _summarise(scenario, raw),
    }


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
    # no parsed answer: the behaviour is undefined (None), reported as n/a, never as 0 or 0.5
    if isinstance(scenario.game, PublicGoodsGame):
        endowment = scenario.game.endowment
        result["distribution"] = {str(k): ok.count(k) / len(ok) for k in range(endowment + 1)} if ok else {}
        result["mean_donation"] = sum(ok) / len(ok) if ok else None
    else:
        result["c"] = ok.count("C") if ok else None
        result["p_c"] = ok.count("C") / len(ok) if ok else None
    return result


def evaluate_model(
    model,
    tokenizer,
    scenarios: list[Scenario],
    library: Library,
    instruction: str,
    label: str,
    eval_cfg: Any,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Each scenario's behaviour, by ``eval_cfg.method``: forced_choice (default), forms or sampled."""
    method = eval_cfg.method
    if method == "sampled":
        return [
            sampled_behaviour(model, tokenizer, sc, library, instruction, eval_cfg, seed)
            for sc in tqdm(scenarios, desc=f"sample {label}", unit="scenario")
        ]
    if method == "forms":
        digit_ids = _digit_token_ids(tokenizer)
        return [
            forms_behaviour(model, tokenizer, sc, library, instruction, digit_ids)
            for sc in tqdm(scenarios, desc=f"evaluate {label} (forms)", unit="scenario")
        ]
    return [
        forced_choice_behaviour(model, tokenizer, sc, library, instruction, eval_cfg)
        for sc in tqdm(scenarios, desc=f"evaluate {label} (forced choice)", unit="scenario")
    ]
