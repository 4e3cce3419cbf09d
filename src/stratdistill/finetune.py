"""LoRA fine-tuning of the student on the teacher's answers (peft + the transformers Trainer).

Data format decides the loss mask: each example is a chat prompt (rendered by the student's own
template) and a completion; labels are -100 on every prompt token and on padding, and the completion
ends with the tokenizer's eos so the tuned model learns to stop. Padding uses a token distinct from
eos (see :func:`stratdistill.students.ensure_distinct_pad`). The Trainer checkpoints into the
artifact's staging folder, so a killed fine-tune resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

from stratdistill.artifacts import atomic_write_json, write_jsonl
from stratdistill.errors import ConfigError
from stratdistill.prompts import render_chat, template_id

log = logging.getLogger(__name__)
IGNORE_INDEX = -100


def tokenize_example(example: dict[str, Any], tokenizer, max_length: int) -> dict[str, list[int]] | None:
    """input_ids / attention_mask / labels for one prompt+completion; None if it does not fit."""
    prompt_ids = tokenizer(render_chat(example["messages"], tokenizer), add_special_tokens=False).input_ids
    completion_ids = [
        *tokenizer(example["completion"], add_special_tokens=False).input_ids,
        tokenizer.eos_token_id,
    ]
    ids = prompt_ids + completion_ids
    if len(ids) > max_length:
        return None
    return {
        "input_ids": ids,
        "attention_mask": [1] * len(ids),
        "labels": [IGNORE_INDEX] * len(prompt_ids) + completion_ids,
    }


def decision_targets(decisions: dict[str, Any], tokenizer) -> dict[str, Any]:
    """scenario -> DecisionTarget: the opening's tokens after the scenario's training prompt and the
    teacher's share of each option, keyed by the option's token id."""
    from stratdistill.decision import DecisionPoint, decision_target_ids
    from stratdistill.packing import DecisionTarget, opening_tokens

    out = {}
    for scenario, d in decisions.items():
        prompt = render_chat(d["messages"], tokenizer)
        point = DecisionPoint(d["opening"], dict(d["options"]), numeric=False)
        ids = decision_target_ids(tokenizer, prompt + d["opening"], point)
        out[scenario] = DecisionTarget(
            opening_tokens(tokenizer, prompt, d["opening"]),
            {ids[o]: float(p) for o, p in d["shares"].items()},
        )
    return out


def decision_packs(decisions: dict[str, Any], targets: dict[str, Any], tokenizer, max_length: int) -> list:
    """One decision-only pack per group of training scenarios (their ``group``: the context), so that the
    games of a context share their prompts' common tokens."""
    from stratdistill.packing import build_decision_packs

    groups: dict[str, list] = {}
    for scenario, d in decisions.items():
        ids = tokenizer(render_chat(d["messages"], tokenizer), add_special_tokens=False).input_ids
        groups.setdefault(d.get("group", scenario), []).append((ids, targets[scenario]))
    return build_decision_packs(list(groups.values()), max_length)


