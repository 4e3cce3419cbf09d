"""Check 1: shared-prefix packs are exact on the device, and which SDPA kernel serves their float mask.

The CPU test (tests/test_packing.py) proves exactness under CPU kernels only. On a GPU, SDPA dispatches
to fused kernels (flash, memory-efficient, cuDNN) that treat an additive (1, 1, L, L) float mask
differently or refuse it; a pack loss that silently diverged there would train the wrong thing. So the
pack loss and LoRA gradients are compared against the ordinary per-example batch (2-D padding mask) on
the device itself, in fp32 and bf16, and each SDPA backend is then forced in turn on one pack.
"""

from __future__ import annotations

import time
from typing import Any

ANSWERS = [
    "I would choose strategy C.\n\nMutual cooperation pays 5 points each, more than mutual defection.",
    "I would choose strategy D.",
    "I would choose strategy D.\n\nIf my coplayer picks C, D gives me 10 points instead of 5; if they "
    "pick D, 3 points instead of 2.",
    "I would choose strategy C.\n\nTrust first: in a long relationship it is what keeps both sides ahead.",
]
# (loss relative error, gradient relative L2 error) allowed per compute dtype
TOLERANCE = {"float32": (1e-4, 1e-3), "bfloat16": (2e-2, 5e-2)}
BACKENDS = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH")


def pack_examples(n: int) -> list[dict[str, Any]]:
    """n answers to one real training prompt (the IR prisoner's dilemma, action + motivation)."""
    from stratdistill.prompts import messages_for
    from stratdistill.scenarios import grid, load_library

    lib = load_library()
    (sc,) = grid(lib, ["IR"], ["prison"], "x")
    msgs = messages_for(sc, "action_motivation", lib)
    return [{"scenario": sc.key, "messages": msgs, "completion": ANSWERS[i % len(ANSWERS)]} for i in range(n)]


def _perturbed_lora(model) -> Any:
    """LoRA on q/v with random non-zero B (as tests/conftest.py does): gradients reach every matrix."""
    import torch

    from stratdistill.finetune import lora_model

    from .common import lora_cfg

    peft_model = lora_model(model, lora_cfg())
    gen = torch.Generator().manual_seed(0)
    for n, p in peft_model.named_parameters():
        if "lora_B" in n:
            p.data.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return peft_model.train()


