"""The report's header: who the teacher is, what the student was trained on, how it was scored, where
each artifact is. It reads the artifacts' manifests, so a reused artifact reports what built it."""

from __future__ import annotations

from typing import Any

from stratdistill.artifacts import Artifact


def report_meta(
    cfg: Any, artifacts: dict[str, Artifact], teacher_rates: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The report's header lines: who the teacher is, what was trained on, and where each artifact is."""
    ds = artifacts["generate"].manifest
    arm = "action only"
    if cfg.data.motivations:
        arm = "motivation then action" if cfg.data.order == "motivation_first" else "action + motivation"
        arm += " (motivations shuffled: control)" if cfg.data.shuffle_motivations else ""
    if "finetune" in artifacts:
        ft = artifacts["finetune"].manifest
        if cfg.train.method == "full":
            method = "full fine-tuning"
        else:
            method = (
                f"{cfg.train.method} r={cfg.lora.r}, lora_alpha={ft.get('lora_alpha_used')} "
                f"({cfg.lora.alpha_mode}, scale {ft.get('lora_scale', 0):g}), "
                f"targets {list(cfg.lora.target_modules)}"
            )
        training = (
            f"{method}; {ft.get('examples')} examples, {ft.get('steps')} steps, "
            f"lr {cfg.train.learning_rate}, mean train loss {ft.get('train_loss', float('nan')):.3f}"
        )
        if "device" in ft:  # adapters built before devices were recorded lack it
            ranks = ft.get("data_parallel_ranks", 1)
            training += (
                f"; trained on {ft['device']}"
                + (f" and {ranks - 1} more data-parallel rank(s)" if ranks > 1 else "")
                + f", weights {ft.get('dtype')}, precision {ft.get('precision')}"
            )
        if cfg.train.decision_weight > 0:
            training += (
                f"; decision loss (weight {cfg.train.decision_weight:g}, temperature "
                f"{cfg.eval.temperature:g}) against the teacher's share of C over all its parsed answers"
            )
    else:
        training = f"none here: the tuned student is the existing adapter {cfg.eval.adapter}"
    e = cfg.eval
    if e.method == "forced_choice":
        estimator = (
            f'forced choice: the answer opened with "{e.opening_2x2}" '
            f'(donations: "{e.opening_public_goods}"), '
            f"the options' probabilities read at temperature {e.temperature:g}"
            + (f", repetition penalty {e.repetition_penalty:g}" if e.repetition_penalty != 1 else "")
        )
    elif e.method == "forms":
        estimator = "answer forms (P(answer starts with each form), normalised; each form family shown too)"
    else:
        estimator = (
            f"sampled ({e.samples} answers per scenario at temperature {e.temperature:g}, "
            f"repetition penalty {e.repetition_penalty:g}, parsed)"
        )
    scored = [
        f"{name.removeprefix('evaluate_')} on {m['device']} in {m['dtype']}"
        for name in ("evaluate_base", "evaluate_tuned")
        if name in artifacts and "device" in (m := artifacts[name].manifest)
    ]
    if scored:
        estimator += "; students scored: " + ", ".join(scored)
    unparsed = {
        "drop": "left out of training and of the rates",
        "resample": f"asked again up to {cfg.data.max_resamples} times, then left out of training and rates",
        "keep": "trained on verbatim (data.parse_failures=keep) and left out of the rates",
    }[cfg.data.parse_failures]
    return {
        "teacher": f"`{cfg.teacher.name}` — {ds.get('teacher_description', cfg.teacher.name)}; "
        f"temperature {cfg.temperature.teacher}",
        "student": f"`{cfg.student.name}` ({cfg.student.model_id})",
        "estimator": estimator + "; teacher: shares of its sampled answers",
        "data": (
            f"{ds['rows']} teacher answers ({cfg.data.teacher_samples} per training scenario, parse status "
            f"{ds['parse_status']}); trained on {arm}, {cfg.data.train_per_scenario or 'all'} per scenario"
        ),
        "training": training,
        "training_shares": artifacts["finetune"].manifest.get("training_shares", {})
        if "finetune" in artifacts
        else {},
        "unparsed": unparsed,
        "seed": cfg.seed,
        "estimator_method": e.method,
        # datasets generated before the manifest recorded the flag: the stand-in's description says it
        "stand_in": bool(
            ds.get("teacher_is_stand_in", ds.get("teacher_description", "").startswith("offline STAND-IN"))
        ),
        "students_sampled": cfg.eval.method == "sampled",
        "teacher_parse": [
            {"scenario": k, "answers": v["n"], "parsed": v["n_ok"], "failed": v["n_failed"]}
            for k, v in teacher_rates.items()
        ],
        "provenance": {
            **{name: a.path for name, a in artifacts.items()},
            "reused": ", ".join(name for name, a in artifacts.items() if a.reused) or "none",
        },
    }
