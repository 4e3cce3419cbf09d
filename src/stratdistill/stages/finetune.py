"""The finetune stage: the student trained on the teacher's answers (LoRA, QLoRA or full)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stratdistill.artifacts import Artifact, ArtifactStore
from stratdistill.dataset import action_shares, cooperation_rates, load_samples, training_examples
from stratdistill.decision import decision_point
from stratdistill.prompts import messages_for
from stratdistill.scenarios import Library, Scenario
from stratdistill.stages.base import Stage


def _not_applicable(cfg: Any) -> set[str]:
    omitted = set()
    if cfg.train.method == "full":
        omitted.add("lora")
    if cfg.data.train_per_scenario is None:
        omitted.add("data.subsample")  # every answer is trained on: nothing is subsampled
    if cfg.train.decision_weight == 0:  # the decision loss reads the student where evaluation does
        omitted |= {"eval.opening_2x2", "eval.temperature"}
    return omitted


FINETUNE = Stage(
    name="finetune",
    entries=("stratdistill.stages.finetune",),
    config_paths=(
        "student",
        "lora",
        "train",
        "seed",
        "data.motivations",
        "data.train_per_scenario",
        "data.order",
        "data.shuffle_motivations",
        "data.parse_failures",
        "data.subsample",
        "eval.opening_2x2",
        "eval.temperature",
    ),
    upstream=("generate",),
    omit=_not_applicable,
)


def training_shares(rows: list[dict[str, Any]], examples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario: the teacher's share of C over all its parsed answers, and over the answers the text
    loss trains on (the report shows them side by side)."""
    teacher = cooperation_rates(rows)
    trained: dict[str, list[Any]] = {}
    for e in examples:
        trained.setdefault(e["scenario"], []).append(e.get("value"))
    out = {}
    for key, entry in teacher.items():
        if entry.get("p_c") is None:
            continue
        acts = [a for a in trained.get(key, []) if a in ("C", "D")]
        out[key] = {
            "teacher_p_c": entry["p_c"],
            "teacher_n": entry["n_ok"],
            "trained_p_c": acts.count("C") / len(acts) if acts else None,
            "trained_n": len(acts),
        }
    return out


def finetune_stage(
    cfg: Any,
    store: ArtifactStore,
    dataset: Artifact,
    library: Library,
    train_scenarios: list[Scenario],
    callbacks: list | None = None,
) -> Artifact:
    spec = FINETUNE.spec(cfg, dataset=dataset.key)

    def produce(folder: Path) -> dict[str, Any]:
        from stratdistill.finetune import finetune

        rows = load_samples(dataset.path)
        examples = training_examples(
            rows,
            cfg.data.motivations,
            cfg.data.train_per_scenario,
            order=cfg.data.order,
            shuffle_motivations=cfg.data.shuffle_motivations,
            seed=cfg.seed,
            parse_failures=cfg.data.parse_failures,
            subsample=cfg.data.subsample,
        )
        shares = action_shares(rows)
        decisions = {
            sc.key: {
                "messages": messages_for(sc, "action_motivation", library),
                "opening": cfg.eval.opening_2x2,
                "group": sc.context_key,
                "options": decision_point(sc, cfg.eval.opening_2x2, cfg.eval.opening_public_goods).options,
                "shares": shares[sc.key],
            }
            for sc in train_scenarios
            if sc.key in shares
        }
        provenance = {
            "base_model": cfg.student.model_id,
            "revision": cfg.student.revision,
            "dataset_key": dataset.key,
            "config": spec,
        }
        info = finetune(
            examples,
            cfg.student,
            cfg.lora,
            cfg.train,
            cfg.seed,
            cfg.cache_dir,
            folder,
            provenance,
            callbacks,
            decisions=decisions,
            decision_temperature=cfg.eval.temperature,
        )
        return {**info, "training_shares": training_shares(rows, examples)}

    return store.build(FINETUNE.name, spec, produce)
