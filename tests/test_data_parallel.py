"""Data-parallel fine-tuning on CPU with two gloo ranks (torchrun), and a process that sees several GPUs.

Two ranks with one pack each per step must train the adapter that one process trains with two packs per
step (gradient accumulation 2): same packs per optimiser step, gradients averaged the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import MODEL_CACHE, ROOT, compose_cfg

WORKER = ROOT / "tests" / "workers" / "finetune_worker.py"


def _student(folder: Path) -> list[str]:
    return ["student=hf", f"student.model_id={folder}", "train.learning_rate=1e-2"]


def _run(cmd: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in env.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _torchrun(nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]


def test_two_gloo_ranks_train_the_adapter_of_one_process_with_the_same_global_batch(
    tiny_student: Path, tmp_path: Path
) -> None:
    args = _student(tiny_student)
    _run([sys.executable, str(WORKER), str(tmp_path / "one"), "train.grad_accum=2", *args])
    proc = _run([*_torchrun(2), str(WORKER), str(tmp_path / "two"), "train.grad_accum=1", *args])
    assert "ranks=2" in proc.stdout
    one = load_file(tmp_path / "one" / "adapter" / "adapter_model.safetensors")
    two = load_file(tmp_path / "two" / "adapter" / "adapter_model.safetensors")
    assert one.keys() == two.keys() and one
    init = 0.0
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-5), (k, (one[k] - two[k]).abs().max())
        init += float(one[k].abs().sum()) if "lora_B" in k else 0.0
    assert init > 0  # trained: LoRA's B starts at zero
    a = json.loads((tmp_path / "one" / "adapter" / "provenance.json").read_text())
    b = json.loads((tmp_path / "two" / "adapter" / "provenance.json").read_text())
    assert (a["data_parallel_ranks"], b["data_parallel_ranks"]) == (1, 2)
    assert a["steps"] == b["steps"] and a["loss_curve"] == pytest.approx(b["loss_curve"], abs=1e-4)


def test_one_process_that_sees_two_gpus_trains_on_one_instead_of_crashing(
    tiny_student: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """transformers sets the Trainer's GPU count to every visible GPU when the process was not launched
    for data parallelism (training_args.py, ``_n_gpu = torch.cuda.device_count()``); the batch is then
    multiplied by it and the shared-prefix collator gets two packs. Simulated here on CPU."""
    from functools import cached_property

    from transformers import TrainingArguments

    from stratdistill.dataset import sample_teacher, training_examples
    from stratdistill.finetune import finetune
    from stratdistill.scenarios import grid, load_library
    from stratdistill.teachers import ReferenceTeacher

    plain = TrainingArguments._setup_devices.func

    def two_gpus(self):
        device = plain(self)
        self._n_gpu = 2
        return device

    patched = cached_property(two_gpus)
    patched.__set_name__(TrainingArguments, "_setup_devices")
    monkeypatch.setattr(TrainingArguments, "_setup_devices", patched)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    lib = load_library()
    rows = sample_teacher(
        ReferenceTeacher(), grid(lib, ["IR"], ["prison"], "x"), lib, "action_motivation", 4, 0, 0.8, "t"
    )
    cfg = compose_cfg([*_student(tiny_student), "train.batch_size=2", "train.max_steps=2"])
    info = finetune(
        training_examples(rows, motivations=True, per_scenario=4),
        cfg.student,
        cfg.lora,
        cfg.train,
        0,
        str(MODEL_CACHE),
        tmp_path,
        {},
    )
    assert info["steps"] == 2
    out = capsys.readouterr().out
    assert "sees 2 GPUs but was not launched for data parallelism: training on one" in out
    assert "torchrun --nproc_per_node=2" in out


def test_pipeline_under_torchrun_rank0_builds_every_artifact_and_both_ranks_train(
    tiny_student: Path, tmp_path: Path
) -> None:
    cmd = [
        *_torchrun(2),
        str(ROOT / "launch.py"),
        "experiment=smoke",
        *_student(tiny_student),
        f"cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'out'}",
    ]
    proc = _run(cmd)
    out = proc.stdout
    assert (tmp_path / "out" / "report.md").is_file()
    assert "[generate] using" in out and "(built by rank 0)" in out  # rank 1 waited for rank 0's data
    assert "[rank 1] training done; rank 0 evaluates and writes the report" in out
    assert out.count("[finetune] wrote") == 1  # one artifact, written by rank 0
    adapters = list((tmp_path / "cache" / "finetune").glob("*/adapter/provenance.json"))
    assert len(adapters) == 1
    assert json.loads(adapters[0].read_text())["data_parallel_ranks"] == 2
    assert not list((tmp_path / "cache" / "finetune").glob("*.partial"))
    # the same command again: both ranks reuse everything, nobody trains
    again = _run(cmd).stdout
    assert "[finetune] reusing" in again and "examples in" not in again


def test_a_slurm_task_exports_its_rank_and_meets_on_loopback_on_one_node(monkeypatch) -> None:
    """submitit's master address is SLURM's node name, which need not resolve on the node itself (the
    local test cluster names its node `node1`); a one-node job meets on 127.0.0.1."""
    from stratdistill.distributed import export_submitit_env

    exported = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
    for name in exported:  # restored (removed) after the test: export writes os.environ itself
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    slurm = {
        "SUBMITIT_EXECUTOR": "slurm",
        "SLURM_JOB_ID": "17",
        "SLURM_NTASKS": "2",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NODEID": "0",
        "SLURM_JOB_NODELIST": "node1",
        "SLURM_PROCID": "1",
        "SLURM_LOCALID": "1",
    }
    for name, value in slurm.items():
        monkeypatch.setenv(name, value)
    ranks = export_submitit_env()
    assert (ranks.rank, ranks.local_rank, ranks.world_size) == (1, 1, 2)
    assert os.environ["MASTER_ADDR"] == "127.0.0.1"
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "2")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "node[1-2]")
    for name in exported:
        monkeypatch.delenv(name)
    export_submitit_env()
    assert os.environ["MASTER_ADDR"] == "node1"  # several nodes: the first node's name, as submitit has it
