"""Validate every sweep point before anything is launched (a Hydra callback, see conf/config.yaml).

``python launch.py -m ...`` enumerates the points exactly as Hydra's basic sweeper will (command-line
sweeps and a named sweep's ``hydra.sweeper.params``), composes each one and runs
:func:`stratdistill.config.validate` on it. The first bad point stops the command with
``stratdistill: error: sweep point #i (...): ...`` and exit status 2: nothing is submitted to SLURM
and no local run starts, instead of one job failing an hour later on a node.

For a launcher that runs the jobs elsewhere (SLURM), checks that depend on this machine's hardware
(CUDA for QLoRA or a 4-bit teacher) are left to the node, which validates again before loading
anything; everything else is checked here.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, NoReturn

from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from stratdistill.errors import ConfigError

log = logging.getLogger(__name__)
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def sweep_points(config: DictConfig, config_loader: Any = None) -> list[list[str]] | None:
    """Every job's overrides, as the basic sweeper will launch them; None for another sweeper.

    ``config`` is the composed multirun config, or a finished sweep's ``multirun.yaml`` (the
    comparison reads its plan from there). ``config_loader`` lets sweeps over config groups expand.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if OmegaConf.select(config, "hydra.sweeper._target_") != BASIC_SWEEPER:
        return None
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()]
    arguments += OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    parser = OverridesParser.create(config_loader=config_loader)
    batches = BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)
    return [list(point) for point in batches[0]]


def runs_elsewhere(config: DictConfig) -> bool:
    """Whether the launcher runs jobs on other machines (this machine's GPUs then do not matter)."""
    return "slurm" in str(OmegaConf.select(config, "hydra.launcher._target_") or "").lower()


def _varying(points: list[list[str]]) -> list[set[str]]:
    """For each point, the overrides that differ between points (what names a point to a user)."""
    if len(points) < 2:
        return [set(p) for p in points]
    common = set(points[0]).intersection(*points[1:])
    return [set(p) - common for p in points]


class ValidateSweep(Callback):
    """``on_multirun_start``: compose and validate every point; exit 2 on the first bad one."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from stratdistill.config import validate

        started = time.time()
        try:
            points = sweep_points(config, GlobalHydra.instance().config_loader())
        except HydraException as exc:
            _fail(f"the sweep cannot be expanded: {exc}")
        if points is None:
            log.info(
                "sweeper %s: its points are not known in advance, none validated here", config.hydra.sweeper
            )
            return
        loader = GlobalHydra.instance().config_loader()
        hardware = not runs_elsewhere(config)
        names = _varying(points)
        for num, point in enumerate(points):
            name = " ".join(o for o in point if o in names[num]) or " ".join(point) or "no overrides"
            try:
                validate(loader.load_sweep_config(config, point), hardware=hardware)
            except ConfigError as exc:
                _fail(f"sweep point #{num} ({name}): {exc}")
            except (HydraException, OmegaConfBaseException) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                _fail(f"sweep point #{num} ({name}): {first}")
        log.info("Validated %d sweep point(s) in %.1f s", len(points), time.time() - started)


def _fail(message: str) -> NoReturn:
    # Hydra turns a callback's exceptions into warnings: exit here (SystemExit passes through).
    print(f"stratdistill: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)
