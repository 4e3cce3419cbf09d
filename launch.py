"""stratdistill's entry point: one Hydra app for single runs and sweeps.

python launch.py                                              # the default pipeline, end to end
python launch.py -m lora.r=8,16 data.motivations=true,false   # a 4-point sweep (teacher runs once)
python launch.py -m sweep=motivations                         # a named ablation from sweeps/
python launch.py experiment=smoke                             # a one-minute run on a tiny split
python launch.py --cfg job                                    # print the composed config, run nothing
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

import stratdistill.config  # noqa: F401  (registers the config schema with Hydra's ConfigStore)
from stratdistill.cli import run_from_hydra


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return run_from_hydra(cfg)


if __name__ == "__main__":
    main()
