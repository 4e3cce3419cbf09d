"""Which process this is, which device it owns, and who builds artifacts in a data-parallel run.

Data-parallel training runs on engines that already exist: ``torchrun`` / ``accelerate launch`` set
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; a SLURM job with ``tasks_per_node=N`` (submitit) gets them
from :func:`export_submitit_env`, which uses submitit's own ``TorchDistributedEnvironment``. Every rank
runs the same pipeline. Rank 0 alone builds artifacts and takes their locks; the other ranks poll the
artifact store until rank 0 has published what they need (filesystem polling rather than a collective,
so that an hours-long teacher stage never hits a process-group timeout), join the fine-tune that rank 0
announces, and stop after training: evaluation and the report are rank 0's.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranks:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(*names: str, default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value)
    return default


def current_ranks() -> Ranks:
    """Ranks from the variables torchrun, accelerate and :func:`export_submitit_env` set."""
    return Ranks(
        rank=_env_int("RANK", default=0),
        local_rank=_env_int("LOCAL_RANK", default=0),
        world_size=_env_int("WORLD_SIZE", default=1),
    )


def export_submitit_env() -> Ranks:
    """In a SLURM job of several tasks started by submitit, export torch's distributed variables.

    ``CUDA_VISIBLE_DEVICES`` is left alone: every task sees the node's GPUs and picks ``cuda:LOCAL_RANK``,
    which is what the Trainer (through accelerate) expects. Outside such a job, or when a launcher already
    set ``RANK``, nothing changes.
    """
    tasks = _env_int("SLURM_NTASKS", default=1)
    if "RANK" in os.environ or tasks <= 1 or "SUBMITIT_EXECUTOR" not in os.environ:
        return current_ranks()
    from submitit.helpers import TorchDistributedEnvironment

    env = TorchDistributedEnvironment()
    if _env_int("SLURM_JOB_NUM_NODES", "SLURM_NNODES", default=1) == 1:
        # Every task is on this node: meet on the loopback address. SLURM's node name (what submitit
        # takes) need not resolve to this host (sites that name nodes apart from their hostnames).
        env.master_addr = "127.0.0.1"
    env.export(set_cuda_visible_devices=False)
    print(
        f"[distributed] SLURM task {env.rank} of {env.world_size} "
        f"(master {env.master_addr}:{env.master_port})",
        flush=True,
    )
    return current_ranks()


def job_device(ranks: Ranks | None = None) -> Any:
    """The device this process owns: ``cuda:LOCAL_RANK`` when CUDA is there, else the CPU."""
    import torch

    from stratdistill.errors import ConfigError

    ranks = ranks or current_ranks()
    if not torch.cuda.is_available():
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if ranks.local_rank >= count:
        raise ConfigError(
            "LOCAL_RANK",
            ranks.local_rank,
            f"below the {count} GPU(s) this process sees: launch one process per GPU "
            "(torchrun --nproc_per_node or SLURM tasks_per_node = gpus_per_node)",
        )
    return torch.device("cuda", ranks.local_rank)


def init_process_group(ranks: Ranks) -> None:
    """Join the run's process group (NCCL on CUDA, gloo on CPU) if it is not joined yet.

    The Trainer (through accelerate) reuses an initialised group, so training and our own collectives
    share one group.
    """
    import torch
    import torch.distributed as dist

    if not ranks.distributed or dist.is_initialized():
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(job_device(ranks))
    dist.init_process_group(backend=backend)


def run_nonce(ranks: Ranks) -> str:
    """One id shared by every rank of this launch, chosen by rank 0.

    It tells the other ranks which fine-tune announcement is this launch's own: a staging folder left by
    an earlier, killed launch (kept so that training resumes) carries an older id.
    """
    nonce = uuid.uuid4().hex
    if not ranks.distributed:
        return nonce
    import torch.distributed as dist

    init_process_group(ranks)
    box = [nonce if ranks.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return str(box[0])


def keep_one_gpu(args: Any) -> None:
    """Train on one GPU when a single process sees several without a distributed launch.

    The Trainer would otherwise wrap the model in ``DataParallel`` and multiply the batch by the GPU
    count, and a shared-prefix pack is one sequence that cannot be split that way. Setting the
    Trainer's GPU count to 1 is what the Trainer itself does for model-parallel models.
    """
    if args.n_gpu <= 1 or current_ranks().distributed:
        return
    print(
        f"[finetune] this process sees {args.n_gpu} GPUs but was not launched for data parallelism: "
        "training on one. For one process per GPU: torchrun --nproc_per_node="
        f"{args.n_gpu} launch.py ..., or hydra/launcher=slurm_student_4gpu on SLURM",
        flush=True,
    )
    args._n_gpu = 1


JOIN_MARKER = "data_parallel_run.json"


class RankedStore:
    """An :class:`~stratdistill.artifacts.ArtifactStore` as one rank of a data-parallel run sees it.

    Rank 0 builds as a single process would. The other ranks never build: they wait for rank 0's
    publication, except for the stages in ``joined`` (fine-tuning), whose producer every rank runs
    together once rank 0 has announced, in the stage's staging folder, that this launch is building it.
    """

    def __init__(self, store: Any, ranks: Ranks, nonce: str, joined: tuple[str, ...] = ("finetune",)):
        self.store, self.ranks, self.nonce, self.joined = store, ranks, nonce, joined

    def __getattr__(self, name: str) -> Any:  # get, path, ...: the plain store's
        return getattr(self.store, name)

    def build(self, stage: str, spec: dict[str, Any], producer: Any, log: Any = print) -> Any:
        import json

        from stratdistill.artifacts import atomic_write_json

        if not self.ranks.distributed:
            return self.store.build(stage, spec, producer, log)
        if self.ranks.is_main:
            if stage not in self.joined:
                return self.store.build(stage, spec, producer, log)

            def announced(folder: Any) -> Any:
                marker = folder / JOIN_MARKER
                atomic_write_json(marker, {"nonce": self.nonce, "world_size": self.ranks.world_size})
                try:
                    return producer(folder)
                finally:
                    marker.unlink(missing_ok=True)

            return self.store.build(stage, spec, announced, log)

        def join(folder: Any) -> bool:
            marker = folder / JOIN_MARKER
            if stage not in self.joined or not marker.is_file():
                return False
            if json.loads(marker.read_text()).get("nonce") != self.nonce:
                return False  # an earlier launch's leftover
            producer(folder)
            return True

        return self.store.wait_for(stage, spec, log=log, while_waiting=join)
