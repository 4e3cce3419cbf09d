"""Does the forced-choice estimate say what the model answers when it is sampled as in the paper?

For one model and one scenario, three figures side by side:

* **forced choice**: the default estimator (:mod:`stratdistill.decision`), at the evaluation's settings,
  and at the paper's decoding (temperature 0.8 *and* repetition penalty 1.1);
* **free sampling**: answers generated with the paper's decoding to the one-letter instruction and
  parsed (:func:`stratdistill.dataset.parse_answer`): the parse rate, the share of C among parsed
  answers with its 95% Wilson interval, and its difference to the forced-choice estimate. This is the
  question a reviewer asks: is the number we print the answer the model gives?
* **forced opening**: answers sampled with the same decoding *after* the opening, their first option
  read. It must agree with the forced-choice estimate at the paper's decoding within sampling error: a
  check of the estimator's arithmetic (token paths, penalty, temperature), not of the model.

Sampling is pure (``top_k=0``, ``top_p=1``): the paper states no truncation.
"""

from __future__ import annotations

import math
import re
from typing import Any

from stratdistill.dataset import parse_answer, scenario_rng
from stratdistill.decision import point_for, score_decision
from stratdistill.evaluate import sample_answers
from stratdistill.prompts import messages_for, render_chat
from stratdistill.scenarios import Library, PublicGoodsGame, Scenario

PAPER_TEMPERATURE = 0.8
PAPER_REPETITION_PENALTY = 1.1
_FIRST_OPTION = re.compile(r"^\s*([CD])(?![A-Za-z0-9])")


def wilson(c: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of c successes in n; (nan, nan) for n = 0."""
    if n == 0:
        return math.nan, math.nan
    p = c / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def agreement(
    model,
    tokenizer,
    scenario: Scenario,
    library: Library,
    eval_cfg: Any,
    *,
    free_samples: int,
    opening_samples: int,
    max_new_tokens: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """The three figures for one 2x2 scenario (see the module docstring)."""
    if isinstance(scenario.game, PublicGoodsGame):
        raise ValueError(f"{scenario.key}: agreement is measured on 2x2 scenarios")
    prompt = render_chat(messages_for(scenario, eval_cfg.instruction, library), tokenizer)
    point = point_for(scenario, eval_cfg)
    fc = score_decision(model, tokenizer, prompt, point, eval_cfg.temperature, eval_cfg.repetition_penalty)
    fc_paper = score_decision(model, tokenizer, prompt, point, PAPER_TEMPERATURE, PAPER_REPETITION_PENALTY)
    rng_seed = int(scenario_rng(seed, scenario.key, "agreement").integers(2**31))
    decoding = {"temperature": PAPER_TEMPERATURE, "repetition_penalty": PAPER_REPETITION_PENALTY}
    free = sample_answers(
        model, tokenizer, prompt, free_samples, max_new_tokens=max_new_tokens, seed=rng_seed, **decoding
    )
    parsed = [parse_answer(scenario, t) for t in free]
    ok = [p.value for p in parsed if p.ok]
    c_free = ok.count("C")
    opened = sample_answers(
        model,
        tokenizer,
        prompt + point.opening,
        opening_samples,
        max_new_tokens=3,
        seed=rng_seed + 1,
        **decoding,
    )
    first = [m.group(1) for t in opened if (m := _FIRST_OPTION.match(t))]
    c_open = first.count("C")
    p_fc = (fc["p"] or {}).get("C")
    p_fc_paper = (fc_paper["p"] or {}).get("C")
    free_p = c_free / len(ok) if ok else None
    free_low, free_high = wilson(c_free, len(ok))
    open_p = c_open / len(first) if first else None
    z_open = None
    if open_p is not None and p_fc_paper is not None and 0 < p_fc_paper < 1:
        z_open = (open_p - p_fc_paper) / math.sqrt(p_fc_paper * (1 - p_fc_paper) / len(first))
    return {
        "scenario": scenario.key,
        "forced_choice": p_fc,
        "forced_choice_valid_mass": fc["valid_mass"],
        "forced_choice_paper_decoding": p_fc_paper,
        "forced_choice_paper_decoding_valid_mass": fc_paper["valid_mass"],
        "free_n": len(free),
        "free_parsed": len(ok),
        "free_parse_rate": len(ok) / len(free) if free else math.nan,
        "free_parse_status": {
            s: sum(p.status == s for p in parsed) for s in sorted({p.status for p in parsed})
        },
        "free_p_c": free_p,
        "free_low": free_low,
        "free_high": free_high,
        "free_minus_forced": free_p - p_fc if free_p is not None and p_fc is not None else None,
        "free_minus_forced_low": free_low - p_fc if ok and p_fc is not None else None,
        "free_minus_forced_high": free_high - p_fc if ok and p_fc is not None else None,
        "opening_n": len(opened),
        "opening_valid": len(first),
        "opening_p_c": open_p,
        "opening_z": z_open,
        "first_free_answers": free[:3],
    }
