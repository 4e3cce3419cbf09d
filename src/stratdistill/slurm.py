"""Sweeps on SLURM: hydra-submitit-launcher, plus what a real cluster needs around it.

``python launch.py -m hydra/launcher=slurm_student lora.r=8,16`` submits one job array through the
presets in ``conf/hydra/launcher/`` (schema: :class:`StratSlurmConf`). Compared with the stock
``submitit_slurm`` launcher, this one (:class:`SlurmLauncherBase`; Hydra instantiates plugins only
from the ``hydra_plugins`` package, hence its subclass there)

* refuses to start without ``sbatch`` on PATH, and turns a refused submission (``sbatch: error: ...``,
  e.g. GPUs the cluster does not have) into one line and exit status 2;
* waits by polling SLURM's accounting every ``poll_s`` seconds for all of its jobs at once (one
  ``sacct`` call), so a job that ends without a result (cancelled, killed, node failure) is reported
  within ``poll_s`` rather than after submitit's back-off (up to 10 minutes);
* logs each job's state changes, the reason a pending job waits, and fails at once, cancelling the
  array, when SLURM says it will never start it (e.g. ``PartitionTimeLimit``);
* reports every failed sweep point (the job's own error and its log file) before Hydra raises the first;
* exports ``env`` (e.g. ``WANDB_MODE``, ``HF_HOME``) in the batch script, before the ``setup`` lines.

Preemption and time limits use submitit's checkpointing as the stock launcher does: on SLURM's
signal the job requeues itself (``max_num_timeout`` times for time limits, always for preemption), and
the rerun resumes from the stage artifacts already published and the fine-tune's last checkpoint.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _StockSlurmLauncher
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

# Pending reasons that no amount of waiting resolves: the request exceeds what the partition, the
# account or the QOS allows (sbatch accepts such jobs unless the site sets EnforcePartLimits).
HOPELESS_REASONS = (
    "BadConstraints",
    "PartitionConfig",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "InvalidAccount",
    "InvalidQOS",
    "QOSMaxGRESPerJob",
    "QOSMaxCpuPerJobLimit",
    "QOSMaxMemoryPerJob",
    "QOSMaxWallDurationPerJobLimit",
    "AssocMaxGRESPerJob",
    "AssocMaxWallDurationPerJobLimit",
)


@dataclass
class StratSlurmConf(SlurmQueueConf):
    """``submitit_slurm``'s keys, plus ``env`` and ``poll_s``."""

    _target_: str = "hydra_plugins.stratdistill_slurm.launcher.SlurmLauncher"
    # exported in the batch script before `setup`; a null value is left out (the job then inherits the
    # submitting shell's value, as sbatch exports the environment by default)
    env: dict[str, Any] = field(default_factory=dict)
    poll_s: float = 15.0  # seconds between two looks at the jobs' states (one sacct call for all)


def register_configs() -> None:
    ConfigStore.instance().store(
        group="hydra/launcher", name="stratdistill_slurm", node=StratSlurmConf, provider="stratdistill"
    )


def _error(message: str, code: int = 2) -> SystemExit:
    print(f"stratdistill: error: {message}", file=sys.stderr, flush=True)
    return SystemExit(code)


def _export_lines(env: dict[str, Any]) -> list[str]:
    return [f"export {k}={shlex.quote(str(v))}" for k, v in env.items() if v is not None]


