"""Before anything runs or is submitted: every sweep point is validated; the SLURM presets compose;
`until` stops after the teacher's stages. None of this needs a cluster (tests/test_slurm_cluster.py does)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from conftest import CONF, run_launch
from stratdistill.errors import ConfigError


def _launch(args: list[str], cwd: Path, path: str | None = None) -> subprocess.CompletedProcess:
    return run_launch(args, cwd=cwd, timeout=120, env=None if path is None else {"PATH": path})


@pytest.mark.parametrize("launcher", ["basic", "slurm_cpu"])
def test_one_bad_sweep_point_stops_the_command_before_anything_runs(tmp_path: Path, launcher: str) -> None:
    args = [
        "-m",
        "experiment=smoke",
        "lora.r=4,8",
        "data.motivations=true,false",
        "train.learning_rate=1e-4,-1",
    ]
    if launcher != "basic":
        args.append(f"hydra/launcher={launcher}")
    proc = _launch([*args, f"hydra.sweep.dir={tmp_path}/sweep", f"cache_dir={tmp_path}/cache"], tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    # the first bad point of the 8, named by what varies, with the value and what is allowed
    assert proc.stderr.strip().splitlines()[-1] == (
        "stratdistill: error: sweep point #1 (lora.r=4 data.motivations=True train.learning_rate=-1): "
        "train.learning_rate=-1.0 is not valid: a number > 0"
    )
    assert (
        not (tmp_path / "sweep").exists() and not (tmp_path / "cache").exists()
    )  # nothing ran or was submitted


def test_a_named_sweep_is_expanded_and_checked_too(tmp_path: Path) -> None:
    proc = _launch(["-m", "sweep=lora_rank", "lora.dropout=1.5", f"hydra.sweep.dir={tmp_path}/s"], tmp_path)
    assert proc.returncode == 2
    assert "stratdistill: error: sweep point #0 (lora.r=4): lora.dropout=1.5 is not valid" in proc.stderr


def test_a_point_that_does_not_compose_is_named(tmp_path: Path) -> None:
    proc = _launch(["-m", "lora.r=4,abc", f"hydra.sweep.dir={tmp_path}/s"], tmp_path)
    assert proc.returncode == 2
    assert "stratdistill: error: sweep point #1 (lora.r=abc): " in proc.stderr
    assert not (tmp_path / "s").exists()


def test_slurm_leaves_gpu_checks_to_the_node_and_needs_sbatch(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the local check would pass anyway")
    common = ["-m", "train=qlora", "lora.r=8,16", f"hydra.sweep.dir={tmp_path}/s"]
    here = _launch(common, tmp_path)  # runs here: QLoRA needs CUDA here
    assert here.returncode == 2 and "CUDA" in here.stderr
    # on SLURM the nodes have the GPUs: validation passes, then the launcher looks for sbatch
    venv_only = str(Path(sys.executable).parent)
    slurm = _launch([*common, "hydra/launcher=slurm_student"], tmp_path, path=venv_only)
    assert slurm.returncode == 2, slurm.stderr[-2000:]
    assert "submits with sbatch, which is not on PATH" in slurm.stderr
    assert "CUDA" not in slurm.stderr


@pytest.mark.parametrize(
    ("preset", "gpus", "name"),
    [
        ("slurm_student", 1, "stratdistill-student"),
        ("slurm_teacher", 8, "stratdistill-teacher"),
        ("slurm_cpu", None, "stratdistill-cpu"),
    ],
)
def test_launcher_presets_compose(preset: str, gpus: int | None, name: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={preset}"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.stratdistill_slurm.launcher.SlurmLauncher"
    assert launcher.gpus_per_node == gpus and launcher.name == name
    assert launcher.timeout_min >= 11  # below, submitit takes a preemption for a time-out
    assert launcher.max_num_timeout > 0  # a timed-out job is requeued
    assert {"partition", "account", "qos", "setup", "env"} <= set(launcher)
    assert launcher.cpus_per_task == launcher.env.OMP_NUM_THREADS


def test_env_becomes_exports_before_the_setup_lines() -> None:
    from hydra_plugins.stratdistill_slurm.launcher import SlurmLauncher

    launcher = SlurmLauncher(
        submitit_folder="x", setup=["module load cuda"], env={"HF_HOME": "/a b", "WANDB_MODE": None}, poll_s=1
    )
    assert launcher.params["setup"] == ["export HF_HOME='/a b'", "module load cuda"]
    assert "env" not in launcher.params and "poll_s" not in launcher.params and launcher.poll_s == 1


def test_config_errors_survive_pickling() -> None:
    # a SLURM job's ConfigError travels back to the submitting command as a pickle
    exc = pickle.loads(pickle.dumps(ConfigError("lora.r", -1, "an integer > 0")))
    assert str(exc) == "lora.r=-1 is not valid: an integer > 0" and exc.key == "lora.r"


def test_until_teacher_runs_only_the_teacher_stages(tmp_path: Path) -> None:
    proc = run_launch(
        ["experiment=smoke", "until=teacher", f"cache_dir={tmp_path}/cache", f"output_dir={tmp_path}/out"],
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[until] stopping after the teacher stage(s)" in proc.stdout
    stages = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert stages == ["evaluate_teacher", "generate"]
    assert not (tmp_path / "out" / "report.md").exists()


def test_until_must_name_a_stage(tmp_path: Path) -> None:
    proc = run_launch(["until=report", f"cache_dir={tmp_path}/cache"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "until='report' is not valid: null (every stage) or one of ['teacher', 'finetune']" in proc.stderr


def test_resume_skips_a_checkpoint_cut_off_while_saving(tmp_path: Path) -> None:
    from stratdistill.finetune import last_complete_checkpoint

    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert not (tmp_path / "checkpoint-6").exists()
    assert last_complete_checkpoint(tmp_path / "none") is None
