"""stratdistill's SLURM launcher as a Hydra plugin (Hydra only instantiates plugins from hydra_plugins)."""
