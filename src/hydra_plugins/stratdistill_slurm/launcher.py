"""The launcher class Hydra instantiates for conf/hydra/launcher/slurm_*; see :mod:`stratdistill.slurm`."""

from stratdistill.slurm import SlurmLauncherBase


class SlurmLauncher(SlurmLauncherBase):
    """hydra-submitit-launcher's SLURM launcher with stratdistill's submission checks and waiting."""
