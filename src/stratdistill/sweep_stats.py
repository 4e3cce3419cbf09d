"""Statistics over sweep points: intervals that include the variance between training runs.

A single run's interval resamples the teacher's answers. Across a sweep, two more sources move a figure:
the training run itself (``seed``: LoRA initialisation, data order, the teacher's draw and the answers
picked for training) and the choice of scenarios. Points that differ only in a *replicate* key (``seed``)
are repeats of one configuration; their per-scenario values form a matrix replicates x scenarios, and
the interval of a summary resamples both dimensions (a two-stage bootstrap: replicates with
replacement, then scenarios with replacement, the same scenarios for every replicate so that pairs stay
paired). With one replicate it reduces to resampling scenarios, and says so.

Per-scenario metrics (each a column derived from a run's ``results.csv``):

* ``gap``: the paper's gap closed (%), NaN where undefined;
* ``mae``: |tuned − teacher| (lower is better);
* ``bridging``: (|base − teacher| − |tuned − teacher|) / |base − teacher|.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

REPLICATE_KEYS = ("seed",)
SCENARIO_METRICS = ("gap", "mae", "bridging")
METRIC_NAMES = {"gap": "mean gap closed (%)", "mae": "MAE to teacher", "bridging": "mean bridging"}


def per_scenario(results: pd.DataFrame, split: str, metric: str) -> pd.Series:
    """One value per scenario of ``split`` (indexed by scenario) for a per-scenario metric."""
    df = results[results["split"] == split].set_index("scenario")
    if metric == "gap":
        return df["improvement"].astype(float)
    if metric == "mae":
        return (df["tuned"] - df["teacher"]).abs().astype(float)
    if metric == "bridging":
        return df["bridging"].astype(float)
    raise ValueError(f"metric must be one of {SCENARIO_METRICS}, got {metric!r}")


def two_stage_ci(
    matrix: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
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


def across_replicates(points: list[Any], keys: list[str], n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per configuration (points agreeing on every swept key except the replicate keys), per
    split and metric: the mean over replicates and scenarios, its two-stage interval, the number of
    replicates and the sd of the replicates' split means (the run-to-run spread)."""
    config_keys = [k for k in keys if k not in REPLICATE_KEYS]
    groups: dict[tuple, list[Any]] = {}
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
