"""Sampling many answers to one prompt: prefill once and share the cache vs re-prefilling per sample.

What it compares, on the real teacher prompt of the first ``--prompts`` training scenarios of
``split=paper`` (instruction ``action_motivation``, rendered by ``render_chat(messages_for(...))``,
~330 tokens with SmolLM2's chat template), with the default model (SmolLM2-135M-Instruct via
``load_student``, fp32, CPU), each route in its own freshly spawned process:

* ``prefill_once``: ``stratdistill.evaluate.sample_answers`` (what the HF teacher and the sampled
  evaluation use): the prompt is prefilled once, its key/value cache copied into a preallocated cache
  for each chunk of ``--chunk`` samples, and ``generate`` continues from it.
* ``num_return_sequences``: one ``model.generate(input_ids, num_return_sequences=chunk, do_sample=True)``
  call per chunk of the same size: transformers expands the prompt ``chunk`` times and prefills every
  copy. Same chunk size as ``prefill_once``, so the two differ only in the prefill.
* ``one_call_per_sample``: ``--samples`` separate ``model.generate`` calls of one sample each (the
  prompt prefilled once per call, no batching).

All routes sample the same way: temperature 0.8, repetition penalty 1.1, pure sampling (top_k=0,
top_p=1), at most ``--max-new-tokens`` new tokens, the same seed. With the same seed and chunk size,
``prefill_once`` and ``num_return_sequences`` draw the same random numbers from the same distribution,
so their answers should come out identical (up to float rounding of the two prefills): the script
counts them, a check that both routes do the same work.

Each route runs on one torch thread by default (``--threads``; 0 keeps torch's default, one per
CPU). On a CPU that other processes share, torch's OpenMP threads wait on each other whenever one is
descheduled: on this 2-core machine with ~8 other runnable processes, 16 answers x 32 tokens took
88 s on 2 threads and 9.6 s on 1. One thread also measures the work each route does rather than how
well its kernels parallelise (the baselines' large batched prefills parallelise better than small
decoding steps, so more threads would shrink their prefill, and the ratio, somewhat).

Reported per route: answers/s and generated tokens/s over the timed calls (after one untimed warm-up
call per route), the same per CPU-second of the route's own process (moves less when other processes
load the machine), mean generated tokens per answer (up to and including the first eos, padding of
finished rows excluded, so that routes whose answers differ in length are compared fairly), peak
resident memory of the route's process (model load included), and how many CPUs other processes kept
busy while it ran. Then the ratios prefill_once / num_return_sequences and prefill_once /
one_call_per_sample, in generated tokens/s.

The saving is the prompt's prefill, repeated ``chunk`` (or ``samples``) times by the baselines; the
decoding of the answers is the same work in all routes (``sample_answers`` decodes into a preallocated
``StaticCache``, which spares the ``torch.cat`` copies of a growing cache, a smaller saving). So the
gain grows as answers get short relative to the prompt and shrinks as they get long:
``--max-new-tokens`` shows it (the paper's teacher answers run up to 600 tokens after ~300-token
prompts).

Usage (from the repository root; ``make bench`` runs the defaults, ~3-4 min on an idle 2-core CPU)::

    .venv/bin/python bench/generation.py                          # 1 prompt, 32 answers x <=32 tokens
    .venv/bin/python bench/generation.py --max-new-tokens 8       # short answers: the gain grows
    .venv/bin/python bench/generation.py --max-new-tokens 128 --routes prefill_once num_return_sequences
    .venv/bin/python bench/generation.py --prompts 2 --samples 64 --chunk 32 --out /tmp/gen.json
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

ROUTES = ("prefill_once", "num_return_sequences", "one_call_per_sample")
LABELS = {
    "prefill_once": "prefill_once (sample_answers: one prefill, shared cache)",
    "num_return_sequences": "num_return_sequences (one prefill per sample, batched)",
    "one_call_per_sample": "one_call_per_sample (one generate call per answer)",
}


def teacher_prompts(cfg, n: int, keys: list[str] | None) -> list[tuple[str, list[dict[str, str]]]]:
    """(scenario key, teacher messages) of the first n training scenarios (or of ``keys``)."""
    from stratdistill.prompts import messages_for
    from stratdistill.scenarios import load_library, resolve_split

    library = load_library(list(cfg.games.library_dirs), cfg.games.prompt_dir)
    train, _ = resolve_split(library, cfg.split)
    if keys:
        pool = {s.key: s for s in train}
        missing = [k for k in keys if k not in pool]
        if missing:
            raise SystemExit(f"--keys {missing}: not training scenarios; known: {sorted(pool)}")
        chosen = [pool[k] for k in keys]
    else:
        chosen = train[:n]
    return [(s.key, messages_for(s, "action_motivation", library)) for s in chosen]


def _eos_ids(model, tok) -> set[int]:
    ids: set[int] = set()
    for v in (tok.eos_token_id, model.generation_config.eos_token_id, model.config.eos_token_id):
        if v is None:
            continue
        ids |= set(v) if isinstance(v, list | tuple) else {v}
    return ids


def generated_lengths(new_tokens, eos: set[int]) -> list[int]:
    """Tokens each row generated: up to and including its first eos (what follows is padding)."""
    lengths = []
    for row in new_tokens.tolist():
        stop = next((i for i, t in enumerate(row) if t in eos), None)
        lengths.append(len(row) if stop is None else stop + 1)
    return lengths


def route(name: str, cfg_container: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    import torch

    from stratdistill.evaluate import sample_answers
    from stratdistill.prompts import render_chat
    from stratdistill.students import load_student

    if a["threads"]:
        torch.set_num_threads(a["threads"])
    cfg = as_cfg(cfg_container)
    model, tok = load_student(cfg.student, a["cache_dir"])
    eos = _eos_ids(model, tok)
    gen = {
        "temperature": a["temperature"],
        "top_k": 0,
        "top_p": 1.0,
        "repetition_penalty": a["repetition_penalty"],
        "pad_token_id": tok.pad_token_id,
    }
    # Record what generate returns (the token ids) without changing what it does: sample_answers
    # returns decoded text only, and the token counts must be read the same way for every route.
    outputs: list[Any] = []
    original_generate = model.generate

    def recording_generate(*args: Any, **kwargs: Any):
        out = original_generate(*args, **kwargs)
        outputs.append(out)
        return out

    model.generate = recording_generate

    def run(prompt: str, n: int, max_new: int, seed: int) -> list[Any]:
        """The route's n answers to prompt; returns each generate call's new tokens."""
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt").input_ids
        plen = ids.shape[1]
        outputs.clear()
        if name == "prefill_once":
            sample_answers(
                model,
                tok,
                prompt,
                n,
                temperature=a["temperature"],
                max_new_tokens=max_new,
                repetition_penalty=a["repetition_penalty"],
                seed=seed,
                chunk=a["chunk"],
            )
        else:
            torch.manual_seed(seed)
            per_call = a["chunk"] if name == "num_return_sequences" else 1
            done = 0
            with torch.no_grad():
                while done < n:
                    k = min(per_call, n - done)
                    model.generate(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        num_return_sequences=k,
                        do_sample=True,
                        max_new_tokens=max_new,
                        **gen,
                    )
                    done += k
        return [o[:, plen:] for o in outputs]

    out: dict[str, Any] = {"route": name, "torch_threads": torch.get_num_threads(), "prompts": []}
    rendered = [(key, render_chat(msgs, tok)) for key, msgs in a["prompts"]]
    run(rendered[0][1], 2, 2, a["seed"])  # warm-up, untimed
    for i, (key, prompt) in enumerate(rendered):
        seed = a["seed"] + i
        c0, t0 = time.process_time(), time.perf_counter()
        new = run(prompt, a["samples"], a["max_new_tokens"], seed)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        lengths = [n for chunk in new for n in generated_lengths(chunk, eos)]
        rows = [r for chunk in new for r in chunk.tolist()]
        texts = [tok.decode(r[:n], skip_special_tokens=True) for r, n in zip(rows, lengths, strict=True)]
        out["prompts"].append(
            {
                "scenario": key,
                "prompt_tokens": len(tok(prompt, add_special_tokens=False).input_ids),
                "answers": len(rows),
                "generate_calls": len(new),
                "seconds": seconds,
                "cpu_seconds": cpu,
                "generated_tokens": sum(lengths),
                "lengths": lengths,
                "answers_at_max_new_tokens": sum(n >= a["max_new_tokens"] for n in lengths),
                "token_rows": [r[:n] for r, n in zip(rows, lengths, strict=True)],
                "first_answers": texts[:3],
            }
        )
    return out


def totals(r: dict[str, Any]) -> dict[str, float]:
    ps = r["prompts"]
    seconds, cpu = sum(p["seconds"] for p in ps), sum(p["cpu_seconds"] for p in ps)
    answers, tokens = sum(p["answers"] for p in ps), sum(p["generated_tokens"] for p in ps)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "answers": answers,
        "generated_tokens": tokens,
        "answers_per_s": answers / seconds,
        "tokens_per_s": tokens / seconds,
        "answers_per_cpu_s": answers / cpu,
        "tokens_per_cpu_s": tokens / cpu,
        "mean_tokens_per_answer": tokens / answers,
        "answers_at_max_new_tokens": sum(p["answers_at_max_new_tokens"] for p in ps),
    }


def same_answers(r: dict[str, Any], ref: dict[str, Any]) -> int:
    """How many answers are token for token those of the reference route (same prompt, same index)."""
    return sum(
        x == y
        for p, q in zip(r["prompts"], ref["prompts"], strict=True)
        for x, y in zip(p["token_rows"], q["token_rows"], strict=False)
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=1, help="how many training scenarios' prompts (default 1)")
    p.add_argument("--keys", nargs="+", default=None, help="training scenario keys instead of the first N")
    p.add_argument("--samples", type=int, default=32, help="answers per prompt (default 32)")
    p.add_argument("--chunk", type=int, default=16, help="rows per generate call, both batched routes (16)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="tokens per answer at most (default 32)")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (paper: 0.8)")
    p.add_argument("--repetition-penalty", type=float, default=1.1, help="(paper: 1.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads per route (default 1; 0: torch's default)"
    )
    p.add_argument("--routes", nargs="+", choices=ROUTES, default=list(ROUTES), help="which routes to run")
    p.add_argument("--override", nargs="*", default=[], help="Hydra overrides, e.g. student=hf")
    p.add_argument("--cache-dir", default=default_cache_dir(), help="where the converted student lives")
    p.add_argument("--out", default=None, help="JSON result path (default: a fresh temp dir)")
    args = p.parse_args(argv)
    if "prefill_once" not in args.routes:
        p.error("--routes must include prefill_once (the ratios are against it)")

    cfg = compose_cfg(["split=paper", *args.override])
    prompts = teacher_prompts(as_cfg(cfg), args.prompts, args.keys)
    a = {
        "prompts": prompts,
        "samples": args.samples,
        "chunk": args.chunk,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "repetition_penalty": args.repetition_penalty,
        "seed": args.seed,
        "threads": args.threads,
        "cache_dir": args.cache_dir,
    }
    facts = machine_facts()
    print(f"[bench] generation: {describe_machine(facts)}", flush=True)
    print(
        f"[bench] model {cfg['student']['model_id']}; {len(prompts)} teacher prompt(s) "
        f"({', '.join(k for k, _ in prompts)}, action_motivation) x {args.samples} answers, "
        f"max_new_tokens {args.max_new_tokens}, temperature {args.temperature}, repetition penalty "
        f"{args.repetition_penalty}, top_k=0 top_p=1, {args.chunk} rows per batched generate call, "
        f"torch threads {args.threads or facts['torch_threads']}",
        flush=True,
    )
    busy_warning(facts)
    results: dict[str, Any] = {}
    for name in args.routes:  # one heavy process at a time
        print(f"[bench] {LABELS[name]} ...", flush=True)
        results[name] = run_in_child(route, name, cfg, a)
        r, t = results[name], totals(results[name])
        print(
            f"[bench]   {t['seconds']:.1f} s for {t['answers']} answers, peak RSS "
            f"{r['peak_rss_mb'] / 1024:.2f} GiB, other processes kept {other_load(r)} CPUs busy",
            flush=True,
        )

    ref = results["prefill_once"]
    tot = {n: totals(r) for n, r in results.items()}
    rows = []
    for name, r in results.items():
        t = tot[name]
        same = "-" if name != "num_return_sequences" else f"{same_answers(r, ref)}/{t['answers']}"
        rows.append(
            [
                name,
                f"{t['answers_per_s']:.2f}",
                f"{t['tokens_per_s']:.1f}",
                f"{t['tokens_per_cpu_s']:.1f}",
                f"{t['mean_tokens_per_answer']:.1f}",
                f"{t['seconds']:.1f}",
                f"{r['peak_rss_mb'] / 1024:.2f}",
                other_load(r),
                same,
            ]
        )
    print()
    print(
        table(
            [
                "route",
                "answers/s",
                "gen tok/s",
                "gen tok/CPU-s",
                "tok/answer",
                "wall s",
                "peak RSS GiB",
                "other load",
                "same as prefill_once",
            ],
            rows,
        )
    )
    print()
    ratios: dict[str, dict[str, float]] = {}
    for name in results:
        if name == "prefill_once":
            continue
        b, o = tot[name], tot["prefill_once"]
        ratios[name] = {
            "tokens_per_s": o["tokens_per_s"] / b["tokens_per_s"],
            "answers_per_s": o["answers_per_s"] / b["answers_per_s"],
            "tokens_per_cpu_s": o["tokens_per_cpu_s"] / b["tokens_per_cpu_s"],
        }
        print(
            f"prefill_once / {name} = {ratios[name]['tokens_per_s']:.1f}x generated tokens/s "
            f"({ratios[name]['answers_per_s']:.1f}x answers/s, "
            f"{ratios[name]['tokens_per_cpu_s']:.1f}x per CPU-second)"
        )
    plen = statistics.mean(p["prompt_tokens"] for p in ref["prompts"])
    mean_len = tot["prefill_once"]["mean_tokens_per_answer"]
    print(
        f"the gain is the prompt's prefill ({plen:.0f} tokens here) done once instead of once per sample; "
        "decoding is nearly the same work in every route, so the ratio grows as answers get short "
        f"relative to the prompt (here <= {args.max_new_tokens} new tokens, {mean_len:.1f} on average) "
        "and shrinks toward 1 as they get long (the paper's teacher: up to 600 tokens after ~300-token "
        "prompts); try --max-new-tokens 8 or 128"
    )
    loads = ", ".join(f"{other_load(r)} during {n}" for n, r in results.items())
    print(f"CPUs kept busy by other processes: {loads} (rerun when above ~0.2)")
    for r in results.values():  # the token ids served the checks above; keep the JSON readable
        for pr in r["prompts"]:
            pr.pop("token_rows")
    result = {
        "benchmark": "generation",
        "machine": facts,
        "settings": {**{k: v for k, v in a.items() if k != "prompts"}, "prompts": [k for k, _ in prompts]},
        "config": {"student": cfg["student"]},
        "summary": {
            "routes": tot,
            "ratios_prefill_once_over": ratios,
            "peak_rss_mb": {n: r["peak_rss_mb"] for n, r in results.items()},
            "other_load_cpus": {n: r["other_load_cpus"] for n, r in results.items()},
        },
        "routes": results,
    }
    path = write_result(result, args.out, "generation")
    print(f"JSON result: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
