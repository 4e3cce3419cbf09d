"""Checks 4 and 5: a 7B-shaped LoRA step (peak memory, tokens/s) and teacher sampling with the prompt
prefilled once vs plain ``generate``.

Why a 7B shape with random weights: the paper's student is Llama-2-7B, and whether one 2,048-token pack
with its float mask fits and how fast it trains depends on the shapes only, not on the weights, so
nothing has to be downloaded. On CPU the same code runs a tiny model of the same family.
"""

from __future__ import annotations

import time
from typing import Any

from .common import PASSED, device_and_sync, lora_cfg, peak_memory, reset_peak


def synthetic_pack(tokens: int, vocab: int, answers: int = 16) -> Any:
    """A pack of ``tokens`` tokens: a prompt (~15%) then ``answers`` equal answers, random ids."""
    import torch

    from stratdistill.packing import Pack

    answers = min(answers, max(1, tokens // 16))
    length = int(tokens * 0.85) // answers
    prompt_len = tokens - answers * length
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (tokens,), generator=gen).tolist()
    pos, segs = list(range(prompt_len)), []
    for i in range(answers):
        s = prompt_len + i * length
        segs.append((s, s + length))
        pos += list(range(prompt_len, prompt_len + length))
    return Pack(ids, pos, prompt_len, segs)


def check_lora_step(fields: dict[str, Any], tokens: int, steps: int) -> dict[str, Any]:
    """LoRA (q/v, r=8) steps on one pack under bf16 autocast over bf16 weights, as finetune trains."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from stratdistill.finetune import lora_model
    from stratdistill.packing import PackCollator, pack_loss

    device, sync = device_and_sync()
    reset_peak()
    t0 = time.perf_counter()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(LlamaConfig(**fields), dtype=torch.bfloat16)
    build_s = time.perf_counter() - t0
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    model = lora_model(model, lora_cfg()).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    pack = synthetic_pack(tokens, fields["vocab_size"])
    inputs = {k: v.to(device) for k, v in PackCollator(torch.bfloat16)([pack]).items()}
    times, losses = [], []
    for _ in range(steps):
        sync()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = pack_loss(model, inputs)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        times.append(time.perf_counter() - t)
        losses.append(loss.item())
    timed = times[1:] or times
    step_s = sum(timed) / len(timed)
    result = {
        "device": str(device),
        "config": {k: v for k, v in fields.items() if not isinstance(v, dict)},
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in trainable),
        "weight_bytes": weight_bytes,
        "weights_dtype": "bfloat16",
        "build_seconds": build_s,
        "pack_tokens": tokens,
        "answer_tokens": len(pack.targets),
        "gradient_checkpointing": False,
        "attn_implementation": model.config._attn_implementation,
        "step_seconds": times,
        "tokens_per_s": tokens / step_s,
        "losses": losses,
        **peak_memory(),
    }
    finite = all(loss == loss and abs(loss) < float("inf") for loss in losses)
    result["status"] = PASSED if finite else "failed: non-finite loss"
    del model, opt, inputs
    return result


def _lengths(new_tokens: Any, eos: int) -> list[int]:
    """Generated tokens per row, up to and including the first eos (what follows is padding)."""
    out = []
    for row in new_tokens.tolist():
        stop = next((i for i, t in enumerate(row) if t == eos), None)
        out.append(len(row) if stop is None else stop + 1)
    return out


def check_sampling(model_dir: Any, samples: int, max_new_tokens: int) -> dict[str, Any]:
    """``sample_answers`` (prefill once, shared cache: the HF teacher's path) vs one
    ``generate(num_return_sequences=samples)`` (a prefill per sample), same prompt, seed and settings."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stratdistill.evaluate import sample_answers
    from stratdistill.prompts import messages_for, render_chat
    from stratdistill.scenarios import grid, load_library

    device, sync = device_and_sync()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    lib = load_library()
    (sc,) = grid(lib, ["IR"], ["prison"], "x")
    prompt = render_chat(messages_for(sc, "action_motivation", lib), tok)
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt").input_ids.to(device)
    settings = {"temperature": 0.8, "repetition_penalty": 1.1, "max_new_tokens": max_new_tokens}
    outputs: list[Any] = []
    plain_generate = model.generate

    def recording_generate(*args: Any, **kwargs: Any) -> Any:
        out = plain_generate(*args, **kwargs)
        outputs.append(out[:, ids.shape[1] :])
        return out

    model.generate = recording_generate

    def prefill_once(n: int, new: int) -> None:
        sample_answers(model, tok, prompt, n, **{**settings, "max_new_tokens": new}, seed=0, chunk=samples)

    def generate(n: int, new: int) -> None:
        torch.manual_seed(0)
        with torch.no_grad():
            model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                num_return_sequences=n,
                do_sample=True,
                top_k=0,
                top_p=1.0,
                temperature=settings["temperature"],
                repetition_penalty=settings["repetition_penalty"],
                max_new_tokens=new,
                pad_token_id=tok.pad_token_id,
            )

    routes: dict[str, Any] = {}
    for name, fn in (("prefill_once", prefill_once), ("generate_num_return_sequences", generate)):
        fn(2, 2)  # warm-up, untimed
        outputs.clear()
        sync()
        t = time.perf_counter()
        fn(samples, max_new_tokens)
        sync()
        seconds = time.perf_counter() - t
        lengths = [n for chunk in outputs for n in _lengths(chunk, tok.eos_token_id)]
        routes[name] = {
            "seconds": seconds,
            "answers": len(lengths),
            "generated_tokens": sum(lengths),
            "tokens_per_s": sum(lengths) / seconds,
        }
    ratio = routes["prefill_once"]["tokens_per_s"] / routes["generate_num_return_sequences"]["tokens_per_s"]
    ok = all(r["answers"] == samples for r in routes.values())
    return {
        "status": PASSED if ok else "failed: a route did not return every answer",
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "prompt_tokens": ids.shape[1],
        "samples": samples,
        **settings,
        "routes": routes,
        "prefill_once_speedup_tokens_per_s": ratio,
    }
