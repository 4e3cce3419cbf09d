"""Statistics over sweep points: each point's estimates, ablation effects, and intervals that include
the variance between training runs. (Reading the sweep folder is :mod:`stratdistill.sweep_folder`;
writing the comparison is :mod:`stratdistill.compare`.)

Per point and split (:func:`split_estimates`): the mean gap closed with the same 95% bootstrap interval
as the run's own report (recomputed from its ``results.csv``), next to what a constant and a uniform
shift score on the same metric, and the distance to the teacher (MAE).

A single run's interval resamples the teacher's answers. Across a sweep, two more sources move a figure:
the training run itself (``seed``: LoRA initialisation, data order, the teacher's draw and the answers
picked for training) and the choice of scenarios. Points that differ only in a *replicate* key (``seed``)
are repeats of one configuration; their per-scenario values form a matrix replicates x scenarios, and
the interval of a summary resamples both dimensions (a two-stage bootstrap: replicates with
replacement, then scenarios with replacement, the same scenarios for every replicate so that pairs stay
paired). With one replicate it reduces to resampling scenarios, and says so.

Per-scenario metrics (each a column derived from a run's ``results.csv``):

* ``gap``: the paper's gap closed (%), the ``gap_closed`` column, NaN where undefined;
* ``mae``: |tuned − teacher| (lower is better);
* ``bridging``: (|base − teacher| − |tuned − teacher|) / |base − teacher|.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stratdistill.stats import N_BOOT

if TYPE_CHECKING:
    from stratdistill.sweep_folder import Point

REPLICATE_KEYS = ("seed",)
SCENARIO_METRICS = ("gap", "mae", "bridging")
METRIC_NAMES = {"gap": "mean gap closed (%)", "mae": "MAE to teacher", "bridging": "mean bridging"}


def per_scenario(results: pd.DataFrame, split: str, metric: str) -> pd.Series:
    """One value per scenario of ``split`` (indexed by scenario) for a per-scenario metric."""
    df = results[results["split"] == split].set_index("scenario")
    if metric == "gap":
        return df["gap_closed"].astype(float)
    if metric == "mae":
        return (df["tuned"] - df["teacher"]).abs().astype(float)
    if metric == "bridging":
        return df["bridging"].astype(float)
    raise ValueError(f"metric must be one of {SCENARIO_METRICS}, got {metric!r}")


def two_stage_ci(
    matrix: np.ndarray, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high) of the mean of a replicates x scenarios matrix (NaN = undefined, left out),
    resampling replicates and scenarios with replacement. NaN interval when nothing can be resampled."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or not np.isfinite(m).any():
        return math.nan, math.nan, math.nan
    estimate = float(np.nanmean(m))
    reps, cols = m.shape
    if reps * cols < 2:
        return estimate, math.nan, math.nan
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for b in range(n_boot):
            rows = rng.integers(0, reps, size=reps)
            picked = rng.integers(0, cols, size=cols)
            stats[b] = np.nanmean(m[np.ix_(rows, picked)])
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return estimate, math.nan, math.nan
    alpha = 1.0 - level
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return estimate, float(low), float(high)


def aligned(series: list[pd.Series]) -> np.ndarray:
    """Stack per-scenario series of several replicates on their common scenarios (replicates x scenarios)."""
    if not series:
        return np.empty((0, 0))
    common = series[0].index
    for s in series[1:]:
        common = common.intersection(s.index)
    return np.vstack([s.loc[common].to_numpy(float) for s in series])


def across_replicates(
    points: list[Point], keys: list[str], n_boot: int = N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """One row per configuration (points agreeing on every swept key except the replicate keys), per
    split and metric: the mean over replicates and scenarios, its two-stage interval, the number of
    replicates and the sd of the replicates' split means (the run-to-run spread)."""
    config_keys = [k for k in keys if k not in REPLICATE_KEYS]
    groups: dict[tuple, list[Point]] = {}
    for p in points:
        if p.status == "ok":
            groups.setdefault(tuple(p.values.get(k) for k in config_keys), []).append(p)
    rows = []
    for config, members in groups.items():
        splits = list(dict.fromkeys(s for p in members for s in p.results["split"]))
        for split in splits:
            for metric in SCENARIO_METRICS:
                m = aligned([per_scenario(p.results, split, metric) for p in members])
                mean, low, high = two_stage_ci(m, n_boot, seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    run_means = np.nanmean(m, axis=1) if m.size else np.array([])
                rows.append(
                    {
                        **dict(zip(config_keys, config, strict=True)),
                        "split": split,
                        "metric": metric,
                        "mean": mean,
                        "low": low,
                        "high": high,
                        "replicates": len(members),
                        "run_sd": float(np.std(run_means, ddof=1)) if len(run_means) > 1 else math.nan,
                        "scenarios": int(m.shape[1]) if m.size else 0,
                    }
                )
    return pd.DataFrame(rows)


def split_estimates(results: pd.DataFrame, n_boot: int = N_BOOT) -> dict[str, dict[str, float]]:
    """Per split: mean gap closed, its 95% interval (as in the report), the number of scenarios, the
    same metric for a constant and a uniform shift, and the distance to the teacher (MAE)."""
    from stratdistill.metrics import split_summary
    from stratdistill.report import split_ci
    from stratdistill.transfer import transfer_table

    table = transfer_table(results).set_index(["split", "predictor"])
    out = {}
    for split, df in results.groupby("split", sort=False):
        s = split_summary(df["gap_closed"])
        low, high = split_ci(df, "mean", n_boot) or (math.nan, math.nan)

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


def ablation_effects(
    points: list[Point], keys: list[str], n_boot: int = N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """For each swept key (not a replicate key such as ``seed``) and each of its values after the first:
    the difference (value minus first value) per split in mean gap closed, in MAE to the teacher and in
    bridging, averaged over the other swept keys.

    Points are paired when they agree on every other swept key (seed included); within a pair the
    difference is taken scenario by scenario. The interval resamples the pairs and the scenarios (a
    two-stage paired bootstrap, :func:`two_stage_ci`), so with several seeds it
    includes the run-to-run variance; with one pair it resamples scenarios only."""
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


def comparison_table(
    points: list[Point], keys: list[str], n_boot: int = N_BOOT
) -> tuple[pd.DataFrame, list[str]]:
    """One row per point: its number, swept values, status, and per split mean / low / high / n."""
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
