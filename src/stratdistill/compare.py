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

Writes ``comparison.md``, ``comparison.csv`` (one row per point), ``comparison_effects.csv`` and
``comparison.png``. Runs by itself at the end of every multirun (:class:`CompareCallback`, registered
in ``conf/config.yaml``) and after the fact::

    python -m stratdistill.compare multirun/2026-01-01/12-00-00 [--out DIR] [--n-boot 2000]
"""

from __future__ import annotations

import argparse
import atexit
import logging
import math
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

log = logging.getLogger(__name__)

RESULTS_FILE = "results.csv"
ERROR_FILE = "error.txt"
N_BOOT = 2000
ERROR_TAIL = 2500  # characters of an error kept in the comparison


@dataclass
class Point:
    num: int | None
    overrides: list[str]
    status: str  # ok | failed | missing
    folder: Path | None = None
    results: Any = None  # the job's results.csv as a DataFrame
    error: str | None = None
    values: dict[str, str] = field(default_factory=dict)  # key -> value of every override


def _split_override(item: str) -> tuple[str, str]:
    key, _, value = item.partition("=")
    return key.lstrip("+~"), value  # +key=value (append) is the same key for the comparison


def planned_points(sweep_dir: Path) -> list[list[str]] | None:
    """Every job the sweep planned, as its list of overrides, from ``multirun.yaml`` (None when the
    file is missing or the sweeper is not Hydra's basic grid sweeper)."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return None
    try:
        from omegaconf import OmegaConf

        from stratdistill.preflight import sweep_points

        return sweep_points(OmegaConf.load(path))
    except Exception as exc:  # an unreadable plan: fall back to the jobs found on disk
        log.warning("could not read the planned points from %s: %s", path, exc)
        return None


def _job_folders(sweep_dir: Path) -> list[tuple[int | None, list[str], Path]]:
    import yaml

    jobs = []
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        overrides_file = folder / ".hydra" / "overrides.yaml"
        if not overrides_file.is_file():
            continue
        overrides = [str(o) for o in (yaml.safe_load(overrides_file.read_text()) or [])]
        num = None
        hydra_file = folder / ".hydra" / "hydra.yaml"
        try:
            num = int(yaml.safe_load(hydra_file.read_text())["hydra"]["job"]["num"])
        except Exception:
            match = re.match(r"(\d+)_", folder.name)
            num = int(match.group(1)) if match else None
        jobs.append((num, overrides, folder))
    return jobs


def _tail(text: str, limit: int = ERROR_TAIL) -> str:
    """The end of a log: from its last traceback if it has one, at most ``limit`` characters."""
    text = text.replace("\r", "\n")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback")]
    lines = lines[starts[-1] :] if starts else lines[-12:]
    out = "\n".join(lines)
    return out[-limit:]


def submitit_errors(sweep_dir: Path) -> dict[int, str]:
    """Job number -> the tail of its submitit stderr log (``<sweep>/.submitit/<array>_<task>/...``).

    Hydra's submitit launcher submits each batch as one array job whose task ids are the positions in
    the batch; arrays are numbered in submission order, so job number = task id + the sizes of the
    arrays before it."""
    folder = sweep_dir / ".submitit"
    if not folder.is_dir():
        return {}
    found: dict[tuple[int, int], Path] = {}
    for log_file in folder.rglob("*_log.err"):
        match = re.fullmatch(r"(\d+)_(\d+)_\d+_log\.err", log_file.name)
        if match:
            found[(int(match.group(1)), int(match.group(2)))] = log_file
    out: dict[int, str] = {}
    offset = 0
    for array in sorted({a for a, _ in found}):
        tasks = sorted(t for a, t in found if a == array)
        for task in tasks:
            text = found[(array, task)].read_text(errors="replace")
            if "Traceback" in text or "Error" in text or "CANCELLED" in text or "DUE TO" in text:
                out[offset + task] = _tail(text)
        offset += max(tasks) + 1
    return out


def load_sweep(sweep_dir: Path) -> list[Point]:
    """Every point of the sweep: finished (results), failed (with its error) or missing."""
    import pandas as pd

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such sweep folder")
    jobs = _job_folders(sweep_dir)
    cluster_errors = submitit_errors(sweep_dir)
    plan = planned_points(sweep_dir)
    by_overrides = {frozenset(o): (num, o, folder) for num, o, folder in jobs}
    entries: list[tuple[int | None, list[str], Path | None]] = []
    if plan is not None:
        for i, overrides in enumerate(plan):
            num, _, folder = by_overrides.pop(frozenset(overrides), (i, overrides, None))
            entries.append((num, overrides, folder))
        # a job whose overrides are spelled differently from the plan: match it by its job number
        by_num = {num: key for key, (num, _, _) in by_overrides.items() if num is not None}
        for i, (num, overrides, folder) in enumerate(entries):
            if folder is None and num in by_num:
                _, _, folder = by_overrides.pop(by_num.pop(num))
                entries[i] = (num, overrides, folder)  # the plan's spelling keeps the levels consistent
    entries += list(by_overrides.values())  # jobs outside the plan (e.g. a rerun with other overrides)
    points = []
    for num, overrides, folder in entries:
        values = dict(_split_override(o) for o in overrides)
        results_file = folder / RESULTS_FILE if folder is not None else None
        if results_file is not None and results_file.is_file():
            points.append(Point(num, overrides, "ok", folder, pd.read_csv(results_file), values=values))
            continue
        error = None
        if folder is not None and (folder / ERROR_FILE).is_file():
            error = _tail((folder / ERROR_FILE).read_text(errors="replace"))
        elif num is not None and num in cluster_errors:
            error = cluster_errors[num]
        elif folder is not None:
            logs = sorted(folder.glob("*.log"))
            error = "no results.csv: the job stopped before its report (or is still running)"
            if logs:
                error += f"; end of {logs[0].name}:\n" + _tail(logs[0].read_text(errors="replace"))
        status = "failed" if error is not None else "missing"
        points.append(Point(num, overrides, status, folder, None, error, values))
    return points


def swept_keys(points: list[Point]) -> list[str]:
    """The override keys whose value differs between points, in the order they first appear."""
    keys: list[str] = []
    for p in points:
        for k in p.values:
            if k not in keys:
                keys.append(k)
    return [k for k in keys if len({p.values.get(k) for p in points}) > 1]


def point_label(point: Point, keys: list[str]) -> str:
    return (
        ", ".join(f"{k}={point.values.get(k, '-')}" for k in keys) or " ".join(point.overrides) or "(default)"
    )


def split_estimates(results: Any, n_boot: int = N_BOOT) -> dict[str, dict[str, float]]:
    """Per split: mean gap closed, its 95% interval (as in the report), the number of scenarios, the
    same metric for a constant and a uniform shift, and the distance to the teacher (MAE)."""
    from stratdistill.metrics import bootstrap_ci, split_summary
    from stratdistill.report import _countable, count_rows
    from stratdistill.transfer import transfer_table

    table = transfer_table(results).set_index(["split", "predictor"])
    out = {}
    for split, df in results.groupby("split", sort=False):
        s = split_summary(df["improvement"])
        two = _countable(df)
        low = high = math.nan
        if not two.empty:
            ci = bootstrap_ci(count_rows(two.reset_index(drop=True)), stat="mean", n_boot=n_boot)
            low, high = ci["low"], ci["high"]

        def baseline(name: str, metric: str = "gap_mean", split: Any = split) -> float:
            key = (split, name)
            return float(table.at[key, metric]) if key in table.index else math.nan

        out[str(split)] = {
            "mean": s["mean"],
            "low": low,
            "high": high,
            "n": s["n"],
            "constant": baseline("constant"),
            "shift": baseline("shift"),
            "mae": baseline("tuned", "mae"),
        }
    return out


def ablation_effects(points: list[Point], keys: list[str], n_boot: int = N_BOOT, seed: int = 0) -> Any:
    """For each swept key (not a replicate key such as ``seed``) and each of its values after the first:
    the difference (value minus first value) per split in mean gap closed, in MAE to the teacher and in
    bridging, averaged over the other swept keys.

    Points are paired when they agree on every other swept key (seed included); within a pair the
    difference is taken scenario by scenario. The interval resamples the pairs and the scenarios (a
    two-stage paired bootstrap, :func:`stratdistill.sweep_stats.two_stage_ci`), so with several seeds it
    includes the run-to-run variance; with one pair it resamples scenarios only."""
    import pandas as pd

    from stratdistill.sweep_stats import REPLICATE_KEYS, SCENARIO_METRICS, aligned, per_scenario, two_stage_ci

    ok = [p for p in points if p.status == "ok"]
    rows = []
    for key in [k for k in keys if k not in REPLICATE_KEYS]:
        levels = list(dict.fromkeys(p.values.get(key) for p in points))
        others = [k for k in keys if k != key]
        for level in levels[1:]:
            ref = levels[0]
            base = {tuple(p.values.get(k) for k in others): p for p in ok if p.values.get(key) == ref}
            alt = {tuple(p.values.get(k) for k in others): p for p in ok if p.values.get(key) == level}
            pairs = [(base[s], alt[s]) for s in base if s in alt]
            splits = list(dict.fromkeys(sp for a, b in pairs for sp in a.results["split"]))
            for split in splits or ["-"]:
                for metric in SCENARIO_METRICS:
                    diffs = [
                        per_scenario(b.results, split, metric) - per_scenario(a.results, split, metric)
                        for a, b in pairs
                    ]
                    matrix = aligned(diffs)
                    effect, low, high = two_stage_ci(matrix, n_boot, seed)
                    rows.append(
                        {
                            "key": key,
                            "level": level,
                            "reference": ref,
                            "split": split,
                            "metric": metric,
                            "effect": effect,
                            "low": low,
                            "high": high,
                            "pairs": len(pairs),
                            "scenarios": int(matrix.shape[1]) if matrix.size else 0,
                        }
                    )
    return pd.DataFrame(
        rows,
        columns=[
            "key",
            "level",
            "reference",
            "split",
            "metric",
            "effect",
            "low",
            "high",
            "pairs",
            "scenarios",
        ],
    )


def comparison_table(points: list[Point], keys: list[str], n_boot: int = N_BOOT) -> tuple[Any, list[str]]:
    """One row per point: its number, swept values, status, and per split mean / low / high / n."""
    import pandas as pd

    rows, splits = [], []
    for p in points:
        row: dict[str, Any] = {"point": p.num, **{k: p.values.get(k) for k in keys}, "status": p.status}
        if p.results is not None:
            for split, e in split_estimates(p.results, n_boot).items():
                if split not in splits:
                    splits.append(split)
                row |= {f"{split} mean": e["mean"], f"{split} low": e["low"], f"{split} high": e["high"]}
                row |= {
                    f"{split} n": e["n"],
                    f"{split} constant": e["constant"],
                    f"{split} shift": e["shift"],
                }
                row[f"{split} mae"] = e["mae"]
        row["overrides"] = " ".join(p.overrides)
        row["folder"] = p.folder.name if p.folder is not None else None
        row["error"] = (p.error or "").splitlines()[-1] if p.error else None
        rows.append(row)
    table = pd.DataFrame(rows)
    for split in splits:
        for col in ("mean", "low", "high", "n", "constant", "shift", "mae"):
            if f"{split} {col}" not in table:
                table[f"{split} {col}"] = math.nan
    return table, splits


def _fmt(x: Any, digits: int = 1) -> str:
    from stratdistill.formatting import fmt

    return fmt(x, digits)


def _interval(mean: Any, low: Any, high: Any) -> str:
    if mean is None or not math.isfinite(mean):
        return "–"
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:.1f}"
    return f"{mean:.1f} [{low:.1f}, {high:.1f}]"