def _reference_loss(model, tok, examples, device) -> Any:
    """The per-example batch: each prompt+answer its own padded row, prompt tokens masked."""
    import torch

    from stratdistill.finetune import IGNORE_INDEX, tokenize_example

    feats = [tokenize_example(e, tok, 1 << 16) for e in examples]
    width = max(len(f["input_ids"]) for f in feats)
    ids = torch.full((len(feats), width), tok.pad_token_id)
    labels = torch.full((len(feats), width), IGNORE_INDEX)
    mask = torch.zeros((len(feats), width), dtype=torch.long)
    for i, f in enumerate(feats):
        n = len(f["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(f["input_ids"]), torch.tensor(f["labels"]), 1
    return model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss


def _grads(model) -> dict[str, Any]:
    return {n: p.grad.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}


def _rel_grad_error(a: dict[str, Any], b: dict[str, Any]) -> float:
    import torch

    num = torch.sqrt(sum(((a[k] - b[k]) ** 2).sum() for k in b))
    den = torch.sqrt(sum((b[k] ** 2).sum() for k in b))
    return float(num / den)


def _sdpa_ops(fn) -> list[str]:
    """Names of the aten SDPA implementations that ``fn`` ran (the kernel actually dispatched to)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sorted({e.key for e in prof.key_averages() if e.key.startswith("aten::_scaled_dot_product")})


def _dtype_case(model_dir, tok, dtype_name: str, n_answers: int) -> tuple[dict[str, Any], Any, Any, Any]:
    """Loss and gradients of the pack vs the per-example batch in one dtype; returns the case's result
    and (model, inputs, reference) for the kernel sweep."""
    import torch
    from transformers import AutoModelForCausalLM

    from stratdistill.packing import PackCollator, build_packs, pack_loss

    from .common import device_and_sync

    device, _ = device_and_sync()
    dtype = getattr(torch, dtype_name)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").to(
        device
    )
    model = _perturbed_lora(model)
    examples = pack_examples(n_answers)
    (pack,), _ = build_packs(examples, tok, pack_size=n_answers, max_length=1 << 16)
    inputs = {k: v.to(device) for k, v in PackCollator(dtype)([pack]).items()}
    model.zero_grad()
    ref = _reference_loss(model, tok, examples, device)
    ref.backward()
    ref_grads = _grads(model)
    model.zero_grad()

    def packed_step() -> Any:
        loss = pack_loss(model, inputs)
        loss.backward()
        return loss

    holder: dict[str, Any] = {}
    served = _sdpa_ops(lambda: holder.setdefault("loss", packed_step()))
    loss = holder["loss"]
    loss_err = abs(loss.item() - ref.item()) / abs(ref.item())
    grad_err = _rel_grad_error(_grads(model), ref_grads)
    tol_loss, tol_grad = TOLERANCE[dtype_name]
    ok = loss_err <= tol_loss and grad_err <= tol_grad
    result = {
        "status": "passed" if ok else "failed: pack differs from the per-example batch beyond tolerance",
        "device": str(device),
        "model_dtype": dtype_name,
        "pack_tokens": len(pack.input_ids),
        "answers": n_answers,
        "mask": "additive float (1, 1, L, L)",
        "attn_implementation": model.config._attn_implementation,
        "pack_loss": loss.item(),
        "reference_loss": ref.item(),
        "loss_rel_error": loss_err,
        "grad_rel_l2_error": grad_err,
        "tolerance": {"loss_rel": tol_loss, "grad_rel_l2": tol_grad},
        "sdpa_ops_default": served,
    }
    return result, model, inputs, (ref.item(), ref_grads)


def check_packing(model_dir, tok, n_answers: int) -> dict[str, Any]:
    """Check 1 in fp32 and bf16; also keeps what the kernel sweep needs."""
    cases, failed = {}, []
    for name in ("float32", "bfloat16"):
        cases[name], *_ = _dtype_case(model_dir, tok, name, n_answers)
        if cases[name]["status"] != "passed":
            failed.append(name)
    return {"status": "passed" if not failed else f"failed: {', '.join(failed)} beyond tolerance", **cases}


def _sweep_one(model, inputs, ref: tuple[float, Any], backend) -> dict[str, Any]:
    import torch
    from torch.nn.attention import sdpa_kernel

    from stratdistill.packing import pack_loss

    from .common import peak_memory, reset_peak

    model.zero_grad()
    reset_peak()
    try:
        with sdpa_kernel([backend]):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            loss = pack_loss(model, inputs)
            loss.backward()
            torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
    except RuntimeError as exc:  # the backend refuses this mask/dtype/shape: that is the finding
        return {"accepts_float_mask": False, "error": str(exc).splitlines()[0][:300]}
    grad_err = _rel_grad_error(_grads(model), ref[1])
    return {
        "accepts_float_mask": True,
        "forward_backward_seconds": seconds,
        **peak_memory(),
        "loss_rel_error": abs(loss.item() - ref[0]) / abs(ref[0]),
        "grad_rel_l2_error": grad_err,
    }


def check_sdpa_kernels(model_dir, tok, n_answers: int) -> dict[str, Any]:
    """Force each SDPA backend on one pack, fp32 and bf16: which accept the float mask, time, memory.

    The first pass per backend is a warm-up (kernel selection, lazy init); the second is recorded."""
    import torch
    from torch.nn.attention import SDPBackend

    if not torch.cuda.is_available():
        return {"status": "skipped: no CUDA"}
    out: dict[str, Any] = {}
    accepted_any = True
    for name in ("float32", "bfloat16"):
        case, model, inputs, ref = _dtype_case(model_dir, tok, name, n_answers)
        per: dict[str, Any] = {"default_served_by": case["sdpa_ops_default"]}
        for b in BACKENDS:
            backend = getattr(SDPBackend, b, None)
            if backend is None:
                per[b] = {"accepts_float_mask": False, "error": "not in this torch"}
                continue
            _sweep_one(model, inputs, ref, backend)
            per[b] = _sweep_one(model, inputs, ref, backend)
        tol_loss, tol_grad = TOLERANCE[name]
        exact = [
            b
            for b in BACKENDS
            if per[b].get("accepts_float_mask")
            and per[b]["loss_rel_error"] <= tol_loss
            and per[b]["grad_rel_l2_error"] <= tol_grad
        ]
        wrong = [b for b in BACKENDS if per[b].get("accepts_float_mask") and b not in exact]
        per["exact_backends"], per["inexact_backends"] = exact, wrong
        accepted_any = accepted_any and bool(exact) and not wrong
        out[name] = per
        del model, inputs
    status = (
        "passed" if accepted_any else "failed: a backend that accepts the mask is inexact, or none is exact"
    )
    return {"status": status, **out}
