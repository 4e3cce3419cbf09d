"""The answer to a sweep: one comparison of every sweep point, written into the sweep folder.

For each point of a Hydra multirun (its overrides), the mean gap closed per split with the same 95%
bootstrap interval as the run's own report (recomputed from its ``results.csv``), next to what a
constant and a uniform shift score on the same metric; for each swept key with two or more values, the
effect of each value against the first (e.g. ``data.motivations=false`` vs ``true``) on the mean gap
closed, on the distance to the teacher (MAE) and on bridging, averaged over the other swept keys, with a
95% paired interval that resamples scenarios and the pairs it averages over (seeds included); when
``seed`` is swept, each configuration's figures across seeds with intervals that include the run-to-run
variance (:mod:`stratdistill.sweep_stats`); and a figure.

Points that failed are shown as failed (with the tail of their error), not dropped. The planned points
come from the sweep's ``multirun.yaml`` (basic sweeper grid), so a job that never wrote its folder is
listed too; errors come from ``error.txt`` (written by :class:`CompareCallback` when a job raises) or
from submitit's logs in ``<sweep>/.submitit/`` when the jobs ran on a cluster.

Writes ``comparison.md``, ``comparison.csv`` (one row per point), ``comparison_effects.csv`` (and
``comparison_seeds.csv`` when seeds were swept) and ``comparison.png``. The work is in three modules:
:mod:`stratdistill.sweep_folder` reads the sweep folder, :mod:`stratdistill.sweep_stats` computes the
estimates and effects, :mod:`stratdistill.compare_render` writes the Markdown and the figure; this one
ties them together, and holds the Hydra callback and the command line.

Runs by itself at the end of every multirun (:class:`CompareCallback`, registered in
``conf/config.yaml``) and after the fact::

    python -m stratdistill.compare multirun/2026-01-01/12-00-00 [--out DIR] [--n-boot 2000]
"""

from __future__ import annotations

import argparse
import atexit
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from stratdistill.sweep_folder import ERROR_FILE

# The statistics (numpy, pandas, scipy) are imported when a comparison is written, not here: Hydra
# imports this module for its callback in every run, the parent of a multirun included.

log = logging.getLogger(__name__)


def write_comparison(
    sweep_dir: Path, out_dir: Path | None = None, n_boot: int | None = None, seed: int = 0
) -> Path:
    """Write comparison.md, comparison.csv, comparison_effects.csv and comparison.png; return the .md.
    ``n_boot`` defaults to the reports' bootstrap replicates (:data:`stratdistill.stats.N_BOOT`)."""
    from stratdistill.artifacts import atomic_write_text
    from stratdistill.compare_render import comparison_markdown, figure
    from stratdistill.stats import N_BOOT
    from stratdistill.sweep_folder import load_sweep, point_label, swept_keys
    from stratdistill.sweep_stats import REPLICATE_KEYS, ablation_effects, across_replicates, comparison_table

    n_boot = N_BOOT if n_boot is None else n_boot

    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir is not None else sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    points = load_sweep(sweep_dir)
    if not points:
        raise FileNotFoundError(
            f"{sweep_dir}: no sweep jobs found (no */.hydra/overrides.yaml, no multirun.yaml)"
        )
    keys = swept_keys(points)
    table, splits = comparison_table(points, keys, n_boot)
    effects = ablation_effects(points, keys, n_boot, seed)
    replicated = [k for k in keys if k in REPLICATE_KEYS]
    seeds = across_replicates(points, keys, n_boot, seed) if replicated else None
    table.to_csv(out / "comparison.csv", index=False)
    effects.to_csv(out / "comparison_effects.csv", index=False)
    if seeds is not None:
        seeds.to_csv(out / "comparison_seeds.csv", index=False)
    labels = [
        f"#{p.num} {point_label(p, keys)}" if p.num is not None else point_label(p, keys) for p in points
    ]
    figure(table, splits, effects, labels, out / "comparison.png")
    path = out / "comparison.md"
    atomic_write_text(path, comparison_markdown(sweep_dir, points, keys, table, splits, effects, seeds))
    return path


class CompareCallback(Callback):
    """Hydra callback: write the sweep's comparison when a multirun ends, and keep each failed job's
    error (``error.txt`` in its folder). Hydra skips ``on_multirun_end`` when a job failed, so the
    comparison is then written when the process exits. It never fails the multirun."""

    def __init__(self, enabled: bool = True, n_boot: int | None = None) -> None:
        self.enabled = enabled
        self.n_boot = n_boot
        self._sweep_dir: Path | None = None
        self._written = False

    def _write(self) -> None:
        if not self.enabled or self._written or self._sweep_dir is None:
            return
        self._written = True
        try:
            path = write_comparison(self._sweep_dir, n_boot=self.n_boot)
            print(f"[compare] sweep comparison: {path}", flush=True)
        except Exception as exc:
            log.warning("stratdistill: could not write the sweep comparison for %s: %s", self._sweep_dir, exc)
            print(f"[compare] could not write the sweep comparison: {exc}", file=sys.stderr, flush=True)

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        until = config.get("until") if hasattr(config, "get") else None
        if until and self.enabled:  # the jobs stop before any student is scored: nothing to compare
            self.enabled = False
            hint = (
                f"; the teacher's spread: python -m stratdistill.teacher_spread {config.hydra.sweep.dir}"
                if until == "teacher"
                else ""
            )
            print(f"[compare] until={until}: no student is scored, so no sweep comparison{hint}", flush=True)
            return
        try:
            self._sweep_dir = Path(str(config.hydra.sweep.dir))
            # Modules the comparison needs are imported now: at interpreter exit, a first import of
            # concurrent.futures.thread (pulled in lazily by the plotting/statistics stack) fails with
            # "can't register atexit after shutdown".
            import concurrent.futures.thread  # noqa: F401

            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot
            import pandas  # noqa: F401
            import scipy.stats  # noqa: F401

            atexit.register(self._write)  # a failed job makes Hydra raise before on_multirun_end
        except Exception as exc:
            log.warning("stratdistill: sweep comparison disabled: %s", exc)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self._sweep_dir is None:
            try:
                self._sweep_dir = Path(str(config.hydra.sweep.dir))
            except Exception:
                return
        self._write()

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        try:
            from hydra.core.utils import JobStatus

            if job_return.status != JobStatus.FAILED:
                return
            exc = job_return._return_value
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            folder = Path(str(config.hydra.runtime.output_dir))
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ERROR_FILE).write_text(text)
        except Exception as exc:
            log.warning("stratdistill: could not record the job's error: %s", exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stratdistill.compare",
        description="Compare every point of a Hydra sweep folder: gap closed per point, ablation effects.",
    )
    parser.add_argument(
        "sweep_dir", type=Path, help="the multirun folder (with multirun.yaml and one folder per job)"
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the sweep folder)")
    parser.add_argument("--n-boot", type=int, default=None, help="bootstrap replicates (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        path = write_comparison(args.sweep_dir, args.out, args.n_boot, args.seed)
    except FileNotFoundError as exc:
        print(f"stratdistill.compare: error: {exc}", file=sys.stderr)
        return 2
    print(path.read_text())
    print(
        f"Wrote {path}, {path.with_suffix('.csv')}, {path.with_name('comparison_effects.csv')}, "
        f"{path.with_suffix('.png')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
