"""One fine-tune of the default student on a few stand-in answers, for the data-parallel tests.

Run alone (one process) or under ``torchrun --nproc_per_node=2`` (two gloo ranks on CPU):
    python tests/workers/finetune_worker.py OUT_DIR [hydra overrides ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import MODEL_CACHE, compose_cfg
from stratdistill.dataset import sample_teacher, training_examples
from stratdistill.finetune import finetune
from stratdistill.scenarios import grid, load_library
from stratdistill.teachers import ReferenceTeacher


def main(out: str, overrides: list[str]) -> None:
    lib = load_library()
    scenarios = grid(lib, ["IR", "team", "biz", "sports"], ["prison"], "x")
    rows = sample_teacher(ReferenceTeacher(), scenarios, lib, "action_motivation", 4, 0, 0.8, "train")
    examples = training_examples(rows, motivations=True, per_scenario=4)
    cfg = compose_cfg(["train.batch_size=2", "train.logging_steps=1", "train.save_steps=100", *overrides])
    info = finetune(
        examples,
        cfg.student,
        cfg.lora,
        cfg.train,
        0,
        str(MODEL_CACHE),
        Path(out),
        {"base_model": cfg.student.model_id, "dataset_key": "test"},
    )
    print(f"steps={info['steps']} ranks={info['data_parallel_ranks']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
