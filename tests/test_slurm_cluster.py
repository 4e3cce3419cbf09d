"""The SLURM launcher against a real cluster: the one scripts/slurm/cluster-up.sh starts on this machine
(CI starts it before running these: `pytest -m cluster`). Each test has its own folder for the stage
cache and the sweep; the converted student is shared through a link, so no job converts it again.

Skipped, with the reason, where no cluster answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MODEL_CACHE, ROOT, compose_cfg


def _cluster_state() -> str | None:
    """None when a cluster with accounting is up, else why not."""
    if shutil.which("sinfo") is None or shutil.which("sacct") is None:
        return "SLURM is not installed"
    try:
        nodes = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
        acct = subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "the SLURM controller does not answer"
    if nodes.returncode != 0 or not any(s.startswith(("idle", "mix", "alloc")) for s in nodes.stdout.split()):
        return f"no SLURM node is up ({(nodes.stderr or nodes.stdout).strip()[:200]})"
    if acct.returncode != 0:
        return f"SLURM accounting is off ({acct.stderr.strip()[:200]})"
    return None


_WHY = _cluster_state()
if _WHY is not None and os.environ.get(
    "STRATDISTILL_REQUIRE_CLUSTER"
):  # CI: a skip would hide a broken cluster
    raise RuntimeError(f"STRATDISTILL_REQUIRE_CLUSTER is set but there is no usable SLURM cluster: {_WHY}")
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        _WHY is not None,
        reason=f"no local SLURM cluster: {_WHY} (start one: bash scripts/slurm/cluster-up.sh)",
    ),
]

SMOKE = ["experiment=smoke", "eval.splits=[in_sample]"]  # the smallest real pipeline run


@pytest.fixture(scope="module")
def converted_student() -> Path:
    """The converted default student (converted here once if no earlier test did)."""
    from stratdistill.students import student_source

    student_source(compose_cfg().student, MODEL_CACHE)
    return MODEL_CACHE / "models"


@pytest.fixture
def work(tmp_path: Path, converted_student: Path) -> Path:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "models").symlink_to(converted_student, target_is_directory=True)
    return tmp_path


def _args(work: Path, launcher: str, *overrides: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "launch.py"),
        "-m",
        f"hydra/launcher={launcher}",
        "hydra.launcher.poll_s=2",
        f"cache_dir={work / 'cache'}",
        f"hydra.sweep.dir={work / 'sweep'}",
        *overrides,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}


def _run(work: Path, launcher: str, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        _args(work, launcher, *overrides),
        cwd=work,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _start(work: Path, launcher: str, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        _args(work, launcher, *overrides),
        cwd=work,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _job_ids(work: Path) -> list[str]:
    """The SLURM job ids of this test's sweep (submitit's folders are named after them)."""
    # submitit's folder per job: <id>/ for a lone job, <array>_<task>/ for array tasks (then <array>/ holds
    # only the batch script)
    folder = work / "sweep" / ".submitit"
    return sorted(p.parent.name for p in folder.glob("*/*_submitted.pkl")) if folder.is_dir() else []


def _sacct(job: str, *flags: str) -> list[list[str]]:
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", *flags, "-j", job, "-o", "JobID,State,AllocTRES"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split("|") for line in out.stdout.splitlines() if line]


def _wait_for(what: str, condition, timeout: float, proc: subprocess.Popen | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(
                f"the command ended (rc={proc.returncode}) before {what}:\n{proc.stdout.read()[-4000:]}"
            )
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _stop(proc: subprocess.Popen, work: Path) -> None:
    """After a test that broke off: stop the command and its jobs. (Not after one that ended: its job
    may still be finishing after its result came back, and a scancel would then show as CANCELLED.)"""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        for job in {j.split("_")[0] for j in _job_ids(work)}:
            subprocess.run(["scancel", job], check=False)


def _ended(job: str, *flags: str) -> list[list[str]]:
    """sacct's rows for the job once every one has ended (its result can come back a moment earlier)."""

    def ended() -> list[list[str]] | None:
        rows = _sacct(job, *flags)
        latest = {r[0]: r[1] for r in rows}  # with --duplicates: each job's last record
        busy = ("RUNNING", "COMPLETING", "PENDING", "REQUEUED")
        return rows if rows and not any(state in busy for state in latest.values()) else None

    return _wait_for(f"job {job} to end", ended, 60)


