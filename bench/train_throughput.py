"""Training throughput: our shared-prefix packs vs TRL's per-example SFT batch, on paper-shaped data.

What it compares, per data arm (action-only answers, answers with motivations):

* ``trl``: TRL's ``SFTTrainer`` as an ordinary user runs it: a conversational prompt-completion dataset
  (``prompt`` = the scenario's system+user messages, ``completion`` = the answer as the assistant turn),
  completion-only loss (TRL's default for prompt-completion data), LoRA through ``peft_config``, the
  default collator (each answer is its own row, right-padded to the longest in the batch), so the
  ~330-token prompt is recomputed for every answer.
* ``ours``: ``stratdistill.packing``: ``build_packs`` puts one prompt and all the step's answers in one
  sequence, trained with ``pack_loss`` through the project's own Trainer subclass (the HF Trainer path
  of ``stratdistill.finetune``: ``_shared_prefix_trainer_class()`` + ``PackCollator``). ``finetune()``
  itself is not called because it shuffles packs and writes adapters and audit files; everything else
  (LoRA via ``lora_model``, AdamW, scheduler, Trainer loop) is the same code.

Both routes: the same student (default SmolLM2-135M-Instruct via ``load_student``, fp32, CPU), the same
LoRA (``lora=paper``: r=8, alpha=16, q_proj/v_proj, same seed, so the same initial adapter), the same
learning rate and schedule (``train=laptop``), the same answers in the same groups in the same order
(one step = one training scenario's next ``--answers-per-step`` answers; both Trainers sample
sequentially), one optimiser step per group, ``--steps`` steps. The data are the stand-in
``ReferenceTeacher``'s answers over the paper's 20 training scenarios (``split=paper``), so every prompt
has many answers, as in the paper (300 per scenario).

Fairness choices, all printed and saved: SFTConfig turns gradient checkpointing and bf16 on by
default; both are switched off here so that both routes do the same fp32 arithmetic without
recomputation (``--trl-defaults`` keeps TRL's defaults instead). The chat template closes the assistant
turn with ``<|im_end|>`` and a newline, so TRL's completion has one more target token per answer than
ours (answer + eos); by default that trailing newline's label is set to -100 after TRL has prepared
its dataset (its input and compute are unchanged), which makes the two losses the same function of
the weights; ``--trl-labels template`` keeps TRL's labels as they are (the losses then differ
slightly by construction). Our packs are built with a length limit of max(``train.max_length``, the
longest group) so that each group is exactly one pack: 16 answers with motivations plus their prompt
reach ~2,200 tokens, over the laptop config's 2,048, where the project would split the group in two.

Reported per arm and route: answers/second over the steps after ``--warmup-steps`` (the first step
pays one-off allocation costs), median seconds per step, the loss of every step, the final loss, and
peak resident memory of the route's own process (each route runs in a fresh spawned process). The
ratio ours/TRL is checked against the issue's floors: >= 5x with action-only answers, >= 2x with
motivations; PASS/FAIL is printed as measured.

Usage (from the repository root; ``make bench`` runs the defaults, ~7-8 min on a 2-core CPU)::

    .venv/bin/pip install -e '.[bench]'                       # trl
    .venv/bin/python bench/train_throughput.py                # both arms, 3 steps x 16 answers each
    .venv/bin/python bench/train_throughput.py --arms action_only --steps 4
    .venv/bin/python bench/train_throughput.py --answers-per-step 32 --out /tmp/tp.json
    .venv/bin/python bench/train_throughput.py --override student=hf student.model_id=/path/to/model
    .venv/bin/python bench/train_throughput.py --trl-defaults --trl-labels template   # TRL untouched
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
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

ARMS = {"action_only": False, "motivations": True}
FLOORS = {"action_only": 5.0, "motivations": 2.0}  # the targets for ours/TRL answers per second
ROUTES = ("trl", "ours")
LABELS = {"trl": "TRL SFTTrainer (per-example)", "ours": "ours (shared-prefix packs)"}


# ----------------------------------------------------------------------------------------------- data
def build_examples(cfg, motivations: bool, steps: int, per_step: int, seed: int) -> list[dict[str, Any]]:
    """steps x per_step prompt/completion examples, grouped: each consecutive per_step share one prompt.

    Scenario by scenario (the paper's 20 training scenarios, in split order), each scenario
    contributing whole groups, as many groups per scenario as needed to reach ``steps``.
    """
    from stratdistill.dataset import sample_teacher, training_examples
    from stratdistill.scenarios import load_library, resolve_split
    from stratdistill.teachers.reference import ReferenceTeacher

    library = load_library(list(cfg.games.library_dirs), cfg.games.prompt_dir)
    train, _ = resolve_split(library, cfg.split)
    groups_per_scenario = math.ceil(steps / len(train))
    per_scenario = groups_per_scenario * per_step
    teacher = ReferenceTeacher(name=cfg.teacher.name)
    rows = sample_teacher(
        teacher,
        train,
        library,
        "action_motivation",
        per_scenario + 8,  # a margin for unparseable answers (the stand-in has none)
        seed,
        cfg.temperature.teacher,
        purpose="train",
    )
    examples = training_examples(rows, motivations, per_scenario, order=cfg.data.order, seed=seed)
    examples = examples[: steps * per_step]
    groups = [examples[i : i + per_step] for i in range(0, len(examples), per_step)]
    bad = [g for g in groups if len(g) != per_step or len({e["scenario"] for e in g}) != 1]
    if len(groups) != steps or bad:
        raise RuntimeError("could not build equal single-prompt groups; try fewer --answers-per-step")
    return examples


def answer_ids(example: dict[str, Any], tok) -> list[int]:
    """Our training targets for one answer: its tokens and eos (as build_packs / tokenize_example)."""
    return [*tok(example["completion"], add_special_tokens=False).input_ids, tok.eos_token_id]


# ----------------------------------------------------------------------------------------------- routes
def _step_clock():
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        """Wall time of each optimiser step, end to end (data, forward, backward, optimiser, logging)."""

        def __init__(self) -> None:
            self.marks: list[tuple[float, float]] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.marks = [(time.perf_counter(), time.process_time())]

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append((time.perf_counter(), time.process_time()))

        @property
        def step_seconds(self) -> list[float]:
            return [b[0] - a[0] for a, b in zip(self.marks, self.marks[1:], strict=False)]

        @property
        def step_cpu_seconds(self) -> list[float]:
            """CPU time of this process (all threads) per step: less sensitive to other load."""
            return [b[1] - a[1] for a, b in zip(self.marks, self.marks[1:], strict=False)]

    return StepClock()


def _recording(base):
    """``base`` with every training loss recorded at full precision (the logs round and average)."""

    class Recording(base):
        bench_losses: list[float]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
            loss = out[0] if return_outputs else out
            self.bench_losses = [*getattr(self, "bench_losses", []), float(loss.detach())]
            return out

    return Recording


def _lora_checksum(model) -> float:
    """Sum of every LoRA A matrix (B starts at zero): equal sums mean the same initial adapter."""
    return float(sum(p.detach().double().sum() for n, p in model.named_parameters() if "lora_A" in n))


def _common_args(cfg, a: dict[str, Any]) -> dict[str, Any]:
    return {
        "output_dir": tempfile.mkdtemp(prefix="bench-trainer-"),
        "gradient_accumulation_steps": 1,
        "learning_rate": float(cfg.train.learning_rate),
        "lr_scheduler_type": cfg.train.lr_scheduler,
        "warmup_steps": 0,
        "weight_decay": float(cfg.train.weight_decay),
        "max_steps": a["steps"],
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "seed": a["seed"],
        "data_seed": a["seed"],
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "train_sampling_strategy": "sequential",  # the same groups in the same order in both routes
        "disable_tqdm": True,
    }


def route_ours(cfg_container: dict[str, Any], a: dict[str, Any], motivations: bool) -> dict[str, Any]:
    from transformers import PrinterCallback, TrainingArguments, set_seed

    from stratdistill.finetune import _shared_prefix_trainer_class, lora_model
    from stratdistill.packing import PackCollator, build_packs
    from stratdistill.prompts import render_chat
    from stratdistill.students import load_student

    cfg = as_cfg(cfg_container)
    examples = build_examples(cfg, motivations, a["steps"], a["per_step"], a["seed"])
    model, tok = load_student(cfg.student, a["cache_dir"])
    model.train()
    set_seed(a["seed"])
    model = lora_model(model, cfg.lora)
    checksum = _lora_checksum(model)
    t0 = time.perf_counter()
    # One pack per step needs room for a whole group; train.max_length (2048) can be too short for 16
    # answers with motivations, and build_packs would then split the group into two packs.
    per = a["per_step"]
    needed = max(
        len(tok(render_chat(examples[i]["messages"], tok), add_special_tokens=False).input_ids)
        + sum(len(answer_ids(e, tok)) for e in examples[i : i + per])
        for i in range(0, len(examples), per)
    )
    pack_max_length = max(int(cfg.train.max_length), needed)
    packs, skipped = build_packs(examples, tok, per, pack_max_length)
    if skipped or len(packs) != a["steps"] or any(len(p.segments) != a["per_step"] for p in packs):
        raise RuntimeError(f"packs do not match the groups ({len(packs)} packs, {skipped} skipped)")
    for i, p in enumerate(packs):  # pack i holds exactly group i's answers, in order
        group = examples[i * a["per_step"] : (i + 1) * a["per_step"]]
        if p.targets != [t for e in group for t in answer_ids(e, tok)]:
            raise RuntimeError(f"pack {i} does not hold group {i}'s answers")
    args = TrainingArguments(
        **_common_args(cfg, a), per_device_train_batch_size=1, remove_unused_columns=False
    )
    clock = _step_clock()
    trainer = _recording(_shared_prefix_trainer_class())(
        model=model,
        args=args,
        train_dataset=packs,
        data_collator=PackCollator(next(model.parameters()).dtype),
        callbacks=[clock],
    )
    trainer.remove_callback(PrinterCallback)  # our own summary line replaces the per-step dicts
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    trainer.train()
    return {
        "route": "ours",
        "how": "stratdistill SharedPrefixTrainer (HF Trainer) + build_packs + PackCollator + pack_loss",
        "setup_seconds": setup,
        "train_seconds": time.perf_counter() - t1,
        "step_seconds": clock.step_seconds,
        "step_cpu_seconds": clock.step_cpu_seconds,
        "load_average_1m_at_end": os.getloadavg()[0],
        "losses": trainer.bench_losses,
        "answers_per_step": [len(p.segments) for p in packs],
        "target_tokens_per_step": [len(p.targets) for p in packs],
        "sequence_tokens_per_step": [len(p.input_ids) for p in packs],
        "computed_tokens_per_step": [len(p.input_ids) for p in packs],
        "prompt_tokens": [p.prompt_len for p in packs],
        "pack_max_length": pack_max_length,
        "train_max_length": int(cfg.train.max_length),
        "lora_a_checksum_at_start": checksum,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def route_trl(cfg_container: dict[str, Any], a: dict[str, Any], motivations: bool) -> dict[str, Any]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    from stratdistill.finetune import lora_alpha_and_scale
    from stratdistill.prompts import render_chat
    from stratdistill.students import load_student

    cfg = as_cfg(cfg_container)
    examples = build_examples(cfg, motivations, a["steps"], a["per_step"], a["seed"])
    model, tok = load_student(cfg.student, a["cache_dir"])
    t0 = time.perf_counter()
    dataset = Dataset.from_list(
        [
            {"prompt": e["messages"], "completion": [{"role": "assistant", "content": e["completion"]}]}
            for e in examples
        ]
    )
    lora_alpha, use_rslora, _ = lora_alpha_and_scale(cfg.lora)
    peft_config = LoraConfig(
        r=int(cfg.lora.r),
        lora_alpha=lora_alpha,
        use_rslora=use_rslora,
        lora_dropout=float(cfg.lora.dropout),
        target_modules=list(cfg.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    precision = {} if a["trl_defaults"] else {"gradient_checkpointing": False, "bf16": False, "fp16": False}
    config = SFTConfig(
        **_common_args(cfg, a),
        per_device_train_batch_size=a["per_step"],
        max_length=int(cfg.train.max_length),
        **precision,
    )
    clock = _step_clock()
    set_seed(a["seed"])  # SFTTrainer also seeds before wrapping the model in LoRA
    trainer = _recording(SFTTrainer)(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tok,
        peft_config=peft_config,
        callbacks=[clock],
    )
    # Compare TRL's prepared rows with our targets, and (default) drop the template's trailing target.
    want = [answer_ids(e, tok) for e in examples]
    prompts = [tok(render_chat(e["messages"], tok), add_special_tokens=False).input_ids for e in examples]
    inputs_ok, answers_ok, extra = [], [], []

    def align(row: dict[str, Any], i: int) -> dict[str, Any]:
        labels, ids, plen, n = list(row["labels"]), row["input_ids"], len(prompts[i]), len(want[i])
        idx = [j for j, t in enumerate(labels) if t != -100]
        inputs_ok.append(ids[:plen] == prompts[i] and ids[plen : plen + n] == want[i])
        answers_ok.append(idx[:n] == list(range(plen, plen + n)) and [labels[j] for j in idx[:n]] == want[i])
        extra.append(tok.convert_ids_to_tokens([labels[j] for j in idx[n:]]))
        if a["trl_labels"] == "matched":
            for j in idx[n:]:
                labels[j] = -100
        return {"labels": labels}

    trainer.remove_callback(PrinterCallback)
    trainer.train_dataset = trainer.train_dataset.map(align, with_indices=True)
    lengths = [len(r) for r in trainer.train_dataset["input_ids"]]
    targets = [sum(t != -100 for t in r) for r in trainer.train_dataset["labels"]]
    per = a["per_step"]
    setup = time.perf_counter() - t0
    checksum = _lora_checksum(trainer.model)
    t1 = time.perf_counter()
    trainer.train()
    return {
        "route": "trl",
        "how": "trl.SFTTrainer, conversational prompt-completion dataset, LoRA via peft_config",
        "sft_config": {
            k: getattr(config, k)
            for k in (
                "gradient_checkpointing",
                "bf16",
                "fp16",
                "completion_only_loss",
                "padding_free",
                "packing",
                "loss_type",
                "optim",
                "per_device_train_batch_size",
            )
        },
        "trl_labels": a["trl_labels"],
        "setup_seconds": setup,
        "train_seconds": time.perf_counter() - t1,
        "step_seconds": clock.step_seconds,
        "step_cpu_seconds": clock.step_cpu_seconds,
        "load_average_1m_at_end": os.getloadavg()[0],
        "losses": trainer.bench_losses,
        "answers_per_step": [per] * a["steps"],
        "target_tokens_per_step": [sum(targets[i : i + per]) for i in range(0, len(targets), per)],
        "sequence_tokens_per_step": [sum(lengths[i : i + per]) for i in range(0, len(lengths), per)],
        "computed_tokens_per_step": [max(lengths[i : i + per]) * per for i in range(0, len(lengths), per)],
        "answer_targets_match_ours": all(answers_ok),
        "input_starts_with_our_prompt_and_answer": all(inputs_ok),
        "template_extra_targets": sorted({" ".join(x) for x in extra}),
        "lora_a_checksum_at_start": checksum,
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
    }


# ----------------------------------------------------------------------------------------------- report
def rate(res: dict[str, Any], warmup: int) -> tuple[float, float]:
    """(answers per second after warm-up, median seconds per step after warm-up)."""
    secs, answers = res["step_seconds"], res["answers_per_step"]
    k = warmup if len(secs) > warmup else 0
    return sum(answers[k:]) / sum(secs[k:]), statistics.median(secs[k:])


def cpu_rate(res: dict[str, Any], warmup: int) -> float:
    """Answers per CPU-second of the route's process after warm-up (a cross-check under other load)."""
    secs, answers = res["step_cpu_seconds"], res["answers_per_step"]
    k = warmup if len(secs) > warmup else 0
    return sum(answers[k:]) / sum(secs[k:])


def loss_agreement(trl: dict[str, Any], ours: dict[str, Any], rtol: float, matched: bool) -> dict[str, Any]:
    rel = [abs(x - y) / max(abs(y), 1e-12) for x, y in zip(trl["losses"], ours["losses"], strict=True)]
    same = matched and trl["answer_targets_match_ours"] and trl["input_starts_with_our_prompt_and_answer"]
    if not same:
        verdict = "not comparable token for token (TRL's labels include the template's extra target)"
    elif max(rel) <= rtol:
        verdict = f"agree within noise (max relative difference {max(rel):.1e} <= {rtol:g})"
    else:
        verdict = f"DISAGREE (max relative difference {max(rel):.1e} > {rtol:g})"
    return {"relative_difference_per_step": rel, "max_relative_difference": max(rel), "verdict": verdict}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    p.add_argument("--steps", type=int, default=3, help="optimiser steps per route (default 3)")
    p.add_argument(
        "--answers-per-step", type=int, default=16, help="answers per step: pack size = batch size (16)"
    )
    p.add_argument("--warmup-steps", type=int, default=1, help="leading steps left out of the rates (1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loss-rtol", type=float, default=1e-3, help="relative loss difference called noise")
    p.add_argument("--trl-labels", choices=["matched", "template"], default="matched")
    p.add_argument("--trl-defaults", action="store_true", help="keep SFTConfig's gradient ckpt + bf16")
    p.add_argument("--strict", action="store_true", help="exit 1 when a floor is missed")
    p.add_argument("--override", nargs="*", default=[], help="Hydra overrides, e.g. student=hf lora.r=16")
    p.add_argument("--cache-dir", default=default_cache_dir(), help="where the converted student lives")
    p.add_argument("--out", default=None, help="JSON result path (default: a fresh temp dir)")
    args = p.parse_args(argv)

    cfg = compose_cfg(["split=paper", "train=laptop", "lora=paper", *args.override])
    a = {
        "steps": args.steps,
        "per_step": args.answers_per_step,
        "seed": args.seed,
        "cache_dir": args.cache_dir,
        "trl_labels": args.trl_labels,
        "trl_defaults": args.trl_defaults,
    }
    facts = machine_facts()
    print(f"[bench] train_throughput: {describe_machine(facts)}", flush=True)
    lora, train = cfg["lora"], cfg["train"]
    print(
        f"[bench] student {cfg['student']['model_id']}, LoRA r={lora['r']} on {lora['target_modules']}, "
        f"lr {train['learning_rate']} ({train['lr_scheduler']}), "
        f"{args.steps} steps x {args.answers_per_step} answers per route and arm",
        flush=True,
    )
    busy_warning(facts)
    results: dict[str, Any] = {}
    for arm in args.arms:
        results[arm] = {}
        for route in ROUTES:  # one heavy process at a time
            print(f"[bench] {arm}: {LABELS[route]} ...", flush=True)
            fn = route_trl if route == "trl" else route_ours
            res = run_in_child(fn, cfg, a, ARMS[arm])
            results[arm][route] = res
            ans_s, med = rate(res, args.warmup_steps)
            print(
                f"[bench]   {ans_s:.2f} answers/s, median {med:.2f} s/step, final loss "
                f"{res['losses'][-1]:.4f}, peak RSS {res['peak_rss_mb'] / 1024:.2f} GiB, "
                f"other processes kept {other_load(res)} CPUs busy",
                flush=True,
            )

    rows, verdicts, summary = [], [], {}
    for arm, by in results.items():
        trl, ours = by["trl"], by["ours"]
        agree = loss_agreement(trl, ours, args.loss_rtol, args.trl_labels == "matched")
        same_init = math.isclose(
            trl["lora_a_checksum_at_start"], ours["lora_a_checksum_at_start"], rel_tol=1e-9
        )
        r_trl, r_ours = rate(trl, args.warmup_steps)[0], rate(ours, args.warmup_steps)[0]
        ratio = r_ours / r_trl
        ok = ratio >= FLOORS[arm]
        for res in (trl, ours):
            ans_s, med = rate(res, args.warmup_steps)
            rows.append(
                [
                    arm,
                    LABELS[res["route"]],
                    f"{ans_s:.2f}",
                    f"{med:.2f}",
                    f"{statistics.mean(res['target_tokens_per_step']):.0f}",
                    f"{statistics.mean(res['computed_tokens_per_step']):.0f}",
                    f"{res['losses'][0]:.4f}",
                    f"{res['losses'][-1]:.4f}",
                    f"{res['peak_rss_mb'] / 1024:.2f}",
                    other_load(res),
                ]
            )
        summary[arm] = {
            "ratio_answers_per_second": ratio,
            "floor": FLOORS[arm],
            "pass": ok,
            "peak_rss_ratio_trl_over_ours": trl["peak_rss_mb"] / ours["peak_rss_mb"],
            "loss": agree,
            "same_lora_init": same_init,
        }
        cpu_ratio = cpu_rate(ours, args.warmup_steps) / cpu_rate(trl, args.warmup_steps)
        summary[arm]["ratio_answers_per_cpu_second"] = cpu_ratio
        rss = trl["peak_rss_mb"] / ours["peak_rss_mb"]
        verdicts.append(
            f"{arm}: ours/TRL = {ratio:.2f}x answers/s (floor {FLOORS[arm]:g}x: {'PASS' if ok else 'FAIL'}); "
            f"{cpu_ratio:.2f}x answers per CPU-second; peak RSS TRL/ours = {rss:.2f}x; "
            f"losses {agree['verdict']}; same initial LoRA: {'yes' if same_init else 'NO'}"
        )
    print()
    print(
        table(
            [
                "arm",
                "route",
                "answers/s",
                "s/step (median)",
                "target tok/step",
                "computed tok/step",
                "loss step 1",
                "final loss",
                "peak RSS GiB",
                "other load (CPUs)",
            ],
            rows,
        )
    )
    print()
    for v in verdicts:
        print(v)
    for arm in results:
        t = results[arm]["trl"]
        kept = "masked" if args.trl_labels == "matched" else "kept"
        print(
            f"{arm}: TRL targets == ours: {t['answer_targets_match_ours']} (template adds "
            f"{t['template_extra_targets']} per answer, {kept})"
        )
    print(
        f"rates exclude the first {args.warmup_steps} step(s) of each route; 'computed tok/step' counts "
        "padding (TRL) / the packed sequence (ours); peak RSS is each route's own spawned process"
    )
    result = {
        "benchmark": "train_throughput",
        "machine": facts,
        "settings": {**a, "overrides": args.override, "warmup_steps": args.warmup_steps, "floors": FLOORS},
        "config": {k: cfg[k] for k in ("student", "lora", "train")},
        "summary": summary,
        "routes": results,
    }
    path = write_result(result, args.out, "train_throughput")
    print(f"JSON result: {path}")
    return 1 if args.strict and not all(s["pass"] for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
