"""How stable is the teacher signal? An analysis of a teacher sweep folder, teacher only.

The sweep is an ordinary Hydra multirun of the pipeline's teacher stages over temperature and seed::

    python launch.py -m sweep=teacher_temperature          # until=teacher, temperature x seed
    python launch.py -m until=teacher temperature.teacher=0.5,0.8 seed=0,1,2 [overrides ...]
    python -m stratdistill.teacher_spread multirun/<date>/<time> [--out DIR]

Hydra's basic launcher runs the points in one process with one loaded teacher (the temperature is per
call); each point's answers are a content-addressed artifact, shared with any later run that has the
same teacher settings. This package reads the folder (:mod:`.sweep`), computes per scenario and
temperature the spread of the teacher's P(C) across seeds against what sampling alone explains
(:mod:`.stats`), and writes ``teacher_spread.md`` (a plain-language summary on top),
``teacher_spread.csv`` (one row per scenario x temperature) and ``teacher_spread.png`` (:mod:`.report`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from stratdistill.teacher_spread.report import (
    CSV_FILE,
    MD_FILE,
    PNG_FILE,
    summary_lines,
    write_figure,
    write_markdown,
)
from stratdistill.teacher_spread.stats import by_temperature, per_seed_table, summarise
from stratdistill.teacher_spread.sweep import Point, Sweep, read_sweep


@dataclass
class SpreadResult:
    table: pd.DataFrame  # one row per scenario x temperature
    by_temperature: pd.DataFrame  # one row per temperature
    points: list[Point]
    summary: list[str]
    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0


def analyse(sweep_dir: str | Path, out: str | Path | None = None) -> SpreadResult:
    """Read the sweep folder's teacher data and write the spread report (default: into the folder)."""
    started = time.time()
    sweep: Sweep = read_sweep(sweep_dir)
    points = sweep.points
    table = summarise(per_seed_table(points))
    per_t = by_temperature(table)
    cfg0 = points[0].cfg
    manifest = points[0].artifact.manifest
    desc = manifest.get("teacher_description", cfg0.teacher.name)
    # datasets generated before the manifest recorded the flag: the stand-in's description says it
    stand_in = bool(manifest.get("teacher_is_stand_in", str(desc).startswith("offline STAND-IN")))
    meta = {"teacher": f"`{cfg0.teacher.name}` — {desc}", "stand_in": stand_in, "sweep": str(sweep.folder)}
    label = f"`{cfg0.teacher.name}`" + (" (offline stand-in)" if stand_in else "")
    summary = summary_lines(table, per_t, label)
    if sweep.missing:
        summary.append(
            f"{len(sweep.missing)} job(s) of the sweep have no teacher data and are left out "
            "(listed at the end)."
        )
    out_dir = Path(out) if out is not None else sweep.folder
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"md": out_dir / MD_FILE, "csv": out_dir / CSV_FILE, "png": out_dir / PNG_FILE}
    table.to_csv(files["csv"], index=False, float_format="%.6g")
    write_figure(table, files["png"])
    write_markdown(files["md"], summary, table, per_t, points, meta, sweep.missing)
    return SpreadResult(table, per_t, points, summary, out_dir, files, sweep.missing, time.time() - started)


__all__ = ["Point", "SpreadResult", "Sweep", "analyse", "read_sweep"]
