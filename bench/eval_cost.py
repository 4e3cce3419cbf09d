"""Evaluation cost: forced choice (one prompt pass per scenario) vs sampling 300 answers per scenario.

What it compares, on the same scenarios with the base student (default SmolLM2-135M-Instruct, fp32,
CPU), each route in its own freshly spawned process:

* ``forced_choice``: ``stratdistill.evaluate.forced_choice_behaviour``: one forward pass over the prompt
  and the answer's opening, then every option's token paths scored as one small batch against that
  cache (the project's default, ``eval=forced_choice``, at temperature 0.8 without penalty). The table
  of word-continuing tokens it needs is built once per model and timed separately.
* ``sampled``: ``stratdistill.evaluate.sampled_behaviour`` (``sample_answers`` underneath, the prompt
  prefilled once and shared by every sample) with the paper's estimator settings (``eval=sampled``):
  300 answers per scenario, temperature 0.8, repetition penalty 1.1, ``--max-new-tokens`` (64), then
  parsed and counted. Sampling 300 answers per scenario is the paper's cost for every scenario and
  every model evaluated.

Reported: wall seconds per scenario for each route (after one untimed warm-up call per route), the
ratio sampled/exact, the peak resident memory of each route's process, and each route's estimate
(P(C), or the mean donation) with its valid mass, so that the saving is seen next to what each
estimator says. How far the two estimates agree is what ``bench/agreement.py`` measures; here only the
cost is compared.

Usage (from the repository root; ``make bench`` runs the defaults, ~6 min on a 2-core CPU)::

    .venv/bin/python bench/eval_cost.py                          # 2 in-sample scenarios, 300 samples each
    .venv/bin/python bench/eval_cost.py --scenarios 1 --max-new-tokens 16
    .venv/bin/python bench/eval_cost.py --keys IR_prison team_snowdrift donation --out /tmp/eval.json
    .venv/bin/python bench/eval_cost.py --split heldout_contexts --samples 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from _common import (
    as_cfg,
    busy_warning,
    compose_cfg,
    default_cache_dir,
    describe_machine,
    machine_facts,
    other_load,
    run_in_child,
    table,
    write_result,
)

ROUTES = ("forced_choice", "sampled")
LABELS = {"forced_choice": "forced choice (one prompt pass)", "sampled": "sampled (paper's estimator)"}


def pick_scenarios(cfg, split: str, keys: list[str] | None, n: int):
    from stratdistill.scenarios import load_library, resolve_split

    library = load_library(list(cfg.games.library_dirs), cfg.games.prompt_dir)
    _, evals = resolve_split(library, cfg.split)
    if split not in evals:
        raise SystemExit(f"--split {split!r}: choose one of {sorted(evals)}")
    pool = {s.key: s for ss in evals.values() for s in ss}
    if keys:
        missing = [k for k in keys if k not in pool]
        if missing:
            raise SystemExit(f"--keys {missing}: not in any eval split; known: {sorted(pool)}")
        return library, [pool[k] for k in keys]
    return library, evals[split][:n]


def count_eval_scenarios(cfg) -> int:
    """Distinct scenarios over every eval split (what one run evaluates, per model)."""
    from stratdistill.scenarios import load_library, resolve_split

    _, evals = resolve_split(load_library(list(cfg.games.library_dirs), cfg.games.prompt_dir), cfg.split)
    return len({s.key for ss in evals.values() for s in ss})


def _estimate(row: dict[str, Any]) -> float | None:
    return row.get("p_c", row.get("mean_donation"))


def route(name: str, cfg_container: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from stratdistill.decision import continuation_ids
    from stratdistill.evaluate import forced_choice_behaviour, sample_answers, sampled_behaviour
    from stratdistill.prompts import messages_for, render_chat
    from stratdistill.students import load_student

    cfg = as_cfg(cfg_container)
    library, scenarios = pick_scenarios(cfg, a["split"], a["keys"], a["n"])
    instruction = cfg.eval.instruction
    model, tok = load_student(cfg.student, a["cache_dir"])
    out: dict[str, Any] = {"route": name, "scenarios": [], "seconds": [], "setup_seconds": 0.0}
    if name == "forced_choice":
        fc = OmegaConf.merge(cfg.eval, {"method": "forced_choice", "repetition_penalty": 1.0})
        t0 = time.perf_counter()
        continuation_ids(tok, True), continuation_ids(tok, False)
        out["setup_seconds"] = time.perf_counter() - t0
        forced_choice_behaviour(model, tok, scenarios[0], library, instruction, fc)  # warm-up, untimed

        def one(sc):
            return forced_choice_behaviour(model, tok, sc, library, instruction, fc)
    else:
        prompt = render_chat(messages_for(scenarios[0], instruction, library), tok)
        sample_answers(  # warm-up, untimed
            model,
            tok,
            prompt,
            2,
            temperature=cfg.eval.temperature,
            max_new_tokens=2,
            repetition_penalty=cfg.eval.repetition_penalty,
            seed=0,
        )

        def one(sc):
            return sampled_behaviour(model, tok, sc, library, instruction, cfg.eval, cfg.seed)

    for sc in scenarios:
        t0 = time.perf_counter()
        row = one(sc)
        out["seconds"].append(time.perf_counter() - t0)
        entry = {"scenario": sc.key, "estimate": _estimate(row), "valid_mass": row["valid_mass"]}
        if name == "sampled":
            lengths = [len(tok(t, add_special_tokens=False).input_ids) for t in row["answers"]]
            entry |= {
                "n": row["n"],
                "n_ok": row["n_ok"],
                "parse_status": row["parse_status"],
                "mean_answer_tokens": statistics.mean(lengths),
                "answers_at_max_new_tokens": sum(n >= cfg.eval.max_new_tokens for n in lengths),
                "first_answers": row["answers"][:3],
            }
        out["scenarios"].append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", type=int, default=2, help="how many scenarios of --split (default 2)")
    p.add_argument("--split", default="in_sample", help="eval split of split=paper to take them from")
    p.add_argument("--keys", nargs="+", default=None, help="scenario keys instead of the first N of --split")
    p.add_argument("--samples", type=int, default=300, help="answers sampled per scenario (paper: 300)")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (paper: 0.8)")
    p.add_argument("--repetition-penalty", type=float, default=1.1, help="(paper: 1.1)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens per sampled answer (64)")
    p.add_argument("--override", nargs="*", default=[], help="Hydra overrides, e.g. student=hf seed=1")
    p.add_argument("--cache-dir", default=default_cache_dir(), help="where the converted student lives")
    p.add_argument("--out", default=None, help="JSON result path (default: a fresh temp dir)")
    args = p.parse_args(argv)

    cfg = compose_cfg(
        [
            "split=paper",
            "eval=sampled",
            f"eval.samples={args.samples}",
            f"eval.temperature={args.temperature}",
            f"eval.repetition_penalty={args.repetition_penalty}",
            f"eval.max_new_tokens={args.max_new_tokens}",
            *args.override,
        ]
    )
    a = {"split": args.split, "keys": args.keys, "n": args.scenarios, "cache_dir": args.cache_dir}
    facts = machine_facts()
    print(f"[bench] eval_cost: {describe_machine(facts)}", flush=True)
    print(
        f"[bench] student {cfg['student']['model_id']}; sampled route: {args.samples} answers per scenario, "
        f"temperature {args.temperature}, repetition penalty {args.repetition_penalty}, "
        f"max_new_tokens {args.max_new_tokens}",
        flush=True,
    )
    busy_warning(facts)
    results: dict[str, Any] = {}
    for name in ROUTES:  # one heavy process at a time
        print(f"[bench] {LABELS[name]} ...", flush=True)
        results[name] = run_in_child(route, name, cfg, a)
        r = results[name]
        print(
            f"[bench]   {statistics.mean(r['seconds']):.2f} s/scenario, peak RSS "
            f"{r['peak_rss_mb'] / 1024:.2f} GiB, other processes kept {other_load(r)} CPUs busy",
            flush=True,
        )

    ex, sa = results["forced_choice"], results["sampled"]
    rows = []
    for e, s, te, ts in zip(ex["scenarios"], sa["scenarios"], ex["seconds"], sa["seconds"], strict=True):
        rows.append(
            [
                e["scenario"],
                f"{te:.2f}",
                f"{ts:.1f}",
                f"{ts / te:.0f}x",
                f"{e['estimate']:.3f} ({e['valid_mass']:.2f})",
                "-" if s["estimate"] is None else f"{s['estimate']:.3f} ({s['n_ok']}/{s['n']})",
                f"{s['mean_answer_tokens']:.1f}",
            ]
        )
    mean_e, mean_s = statistics.mean(ex["seconds"]), statistics.mean(sa["seconds"])
    rows.append(["mean", f"{mean_e:.2f}", f"{mean_s:.1f}", f"{mean_s / mean_e:.0f}x", "", "", ""])
    print()
    print(
        table(
            [
                "scenario",
                "forced choice s",
                "sampled s",
                "sampled/forced",
                "forced-choice P(C) (valid mass)",
                "sampled P(C) (parsed/n)",
                "sampled tok/answer",
            ],
            rows,
        )
    )
    print()
    n_eval = count_eval_scenarios(as_cfg(cfg))  # split=paper: 20 + 12 + 20 + 1 (donation) = 53
    print(
        f"sampled/forced choice = {mean_s / mean_e:.0f}x wall time per scenario "
        f"({mean_s:.1f} s vs {mean_e:.2f} s; forced choice also builds a token table once per model: "
        f"{ex['setup_seconds']:.2f} s)"
    )
    print(
        f"peak RSS: forced choice {ex['peak_rss_mb'] / 1024:.2f} GiB, "
        f"sampled {sa['peak_rss_mb'] / 1024:.2f} GiB "
        "(each route's own spawned process, model load included); CPUs kept busy by other processes: "
        f"{other_load(ex)} during forced choice, {other_load(sa)} during sampled"
    )
    print(
        f"sampling {args.samples} answers per scenario is the paper's cost: at these rates the "
        f"{n_eval} eval scenarios of split={cfg['split']['name']} x 2 models (base, tuned) take "
        f"~{2 * n_eval * mean_s / 60:.0f} min sampled vs ~{2 * n_eval * mean_e / 60:.1f} min forced choice "
        "here"
    )
    result = {
        "benchmark": "eval_cost",
        "machine": facts,
        "settings": {**a, **{k: v for k, v in vars(args).items() if k not in a}},
        "config": {k: cfg[k] for k in ("student", "eval")},
        "summary": {
            "forced_choice_seconds_per_scenario": mean_e,
            "sampled_seconds_per_scenario": mean_s,
            "ratio_sampled_over_forced_choice": mean_s / mean_e,
            "peak_rss_mb": {"forced_choice": ex["peak_rss_mb"], "sampled": sa["peak_rss_mb"]},
        },
        "routes": results,
    }
    path = write_result(result, args.out, "eval_cost")
    print(f"JSON result: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
