"""Agreement at the paper's decoding: the forced-choice estimate against the answers the model gives.

For the base student and the tuned student of the default pipeline (its fine-tune is built, or reused
from the stage cache, with ``until=finetune``; ``--adapter`` names another PEFT adapter) and each
scenario (:mod:`stratdistill.agreement`):

* the forced-choice estimate at the evaluation's settings (temperature 0.8, no penalty) and at the
  paper's full decoding (temperature 0.8, repetition penalty 1.1);
* ``--free-samples`` answers sampled with the paper's decoding (temperature 0.8, repetition penalty 1.1,
  no top-k / top-p truncation, ``--max-new-tokens``) to the one-letter instruction, parsed: parse rate,
  P(C) of the parsed answers with its 95% Wilson interval, and the difference to the forced choice;
* ``--opening-samples`` answers sampled with the same decoding after the forced opening: their share of
  C must match the forced choice at the paper's decoding (|z| < 3), a check of the estimator itself.

Usage (from the repository root; ~10 min at the defaults on a 2-core CPU, more if the fine-tune must be
built)::

    .venv/bin/python bench/agreement.py
    .venv/bin/python bench/agreement.py --keys IR_prison team_prison sports_prison --free-samples 200
    .venv/bin/python bench/agreement.py --adapter outputs/.../adapter --override student=hf ...
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from typing import Any

from _common import as_cfg, compose_cfg, describe_machine, machine_facts, table, write_result

DEFAULT_KEYS = ["IR_prison", "friendsharing_delight", "sports_prison", "roomsharing_delight"]


def tuned_adapter(cfg) -> str:
    """The default pipeline's adapter: built (or reused from the stage cache) through ``until=finetune``."""
    from stratdistill.pipeline import run_pipeline

    cfg.until = "finetune"
    with tempfile.TemporaryDirectory() as out:
        result = run_pipeline(cfg, out)
    return str(result.artifacts["finetune"].path / "adapter")


def fmt(x: Any, digits: int = 3) -> str:
    from stratdistill.formatting import fmt as f

    return f(x, digits)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", nargs="+", default=DEFAULT_KEYS, help="2x2 scenarios of split=paper")
    p.add_argument("--free-samples", type=int, default=100, help="free answers per scenario and model")
    p.add_argument("--opening-samples", type=int, default=300, help="answers after the forced opening")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens per free answer (64)")
    p.add_argument(
        "--adapter", default=None, help="PEFT adapter of the tuned student (default: the pipeline's)"
    )
    p.add_argument("--override", nargs="*", default=[], help="Hydra overrides of the pipeline's config")
    p.add_argument("--out", default=None, help="JSON result path (default: a fresh temp dir)")
    args = p.parse_args(argv)

    import torch

    from stratdistill.agreement import agreement
    from stratdistill.scenarios import load_library, resolve_split
    from stratdistill.students import load_student

    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = as_cfg(compose_cfg(["split=paper", *args.override]))
    library = load_library(list(cfg.games.library_dirs), cfg.games.prompt_dir)
    _, evals = resolve_split(library, cfg.split)
    pool = {s.key: s for ss in evals.values() for s in ss}
    missing = [k for k in args.keys if k not in pool]
    if missing:
        raise SystemExit(f"--keys {missing}: not in split=paper; known: {sorted(pool)}")
    facts = machine_facts()
    print(f"[bench] agreement: {describe_machine(facts)}", flush=True)
    adapter = args.adapter or tuned_adapter(as_cfg(compose_cfg(["split=paper", *args.override])))
    print(f"[bench] tuned student: {adapter}", flush=True)
    rows: list[dict[str, Any]] = []
    started = time.time()
    for label, path in (("base", None), ("tuned", adapter)):
        model, tok = load_student(cfg.student, cfg.cache_dir, adapter=path)
        for key in args.keys:
            t0 = time.time()
            r = agreement(
                model,
                tok,
                pool[key],
                library,
                cfg.eval,
                free_samples=args.free_samples,
                opening_samples=args.opening_samples,
                max_new_tokens=args.max_new_tokens,
                seed=cfg.seed,
            )
            rows.append({"model": label, **r, "seconds": time.time() - t0})
            print(f"[bench]   {label} {key}: {time.time() - t0:.0f} s", flush=True)
    print()
    print(
        table(
            [
                "model",
                "scenario",
                "forced choice P(C) (mass)",
                "at paper decoding (mass)",
                "free: parsed/n",
                "free P(C) [95% CI]",
                "free − forced [95% CI]",
                "after opening P(C) (z)",
            ],
            [
                [
                    r["model"],
                    r["scenario"],
                    f"{fmt(r['forced_choice'])} ({fmt(r['forced_choice_valid_mass'], 2)})",
                    f"{fmt(r['forced_choice_paper_decoding'])} "
                    f"({fmt(r['forced_choice_paper_decoding_valid_mass'], 2)})",
                    f"{r['free_parsed']}/{r['free_n']}",
                    f"{fmt(r['free_p_c'])} [{fmt(r['free_low'])}, {fmt(r['free_high'])}]",
                    f"{fmt(r['free_minus_forced'])} [{fmt(r['free_minus_forced_low'])}, "
                    f"{fmt(r['free_minus_forced_high'])}]",
                    f"{fmt(r['opening_p_c'])} ({fmt(r['opening_z'], 1)})",
                ]
                for r in rows
            ],
        )
    )
    bad = [r for r in rows if r["opening_z"] is not None and abs(r["opening_z"]) >= 3]
    print(
        f"\nestimator check (sampling after the opening vs forced choice at the paper's decoding): "
        f"{'PASS' if not bad else 'FAIL: ' + ', '.join(r['model'] + ' ' + r['scenario'] for r in bad)}"
    )
    path = write_result(
        {
            "benchmark": "agreement",
            "machine": facts,
            "settings": vars(args) | {"adapter": adapter},
            "seconds": time.time() - started,
            "rows": rows,
        },
        args.out,
        "agreement",
    )
    print(f"JSON result: {path}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
