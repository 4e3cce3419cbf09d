#!/usr/bin/env python3
"""One command that checks the training and sampling paths on a GPU, and writes one JSON file.

    python3 scripts/gpu_check.py --out gpu_check.json        # or: make gpu-check

With CUDA it runs at realistic size (a SmolLM2-135M-shaped student, a Llama-2-7B-shaped LoRA step) in
under 9 minutes on one H200, offline; without CUDA the same checks run at toy size on CPU in well under
2 minutes (``tests/test_gpu_check.py`` runs it so), and the checks that need CUDA (QLoRA through
bitsandbytes, the SDPA kernel sweep) are recorded as ``skipped: no CUDA``, never as passes.

Checks: ``packing_exact`` (shared-prefix pack loss and LoRA gradients equal the per-example batch, fp32
and bf16, SDPA with the float mask), ``sdpa_kernels`` (each SDPA backend forced on one pack),
``finetune_lora`` / ``finetune_qlora`` / ``finetune_full`` (``stratdistill.finetune.finetune`` in bf16,
interrupted after a checkpoint and resumed to the same weights), ``evaluate_students`` (base and tuned
scored on the device, same dtype), ``lora_step_7b`` (peak memory and tokens/s of one 2,048-token pack),
``teacher_sampling`` (prefill-once sampling vs plain ``generate``). ``provenance`` records versions and
the device. Exit status 1 if any check failed.

The GPU machine has an older transformers and no hydra/omegaconf/bitsandbytes: ``make gpu-deps``
(scripts/fetch_gpu_deps.sh) puts wheels and the student's tokenizer into ``.gpu-deps/``, installed here
offline into ``.gpu-deps/site`` at start (only what the running Python lacks). Configs are built as
``SimpleNamespace`` objects; no hydra is imported on this path (``--block-imports`` proves it in the test).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gpu_checks import deps

CHECK_ORDER = (
    "packing_exact",
    "sdpa_kernels",
    "finetune_lora",
    "finetune_qlora",
    "finetune_full",
    "evaluate_students",
    "lora_step_7b",
    "teacher_sampling",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="gpu_check.json", help="the JSON result (default gpu_check.json)")
    p.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir, removed at the end)")
    p.add_argument("--tokenizer", default=None, help="student tokenizer folder (default .gpu-deps/tokenizer)")
    p.add_argument("--block-imports", nargs="*", default=[], help="packages to make unimportable (tests)")
    p.add_argument("--no-deps", action="store_true", help="ignore .gpu-deps/wheels")
    p.add_argument(
        "--budget-s", type=float, default=None, help="checks not started by then fail (CUDA 500, CPU 110)"
    )
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads on CPU (default 1; 0: torch's default)"
    )
    p.add_argument("--only", nargs="*", choices=CHECK_ORDER, default=None, help="run only these checks")
    p.add_argument("--export-tokenizer", metavar="DIR", help="write the default student's tokenizer and exit")
    return p.parse_args(argv)


def run_checks(args: argparse.Namespace, workdir: Path, deadline: float) -> tuple[dict[str, Any], str]:
    import torch
    from gpu_checks import common, packing_check, perf_check, train_check

    cuda = torch.cuda.is_available()
    if not cuda and args.threads:
        torch.set_num_threads(args.threads)  # on a shared CPU, more threads wait on each other
    size = common.CUDA_SIZE if cuda else common.CPU_SIZE
    tok_dir = common.resolve_tokenizer(args.tokenizer, workdir)
    model_dir = common.write_random_student(workdir / "student", tok_dir, size.student)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    examples: list[Any] = []

    def finetune(method: str):
        def fn() -> dict[str, Any]:
            if not examples:
                examples.extend(train_check.training_examples(size.scenarios, size.samples_per_scenario))
            return train_check.check_finetune(method, model_dir, workdir, examples, size.train_steps)

        return fn

    plan = {
        "packing_exact": lambda: packing_check.check_packing(model_dir, tok, size.answers_per_pack),
        "sdpa_kernels": lambda: packing_check.check_sdpa_kernels(model_dir, tok, size.answers_per_pack),
        "finetune_lora": finetune("lora"),
        "finetune_qlora": finetune("qlora"),
        "finetune_full": finetune("full"),
        "evaluate_students": lambda: train_check.check_evaluate(model_dir, workdir, size.eval_contexts),
        "lora_step_7b": lambda: perf_check.check_lora_step(size.big, size.big_pack_tokens, size.big_steps),
        "teacher_sampling": lambda: perf_check.check_sampling(model_dir, size.samples, size.max_new_tokens),
    }
    checks = {}
    for name in CHECK_ORDER:
        if args.only is None or name in args.only:
            checks[name] = common.run_check(name, plan[name], deadline)
    return checks, str(tok_dir)


def summary_line(name: str, r: dict[str, Any]) -> str:
    """One line per check with its headline numbers."""
    extra = ""
    if name == "packing_exact" and "float32" in r:
        extra = ", ".join(
            f"{k} loss err {r[k]['loss_rel_error']:.1e} grad err {r[k]['grad_rel_l2_error']:.1e}"
            for k in ("float32", "bfloat16")
            if k in r
        )
    elif name.startswith("finetune_") and "resumed_vs_uninterrupted" in r:
        extra = f"resumed rel diff {r['resumed_vs_uninterrupted'].get('rel_l2_diff', float('nan')):.1e}"
    elif name == "lora_step_7b" and "tokens_per_s" in r:
        mem = r.get("cuda_max_memory_allocated_bytes") or r.get("cpu_peak_rss_bytes", 0)
        extra = f"{r['tokens_per_s']:.0f} tok/s, peak {mem / 2**30:.2f} GiB"
    elif name == "teacher_sampling" and "routes" in r:
        extra = f"prefill-once {r['prefill_once_speedup_tokens_per_s']:.2f}x plain generate (tok/s)"
    elif name == "evaluate_students" and "base" in r:
        extra = f"{r['base']['device']} {r['base']['dtype']} / {r['tuned']['dtype']}"
    return f"  {name:<18} {r['status']:<24} {r.get('seconds', 0):>7.1f} s  {extra}".rstrip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    deps.block_imports(args.block_imports)
    t0 = time.monotonic()
    import torch  # not among the wheels; it says whether the CUDA-only wheel (bitsandbytes) is wanted

    cuda = torch.cuda.is_available()
    deps_info = {"skipped": "--no-deps"} if args.no_deps else deps.bootstrap(cuda=cuda)
    deps_info["stratdistill"] = deps.ensure_stratdistill()
    if args.export_tokenizer:
        from gpu_checks.common import export_student_tokenizer

        print(export_student_tokenizer(Path(args.export_tokenizer)))
        return 0
    from gpu_checks import common

    mode = "cuda" if cuda else "cpu"
    budget = args.budget_s or (500.0 if mode == "cuda" else 110.0)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gpu-check-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        checks, tok_dir = run_checks(args, workdir, t0 + budget)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [n for n, r in checks.items() if r["status"].startswith("failed")]
    result = {
        "schema_version": 1,
        "mode": mode,
        "ok": not failed,
        "failed": failed,
        "skipped": {n: r["status"] for n, r in checks.items() if r["status"].startswith("skipped")},
        "seconds": round(time.monotonic() - t0, 1),
        "budget_seconds": budget,
        "tokenizer": tok_dir,
        "hydra_or_omegaconf_imported": sorted({"hydra", "omegaconf"} & set(sys.modules)),
        "deps": deps_info,
        "provenance": common.provenance(),
        "checks": checks,
    }
    out = Path(args.out)
    common.dump(out, result)
    print(f"[gpu-check] {mode} mode, {result['seconds']} s, {result['provenance']['device_name']}")
    for name, r in checks.items():
        print(summary_line(name, r))
    print(f"[gpu-check] {'OK' if result['ok'] else 'FAILED: ' + ', '.join(failed)}; JSON: {out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