class SlurmLauncherBase(_StockSlurmLauncher):
    """The implementation; Hydra instantiates its subclass in ``hydra_plugins.stratdistill_slurm``."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.poll_s = float(self.params.pop("poll_s", 15.0))
        env = self.params.pop("env", None) or {}
        self.params["setup"] = _export_lines(env) + list(self.params.get("setup") or [])

    # ------------------------------------------------------------------ submission
    def _executor(self):
        import submitit

        params = dict(self.params)
        executor = submitit.AutoExecutor(
            folder=params.pop("submitit_folder"),
            cluster="slurm",  # explicit: AutoExecutor would pick "local" where srun is missing
            slurm_max_num_timeout=params.pop("max_num_timeout"),
        )
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{(k if k in base else f"slurm_{k}"): v for k, v in params.items()})
        return executor

    def _request(self) -> str:
        p = self.params
        keys = ("partition", "account", "qos", "nodes", "gpus_per_node", "cpus_per_task", "mem_gb")
        parts = [f"{k}={p[k]}" for k in keys if p.get(k) is not None]
        return ", ".join([*parts, f"timeout_min={p.get('timeout_min')}"])

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from submitit.core.utils import FailedJobError

        assert self.config is not None
        if shutil.which("sbatch") is None:
            raise _error(
                "hydra/launcher=slurm_* submits with sbatch, which is not on PATH here "
                "(run from a SLURM login node, or drop hydra/launcher= to run the sweep on this machine)"
            )
        tasks, gpus = self.params.get("tasks_per_node") or 1, self.params.get("gpus_per_node")
        if tasks > 1 and gpus and gpus != tasks:
            raise _error(
                f"hydra.launcher.tasks_per_node={tasks} with gpus_per_node={gpus}: a data-parallel job runs "
                "one task per GPU, set them equal"
            )
        executor = self._executor()
        sweep_dir = str(self.config.hydra.sweep.dir)
        job_params = []
        for num, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
            job_params.append((list(overrides), "hydra.sweep.dir", num, f"job_id_for_{num}", _singletons()))
        try:
            jobs = executor.map_array(self, *zip(*job_params, strict=True))
        except FailedJobError as exc:  # sbatch said no: show SLURM's own words
            words = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise _error(f"SLURM refused the job array ({self._request()}): {words}") from None
        array = jobs[0].job_id.split("_")[0]
        log.info(
            "Submitted %d job(s) as SLURM job %s (%s); outputs in %s, job logs in %s",
            len(jobs),
            array,
            self._request(),
            sweep_dir,
            jobs[0].paths.folder.parent,
        )
        try:
            return self._wait(jobs, job_overrides, initial_job_idx)
        except KeyboardInterrupt:
            print(
                f"\nstratdistill: stopped waiting; the jobs keep running (scancel {array} stops them). "
                "Running the same command again reuses every finished stage.",
                file=sys.stderr,
            )
            raise

    # ------------------------------------------------------------------ waiting
    def _wait(self, jobs: list[Any], job_overrides: Sequence[Sequence[str]], first: int) -> list[JobReturn]:
        watcher = jobs[0].watcher
        results: list[JobReturn | None] = [None] * len(jobs)
        seen: dict[str, str] = {}
        reasons: dict[str, str] = {}
        while True:
            watcher.update()  # one sacct call for every job of the array
            states = {job.job_id: watcher.get_state(job.job_id, mode="cache") for job in jobs}
            for i, job in enumerate(jobs):
                if results[i] is not None:
                    continue
                state = states[job.job_id]
                if state != seen.get(job.job_id):
                    seen[job.job_id] = state
                    note = (
                        ": requeued, it resumes from its finished stages and last checkpoint"
                        if state.startswith(("REQUEUED", "PREEMPTED"))
                        else ""
                    )
                    log.info("SLURM job %s (#%d): %s%s", job.job_id, first + i, state, note)
                if job.done():
                    results[i] = self._collect(job, list(job_overrides[i]), first + i, state)
            if all(r is not None for r in results):
                return [r for r in results if r is not None]
            if any(s.startswith("PENDING") for s in states.values()):
                self._check_pending(jobs, reasons)
            time.sleep(self.poll_s)

    def _check_pending(self, jobs: list[Any], reasons: dict[str, str]) -> None:
        """Log why pending jobs wait; fail at once where SLURM will never start them."""
        array = jobs[0].job_id.split("_")[0]
        out = subprocess.run(
            ["squeue", "-h", "-j", array, "-t", "PENDING", "-o", "%i|%r"],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in out.stdout.splitlines():
            job_id, _, reason = line.partition("|")
            if reasons.get(job_id) != reason:
                reasons[job_id] = reason
                log.info("SLURM job %s is pending: %s", job_id, reason)
            if reason.startswith(HOPELESS_REASONS):
                subprocess.run(["scancel", array], check=False)
                raise _error(
                    f"SLURM will never start job {job_id} (pending reason {reason}); cancelled job {array}. "
                    f"Its request was {self._request()}: lower it, or pick another partition/account/qos "
                    "(see `scontrol show partition`)"
                )

    @staticmethod
    def _collect(job: Any, overrides: list[str], num: int, state: str) -> JobReturn:
        """The job's JobReturn; a job that ended without one (cancelled, killed) becomes a failed one."""
        from submitit.core.utils import FailedJobError, UncompletedJobError

        point = " ".join(filter_overrides(overrides))
        try:
            ret = job.results()[0]
        except (UncompletedJobError, FailedJobError) as exc:
            head = str(exc).splitlines()[1] if len(str(exc).splitlines()) > 1 else str(exc)
            print(
                f"stratdistill: error: sweep point #{num} ({point}): SLURM job {job.job_id} ended without "
                f"a result: {head.strip()}; its log: {job.paths.stderr}",
                file=sys.stderr,
                flush=True,
            )
            ret = JobReturn(overrides=overrides, status=JobStatus.FAILED)
            ret.return_value = exc
            return ret
        if ret.status == JobStatus.COMPLETED:
            log.info("SLURM job %s (#%d) finished: returned %r", job.job_id, num, ret.return_value)
        elif ret.status == JobStatus.FAILED:
            print(
                f"stratdistill: error: sweep point #{num} ({point}) failed in SLURM job {job.job_id}: "
                f"{type(ret._return_value).__name__}: {ret._return_value}; its log: {job.paths.stderr}",
                file=sys.stderr,
                flush=True,
            )
        return ret


def _singletons() -> Any:
    from hydra.core.singleton import Singleton

    return Singleton.get_state()