def figure(table: Any, splits: list[str], effects: Any, labels: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    effects = effects[effects["metric"] == "gap"] if "metric" in effects else effects
    has_effects = not effects.empty and effects["effect"].notna().any()
    ncols = 2 if has_effects else 1
    height = max(3.5, 0.45 * max(len(table), len(effects) if has_effects else 0) + 1.8)
    fig, axes = plt.subplots(1, ncols, figsize=(7 * ncols, height), constrained_layout=True, squeeze=False)
    ax = axes[0][0]
    y = np.arange(len(table))
    width = 0.8 / max(1, len(splits))
    for i, split in enumerate(splits):
        mean = table[f"{split} mean"].to_numpy(float)
        low, high = table[f"{split} low"].to_numpy(float), table[f"{split} high"].to_numpy(float)
        err = np.vstack([np.clip(mean - low, 0, None), np.clip(high - mean, 0, None)])
        err = np.nan_to_num(err)
        pos = y - 0.4 + width * (i + 0.5)
        ax.errorbar(mean, pos, xerr=err, fmt="o", ms=4, capsize=2, label=split)
    for yi, status in zip(y, table["status"], strict=True):
        if status != "ok":
            ax.text(0, yi, f"  {status}", color="#c00", va="center", fontsize=9, fontweight="bold")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.8)
    ax.axvline(100, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("mean gap closed (%), 95% CI")
    ax.set_title("Gap closed per sweep point")
    if splits:
        ax.legend(fontsize=8, loc="best")
    if has_effects:
        ax2 = axes[0][1]
        e = effects[effects["effect"].notna()].reset_index(drop=True)
        names = [f"{r.key}: {r.level} vs {r.reference} ({r.split})" for r in e.itertuples()]
        err = np.nan_to_num(
            np.vstack([(e["effect"] - e["low"]).clip(lower=0), (e["high"] - e["effect"]).clip(lower=0)])
        )
        ax2.errorbar(e["effect"], np.arange(len(e)), xerr=err, fmt="s", ms=4, capsize=2, color="k")
        ax2.set_yticks(np.arange(len(e)), names, fontsize=8)
        ax2.invert_yaxis()
        ax2.axvline(0, color="grey", lw=0.8)
        ax2.set_xlabel("difference in mean gap closed (points), 95% paired CI")
        ax2.set_title("Ablation effects")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_comparison(
    sweep_dir: Path, out_dir: Path | None = None, n_boot: int = N_BOOT, seed: int = 0
) -> Path:
    """Write comparison.md, comparison.csv, comparison_effects.csv and comparison.png; return the .md."""
    from stratdistill.artifacts import atomic_write_text

    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir is not None else sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    points = load_sweep(sweep_dir)
    if not points:
        raise FileNotFoundError(
            f"{sweep_dir}: no sweep jobs found (no */.hydra/overrides.yaml, no multirun.yaml)"
        )
    from stratdistill.sweep_stats import METRIC_NAMES, REPLICATE_KEYS, across_replicates

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

    counts = {s: sum(p.status == s for p in points) for s in ("ok", "failed", "missing")}
    lines = [
        f"# Sweep comparison: `{sweep_dir}`",
        "",
        f"{len(points)} points: {counts['ok']} finished, {counts['failed']} failed, "
        f"{counts['missing']} missing." + (f" Swept: {', '.join(f'`{k}`' for k in keys)}." if keys else ""),
        "",
        "## Gap closed per sweep point",
        "",
        "Mean gap closed (%) per split with its 95% bootstrap interval, computed as in each run's report "
        "(resampling the teacher's answers, and the students' where they were sampled), then in brackets "
        "what two predictors that learned nothing score on the same metric: a constant at the point's "
        "tuned mean / a uniform shift of its base (`comparison.csv` also has each point's MAE to the "
        "teacher).",
        "",
    ]
    header = ["#", *keys, "status", *splits]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p, row in zip(points, table.to_dict("records"), strict=True):
        cells = [
            _fmt(p.num),
            *[_fmt(p.values.get(k)) for k in keys],
            p.status if p.status == "ok" else f"**{p.status}**",
        ]
        cells += [
            f"{_interval(row[f'{s} mean'], row[f'{s} low'], row[f'{s} high'])} "
            f"(const {_fmt(row[f'{s} constant'])} / shift {_fmt(row[f'{s} shift'])})"
            for s in splits
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![comparison](comparison.png)", ""]
    if seeds is not None and not seeds.empty:
        config_keys = [k for k in keys if k not in REPLICATE_KEYS]
        lines += [
            "## Across seeds",
            "",
            f"Each configuration over its {', '.join(f'`{k}`' for k in replicated)} values: the mean over "
            "runs and scenarios with a 95% two-stage bootstrap interval (runs, then scenarios, resampled), "
            "so the interval includes the run-to-run variance; *run sd*: the spread of the runs' split "
            "means. Also in `comparison_seeds.csv`.",
            "",
            "| " + " | ".join([*config_keys, "split", "metric", "mean [95% CI]", "runs", "run sd"]) + " |",
            "|" + "---|" * (len(config_keys) + 5),
        ]
        for r in seeds.to_dict("records"):
            digits = 1 if r["metric"] == "gap" else 3
            ci = f"[{_fmt(r['low'], digits)}, {_fmt(r['high'], digits)}]"
            lines.append(
                "| "
                + " | ".join(
                    [
                        *[_fmt(r[k]) for k in config_keys],
                        str(r["split"]),
                        METRIC_NAMES[r["metric"]],
                        f"{_fmt(r['mean'], digits)} {ci}",
                        str(r["replicates"]),
                        _fmt(r["run_sd"], digits),
                    ]
                )
                + " |"
            )
        lines.append("")
    elif "seed" not in keys:
        lines += [
            "One seed per configuration: the intervals below do not include the run-to-run variance (add "
            "`seed=0,1,2` to the sweep, or `sweep=seeds`).",
            "",
        ]
    if not effects.empty:
        lines += [
            "## Ablation effects",
            "",
            "Difference between a value and the key's first value, taken scenario by scenario between points "
            "that agree on every other swept key (seed included), averaged over those pairs: in mean gap "
            "closed (percentage points; the paper's metric, which rewards overshooting), in MAE to the "
            "teacher (negative = closer) and in mean bridging (positive = closer, overshooting counts as a "
            "miss). 95% two-stage paired bootstrap interval resampling the pairs and the scenarios.",
            "",
            "| key | comparison | split | metric | difference | 95% CI | pairs | scenarios |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in effects.itertuples():
            digits = 1 if r.metric == "gap" else 3
            ci = f"[{_fmt(r.low, digits)}, {_fmt(r.high, digits)}]" if math.isfinite(r.low) else "n/a"
            lines.append(
                f"| `{r.key}` | {r.level} vs {r.reference} | {r.split} | {METRIC_NAMES[r.metric]} | "
                f"{_fmt(r.effect, digits)} | {ci} | {r.pairs} | {r.scenarios} |"
            )
        lines.append("")
    bad = [p for p in points if p.status != "ok"]
    if bad:
        lines += ["## Failed and missing points", ""]
        for p in bad:
            where = f" (`{p.folder.name}`)" if p.folder is not None else ""
            lines += [f"- **#{_fmt(p.num)} {point_label(p, keys)}**{where}: {p.status}"]
            if p.error:
                lines += ["", "  ```", *[f"  {ln}" for ln in p.error.splitlines()], "  ```"]
        lines.append("")
    path = out / "comparison.md"
    atomic_write_text(path, "\n".join(lines))
    return path


class CompareCallback(Callback):
    """Hydra callback: write the sweep's comparison when a multirun ends, and keep each failed job's
    error (``error.txt`` in its folder). Hydra skips ``on_multirun_end`` when a job failed, so the
    comparison is then written when the process exits. It never fails the multirun."""

    def __init__(self, enabled: bool = True, n_boot: int = N_BOOT) -> None:
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
    parser.add_argument("--n-boot", type=int, default=N_BOOT, help="bootstrap replicates (default 2000)")
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