def lora_targets_or_raise(model, targets: list[str]) -> None:
    """Fail early, naming the modules that do exist, when a LoRA target is not in the model."""
    import torch

    linear_names = sorted(
        {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    )
    missing = [t for t in targets if t not in linear_names]
    if missing:
        raise ConfigError("lora.target_modules", missing, f"linear modules of this model: {linear_names}")


def lora_alpha_and_scale(lora_cfg: Any) -> tuple[float, bool, float]:
    """(lora_alpha to give peft, use_rslora, the resulting scale on the adapter's output).

    Sweeping r at a fixed alpha also changes the scale alpha/r, a confound; ``lora.alpha_mode`` makes the
    choice explicit and the scale is logged with every adapter.
    """
    r, alpha, mode = int(lora_cfg.r), float(lora_cfg.alpha), getattr(lora_cfg, "alpha_mode", "fixed")
    if mode == "tied":
        return alpha * r / 8, False, alpha / 8
    if mode == "rslora":
        return alpha, True, alpha / math.sqrt(r)
    return alpha, False, alpha / r


def lora_model(model, lora_cfg: Any):
    from peft import LoraConfig, get_peft_model

    targets = list(lora_cfg.target_modules)
    lora_targets_or_raise(model, targets)
    lora_alpha, use_rslora, _ = lora_alpha_and_scale(lora_cfg)
    config = LoraConfig(
        r=int(lora_cfg.r),
        lora_alpha=lora_alpha,
        use_rslora=use_rslora,
        lora_dropout=float(lora_cfg.dropout),
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def trainable_model(model, train_cfg: Any, lora_cfg: Any):
    """The model to optimise: LoRA adapters (on a 4-bit base for QLoRA), or every weight (full)."""
    if train_cfg.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        if train_cfg.method == "qlora":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model = lora_model(model, lora_cfg)
    fp32_master_weights(model)
    return model


def fp32_master_weights(model) -> int:
    """Keep every trained weight in float32; return how many were upcast.

    AdamW on bf16 weights rounds most updates away (bf16 keeps 8 significant bits: at lr 5e-5 an update
    is below half a unit in the last place of a weight near 1). peft already creates LoRA weights in
    float32 over a bf16 base; a fully fine-tuned bf16 student is upcast here, and ``train.precision=bf16``
    then runs the forward pass in bf16 autocast over these float32 master weights.
    """
    import torch

    upcast = 0
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
            upcast += p.numel()
    if upcast:
        print(
            f"[finetune] {upcast:,} trained weights upcast to float32 (master weights for AdamW)", flush=True
        )
    return upcast


def trainable_counts(model) -> tuple[int, int]:
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def _shared_prefix_trainer_class():
    from transformers import Trainer

    from stratdistill.packing import pack_loss

    class SharedPrefixTrainer(Trainer):
        """Trainer whose batches are shared-prefix packs (see :mod:`stratdistill.packing`), with the
        decision loss added where a pack carries a decision segment."""

        def __init__(
            self, *args: Any, decision_weight: float = 0.0, decision_temperature: float = 1.0, **kwargs: Any
        ) -> None:
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = False  # the Trainer then averages packs over grad_accum
            self.decision_weight, self.decision_temperature = decision_weight, decision_temperature

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = pack_loss(model, inputs, self.decision_weight, self.decision_temperature)
            return (loss, None) if return_outputs else loss

    return SharedPrefixTrainer


def last_complete_checkpoint(ckpt_dir: Path, delete_partial: bool = True) -> Path | None:
    """The newest checkpoint that was written to the end; partial ones (a job killed while saving,
    e.g. preempted on SLURM) are deleted (by rank 0 only, in a data-parallel run). The Trainer writes
    trainer_state.json last."""
    complete = []
    for folder in ckpt_dir.glob("checkpoint-*"):
        if (folder / "trainer_state.json").is_file():
            complete.append(folder)
        elif delete_partial:
            log.warning("deleting the incomplete checkpoint %s", folder)
            shutil.rmtree(folder, ignore_errors=True)
    return max(complete, key=lambda f: int(f.name.rsplit("-", 1)[-1]), default=None)


def finetune(
    examples: list[dict[str, Any]],
    student_cfg: Any,
    lora_cfg: Any,
    train_cfg: Any,
    seed: int,
    cache_dir: str,
    out_dir: Path,
    provenance: dict[str, Any],
    callbacks: list | None = None,
    decisions: dict[str, Any] | None = None,
    decision_temperature: float = 1.0,
) -> dict[str, Any]:
    """Train into ``out_dir/adapter`` (LoRA, QLoRA) or ``out_dir/model`` (full fine-tuning).

    ``decisions`` (scenario -> {"messages", "opening", "options", "shares"}) adds the decision loss,
    weighted by ``train_cfg.decision_weight``, at ``decision_temperature``. Resumes from
    ``out_dir/checkpoints`` when a previous attempt left one there.
    """
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    from stratdistill.distributed import current_ranks, job_device, keep_one_gpu
    from stratdistill.students import load_student

    ranks = current_ranks()
    device = job_device(ranks)
    model, tok = load_student(
        student_cfg, cache_dir, quantize_4bit=train_cfg.method == "qlora", device=device
    )
    model.train()
    # Seeded here, after loading: a load that converts the student first (a fresh cache) draws random
    # numbers for its empty model, and the same key must give the same LoRA initialisation either way.
    set_seed(seed)
    model = trainable_model(model, train_cfg, lora_cfg)
    # the exact strings the student is trained on, for audit (prompt rendered by its own chat template)
    if ranks.is_main:
        write_jsonl(
            out_dir / "train_examples.jsonl",
            [
                {
                    "scenario": e["scenario"],
                    "prompt": render_chat(e["messages"], tok),
                    "completion": e["completion"],
                }
                for e in examples
            ],
        )
    trainer_kwargs: dict[str, Any] = {}
    if train_cfg.shared_prefix:
        from stratdistill.packing import PackCollator, build_packs

        targets = decision_targets(decisions, tok) if decisions and train_cfg.decision_weight > 0 else None
        train_set, too_long = build_packs(examples, tok, train_cfg.batch_size, train_cfg.max_length, targets)
        n_examples = sum(len(p.segments) for p in train_set)
        if targets and train_cfg.decision_passes > 0:
            train_set += (
                decision_packs(decisions, targets, tok, train_cfg.max_length) * train_cfg.decision_passes
            )
        collator = PackCollator(next(model.parameters()).dtype)
        trainer_cls, per_device = _shared_prefix_trainer_class(), 1
        if targets:
            trainer_kwargs = {
                "decision_weight": float(train_cfg.decision_weight),
                "decision_temperature": float(decision_temperature),
            }
    else:
        if decisions and train_cfg.decision_weight > 0:
            raise ConfigError(
                "train.decision_weight",
                train_cfg.decision_weight,
                "0 unless train.shared_prefix=true (the decision segment lives in shared-prefix packs)",
            )
        features = [tokenize_example(e, tok, train_cfg.max_length) for e in examples]
        too_long = sum(f is None for f in features)
        train_set = [f for f in features if f is not None]
        n_examples = len(train_set)
        collator = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=IGNORE_INDEX)
        trainer_cls, per_device = Trainer, train_cfg.batch_size
    if not train_set:
        raise ConfigError("train.max_length", train_cfg.max_length, "a length that fits at least one example")
    if too_long:
        log.warning(
            "%d of %d examples exceed train.max_length=%d and are skipped",
            too_long,
            len(examples),
            train_cfg.max_length,
        )
    trainable, total = trainable_counts(model)
    layout = f"{len(train_set)} shared-prefix packs" if train_cfg.shared_prefix else "per-example batches"
    lora_alpha, _, scale = lora_alpha_and_scale(lora_cfg)
    if train_cfg.method == "full":
        what = "full fine-tuning"
    else:
        what = f"{train_cfg.method} r={lora_cfg.r} lora_alpha={lora_alpha:g} "
        what += f"({lora_cfg.alpha_mode}, scale {scale:g})"
    print(
        f"[finetune] {n_examples} examples in {layout}, {what}: {trainable:,} of {total:,} weights trained",
        flush=True,
    )
    ckpt_dir = out_dir / "checkpoints"
    args = TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=train_cfg.grad_accum,
        learning_rate=train_cfg.learning_rate,
        num_train_epochs=train_cfg.epochs,
        max_steps=train_cfg.max_steps,
        lr_scheduler_type=train_cfg.lr_scheduler,
        warmup_steps=train_cfg.warmup_ratio,
        weight_decay=train_cfg.weight_decay,
        logging_steps=train_cfg.logging_steps,
        save_strategy="steps",
        save_steps=train_cfg.save_steps,
        save_total_limit=2,
        report_to="none",
        seed=seed,
        data_seed=seed,
        fp16=train_cfg.precision == "fp16",
        bf16=train_cfg.precision == "bf16",
        use_cpu=device.type == "cpu",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=not ranks.is_main,
        # recomputes each layer in the backward pass; non-reentrant, so the packs' 4-D masks and
        # position ids pass through unchanged and the loss stays exact (tests/test_packing.py)
        **(
            {"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False}}
            if train_cfg.gradient_checkpointing
            else {}
        ),
        # LoRA leaves the base's weights without gradients: nothing else goes unused
        ddp_find_unused_parameters=False,
    )
    keep_one_gpu(args)
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_set,
        data_collator=collator,
        callbacks=callbacks,
        **trainer_kwargs,
    )
    last = last_complete_checkpoint(ckpt_dir, delete_partial=ranks.is_main)
    resume = last is not None
    if last is not None:
        print(f"[finetune] resuming from the last checkpoint, {last}", flush=True)
    result = trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
    trainer.accelerator.wait_for_everyone()  # every rank is past its last checkpoint read
    adapter_dir = out_dir / ("model" if train_cfg.method == "full" else "adapter")
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    info = {
        "examples": n_examples,
        "shared_prefix": bool(train_cfg.shared_prefix),
        "skipped_too_long": too_long,
        "steps": trainer.state.global_step,
        "train_loss": float(result.training_loss),
        "loss_curve": losses,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "method": train_cfg.method,
        "lora_scale": None if train_cfg.method == "full" else scale,
        "lora_alpha_used": None if train_cfg.method == "full" else lora_alpha,
        "chat_template": template_id(tok),
        "resumed": resume,
        "device": str(device),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "precision": train_cfg.precision,
        "data_parallel_ranks": ranks.world_size,
        "gradient_checkpointing": bool(train_cfg.gradient_checkpointing),
        "decision_loss": {
            "weight": float(train_cfg.decision_weight),
            "temperature": float(decision_temperature),
            "passes": int(train_cfg.decision_passes),
            "decisions_trained": sum(len(p.decisions) for p in train_set) if train_cfg.shared_prefix else 0,
        },
    }
    if not ranks.is_main:
        return info  # rank 0 writes the artifact
    model.save_pretrained(adapter_dir)
    tok.save_pretrained(adapter_dir)
    atomic_write_json(adapter_dir / "provenance.json", {**provenance, **info})
    (out_dir / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # optimizer states are only needed to resume
    return info
