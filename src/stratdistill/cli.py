"""What ``launch.py`` does with a composed config: run the pipeline, print where the report is.

Bad input (:class:`~stratdistill.errors.ConfigError`) becomes one line on stderr and exit status 2,
raised by the validation that runs before any model is loaded.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
from pathlib import Path

from omegaconf import DictConfig

from stratdistill.errors import ConfigError, TeacherStopped


def _output_dir(cfg: DictConfig) -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir)
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _in_slurm_job() -> bool:
    """Whether this runs as a SLURM job (submitit); if so, the error goes into the job's log too (Hydra
    hands the exception to the launcher without printing it)."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return False
    traceback.print_exc()
    return True


def _print_summary(result) -> None:
    """Per split: distance to the teacher, bridging, median and mean gap closed, and what a constant and a
    uniform shift score on the paper's mean (the report has the rest)."""
    from stratdistill.formatting import fmt
    from stratdistill.transfer import transfer_table

    table = transfer_table(result.results).set_index(["split", "predictor"])
    print(
        "\nPer split: MAE to the teacher (base -> tuned), bridging, gap closed % median / mean (paper's), and"
    )
    print("the paper's mean for predictors that learned nothing (constant / uniform shift):")
    for split, s in result.summary.items():
        df = result.results[result.results["split"] == split]
        base_mae = (df["base"] - df["teacher"]).abs().mean()
        t = table.loc[split] if split in table.index.get_level_values(0) else None
        tuned_mae = t.at["tuned", "mae"] if t is not None else float("nan")
        const = t.at["constant", "gap_mean"] if t is not None else float("nan")
        shift = t.at["shift", "gap_mean"] if t is not None else float("nan")
        print(
            f"  {split:<18} MAE {fmt(base_mae, 3)} -> {fmt(tuned_mae, 3)}  bridging "
            f"{fmt(float(df['bridging'].mean()))}  gap {fmt(s['median'], 1)} / {fmt(s['mean'], 1)}  "
            f"(constant {fmt(const, 1)} / shift {fmt(shift, 1)})  [{s['n']} of {len(df)} scenarios defined]"
        )


def run_from_hydra(cfg: DictConfig) -> float | None:
    """Run one config; return the first split's mean gap closed (a sweeper may optimise it)."""
    from stratdistill.distributed import current_ranks
    from stratdistill.pipeline import run_pipeline

    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        result = run_pipeline(cfg, _output_dir(cfg))
    except ConfigError as exc:
        if _in_slurm_job():
            raise  # the launcher brings the error back to the submitting command
        print(f"stratdistill: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except TeacherStopped as exc:
        if _in_slurm_job():
            raise
        print(
            f"stratdistill: teacher stopped: {exc}. Every finished chunk of answers is kept; "
            "run the same command again to resume.",
            file=sys.stderr,
        )
        sys.exit(1)
    except Exception:
        _in_slurm_job()
        raise
    if result.report is None and not current_ranks().is_main:
        return None  # a data-parallel rank other than 0: it trained; rank 0 prints the results
    if result.report is None:  # until=...: stopped after the stages asked for
        for name, art in result.artifacts.items():
            print(f"  {name:<18} {art.path}")
        print(f"\nFinished in {result.seconds:.0f} s (until={cfg.until}).")
        return None
    _print_summary(result)
    print(f"\nFinished in {result.seconds:.0f} s. Report: {result.report}")
    first = next(iter(result.summary.values()), None)
    return None if first is None or math.isnan(first["mean"]) else first["mean"]


def main() -> None:
    """``stratdistill`` console script: points users at launch.py (Hydra needs the repo's conf/)."""
    print("Run the pipeline from the repository root: python launch.py [overrides]  (see README.md)")