def test_a_sweep_runs_as_a_job_array_with_one_gpu_each_and_returns_results(work: Path) -> None:
    proc = _run(
        work,
        "slurm_student",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=4",
        *SMOKE,
        "lora.r=4,8",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    jobs = _job_ids(work)
    assert len(jobs) == 2 and {j.split("_")[1] for j in jobs} == {"0", "1"}, jobs  # one array, 2 tasks
    array = jobs[0].split("_")[0]
    rows = _ended(array)
    assert sorted(r[1] for r in rows) == ["COMPLETED", "COMPLETED"], rows
    assert all("gres/gpu=1" in r[2] for r in rows), rows  # the preset's GPU, a fake one here
    for num, r in ((0, 4), (1, 8)):
        (folder,) = (work / "sweep").glob(f"{num}_*lora.r={r}")
        assert (folder / "report.md").is_file(), sorted(p.name for p in folder.iterdir())
        assert (folder / "results.csv").read_text().count("\n") > 4
        assert f"SLURM job {array}_{num} (#{num}) finished: returned" in out
    # the teacher's data was generated once, by one of the two tasks; the other waited and reused it
    logs = [(work / "sweep" / ".submitit" / j / f"{j}_0_log.out").read_text() for j in jobs]
    assert sum("[generate] wrote" in log for log in logs) == 1, logs
    assert all("[generate] reusing" in log or "[generate] wrote" in log for log in logs)
    assert len(list((work / "cache" / "generate").glob("*/manifest.json"))) == 1
    assert len(list((work / "cache" / "finetune").glob("*/manifest.json"))) == 2


def test_a_job_that_fails_on_the_node_surfaces_its_own_error(work: Path) -> None:
    # passes validation here (a hub id is not checked: this machine may be offline, the node may not be),
    # fails on the node, which is offline and has no such model
    proc = _run(
        work,
        "slurm_cpu",
        *SMOKE,
        "student=hf",
        "student.model_id=HuggingFaceTB/SmolLM2-no-such-model",
        "hydra.launcher.env.HF_HUB_OFFLINE=1",
        timeout=180,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    (job,) = _job_ids(work)
    line = next(x for x in proc.stderr.splitlines() if f"failed in SLURM job {job}: " in x)
    error, log_path = line.split(f"failed in SLURM job {job}: ", 1)[1].rsplit("; its log: ", 1)
    # the node's own error: the offline hub cannot give it the model
    assert error.startswith("ConfigError: student.model_id='HuggingFaceTB/SmolLM2-no-such-model'"), line
    assert "Error executing job with overrides" in proc.stderr  # Hydra re-raises the job's exception
    assert error.split(": ", 1)[1] in proc.stderr.split("Traceback")[-1]
    # the same error, with its traceback, is in the job's own log on the node
    assert Path(log_path) == work / "sweep" / ".submitit" / job / f"{job}_0_log.err"
    log = Path(log_path).read_text()
    assert error in log and "Traceback" in log


def test_a_cancelled_job_is_reported_not_waited_on(work: Path) -> None:
    proc = _start(work, "slurm_cpu", *SMOKE)
    try:
        job = _wait_for("the job to start", lambda: (_job_ids(work) or [None])[0], 60, proc)

        def running() -> bool:
            rows = _sacct(job)
            return bool(rows) and rows[0][1] == "RUNNING"

        _wait_for("the job to run", running, 60, proc)
        subprocess.run(["scancel", job], check=True)
        cancelled = time.time()
        out, _ = proc.communicate(timeout=60)
        seconds = time.time() - cancelled
    finally:
        _stop(proc, work)
    assert proc.returncode != 0, out[-4000:]
    assert "CANCELLED" in out, out[-4000:]
    assert f"SLURM job {job} ended without a result" in out
    assert seconds < 30, f"the cancellation was reported after {seconds:.0f} s"


def test_a_preempted_job_is_requeued_and_resumes_from_its_checkpoint(work: Path) -> None:
    # the job runs on the preemptable `debug` partition; timeout_min >= 11, or submitit would take
    # SLURM's signal for a time-out (see src/stratdistill/slurm.py)
    proc = _start(
        work,
        "slurm_cpu",
        *SMOKE,
        "until=finetune",
        "train.max_steps=6",
        "train.save_steps=1",
        "hydra.launcher.timeout_min=20",
        "hydra.launcher.partition=debug",
    )
    urgent = None
    try:
        ckpts = work / "cache" / "finetune"
        _wait_for(
            "a fine-tune checkpoint",
            lambda: list(ckpts.glob("*.partial/checkpoints/checkpoint-*/trainer_state.json")),
            240,
            proc,
        )
        (job,) = _job_ids(work)
        cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout.split()[0]
        # a job on the higher-priority partition that needs the whole node: SLURM preempts ours
        urgent = subprocess.run(
            [
                "sbatch",
                "--parsable",
                "-p",
                "urgent",
                "-c",
                cpus,
                "--mem=256M",
                "-o",
                "urgent.out",
                "--wrap",
                "sleep 3",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        out, _ = proc.communicate(timeout=300)
    finally:
        _stop(proc, work)
    assert proc.returncode == 0, out[-4000:]
    history = [row[1] for row in _ended(job, "--duplicates")]
    assert any(s in ("PREEMPTED", "REQUEUED") for s in history), history
    assert history[-1] == "COMPLETED", history
    assert _ended(urgent)[0][1] == "COMPLETED"
    log = (work / "sweep" / ".submitit" / job / f"{job}_0_log.err").read_text()
    assert "this job is preempted" in log
    assert (
        "[until] stopping after the finetune stage(s)"
        in (work / "sweep" / ".submitit" / job / f"{job}_0_log.out").read_text()
    )
    (manifest,) = (work / "cache" / "finetune").glob("*/manifest.json")
    info = json.loads(manifest.read_text())
    assert info["resumed"] is True and info["steps"] == 6, info  # it went on from its checkpoint


def test_asking_for_gpus_the_cluster_does_not_have_gets_slurms_answer(work: Path) -> None:
    started = time.time()
    proc = _run(
        work,
        "slurm_student",
        "experiment=smoke",
        "hydra.launcher.gpus_per_node=8",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=4",
    )
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "stratdistill: error: SLURM refused the job array (" in proc.stderr
    assert "gpus_per_node=8" in proc.stderr
    assert "Requested node configuration is not available" in proc.stderr  # sbatch's own words
    assert time.time() - started < 30


def test_a_job_slurm_will_never_start_is_cancelled_and_reported(work: Path) -> None:
    # the teacher preset (8 GPUs, 32 CPUs, 480 GB) on a one-node cluster: sbatch refuses it or accepts it
    # into a queue it can never leave (pending reason PartitionConfig); either way the command says so
    started = time.time()
    proc = _run(work, "slurm_teacher", "experiment=smoke")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "stratdistill: error: SLURM " in proc.stderr
    assert any(
        why in proc.stderr for why in ("Requested node configuration is not available", "PartitionConfig")
    ), proc.stderr
    assert time.time() - started < 30
    for job in _job_ids(work):
        state = _sacct(job)[0][1]
        assert state.startswith(("CANCELLED", "FAILED")), state  # nothing left waiting in the queue


def test_a_data_parallel_job_trains_on_two_tasks_and_rank0_writes_the_report(work: Path) -> None:
    """tasks_per_node=2: submitit starts two tasks, each a torch rank (gloo here: the GPUs are fake)."""
    proc = _run(
        work,
        "slurm_student_4gpu",
        "hydra.launcher.tasks_per_node=2",
        "hydra.launcher.gpus_per_node=2",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=6",
        *SMOKE,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    (job,) = _job_ids(work)
    rows = _ended(job.split("_")[0])
    assert [r[1] for r in rows] == ["COMPLETED"], rows
    folder = work / "sweep" / ".submitit" / job
    rank0, rank1 = ((folder / f"{job}_{task}_log.out").read_text() for task in (0, 1))
    assert "[distributed] SLURM task 0 of 2" in rank0 and "[distributed] SLURM task 1 of 2" in rank1
    assert "[finetune] wrote" in rank0 and "[finetune] using" in rank1  # both trained, rank 0 published
    assert "[rank 1] training done" in rank1
    (adapter,) = (work / "cache" / "finetune").glob("*/adapter/provenance.json")
    assert json.loads(adapter.read_text())["data_parallel_ranks"] == 2
    (report,) = (work / "sweep").glob("0_*/report.md")
    assert "and 1 more data-parallel rank(s)" in report.read_text()


def test_tasks_per_node_that_differs_from_the_gpus_is_refused_before_submission(work: Path) -> None:
    proc = _run(work, "slurm_student_4gpu", "hydra.launcher.tasks_per_node=2", *SMOKE)
    assert proc.returncode == 2
    assert "tasks_per_node=2 with gpus_per_node=4" in proc.stderr
    assert _job_ids(work) == []
