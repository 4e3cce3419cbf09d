"""How sure a split's figures are, and what drives cooperation: resampling and the ANOVA.

Kept apart from :mod:`stratdistill.metrics` (the per-scenario metric and the tests of one difference)
because these work on a whole split at once and are the slow part:

* ``bootstrap_ci``: percentile interval of a split's mean or median gap closed, resampling the answers
  of every scenario (parametric binomial bootstrap); ``bootstrap_scenario_ci`` the same per scenario.
* ``variance_decomposition``: how much of the variance in cooperation the game and the context explain
  (two-way ANOVA without replication), the predecessor paper's game-vs-context question.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from stratdistill.metrics import MODELS, check_count_columns, gap_closed_array, split_summary

N_BOOT = 2000  # bootstrap replicates of every interval the report and the sweep comparison show


# --------------------------------------------------------------------------------------------------
# Uncertainty of a split's summary


def bootstrap_ci(
    per_scenario_rows: pd.DataFrame | Iterable[Mapping[str, Any]],
    stat: Literal["mean", "median"] = "mean",
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile bootstrap interval for a split's mean or median gap closed.

    ``per_scenario_rows``: one row per scenario of the split (a DataFrame or mappings) with the counts
    ``base_c, base_n, tuned_c, tuned_n, teacher_c, teacher_n``. The answers are resampled within each
    scenario (parametric bootstrap): in replicate b every model's count is redrawn as
    C* ~ Binomial(n, c/n) with that cell's own n, the shares C*/n give gap_closed*(s) for every
    scenario, and the split statistic (mean or median over scenarios) is recomputed. The interval is
    the (1 - level)/2 and (1 + level)/2 quantiles of the replicate statistics.

    A scenario whose resampled base and teacher shares coincide (gap 0) has no gap closed: it is NaN
    and left out of that replicate's statistic; a replicate where every scenario is NaN is dropped
    (``n_valid`` counts the replicates used). Cells with c = 0 or c = n never vary under this scheme.
    The same seed gives the same interval.

    Returns {"stat", "estimate" (the statistic of the observed counts), "low", "high", "level",
    "n_boot", "n_valid", "seed"}.
    """
    if stat not in ("mean", "median"):
        raise ValueError(f"stat must be 'mean' or 'median', got {stat!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    df = (
        per_scenario_rows
        if isinstance(per_scenario_rows, pd.DataFrame)
        else pd.DataFrame(list(per_scenario_rows))
    )
    counts = check_count_columns(df.reset_index(drop=True))
    c = {m: counts[f"{m}_c"].to_numpy(dtype=np.int64) for m in MODELS}
    n = {m: counts[f"{m}_n"].to_numpy(dtype=np.int64) for m in MODELS}

    observed = gap_closed_array(*(c[m] / n[m] for m in MODELS))
    estimate = split_summary(observed.tolist())[stat]
    out: dict[str, Any] = {
        "stat": stat,
        "estimate": estimate,
        "low": math.nan,
        "high": math.nan,
        "level": level,
        "n_boot": n_boot,
        "n_valid": 0,
        "seed": seed,
    }
    if len(counts) == 0:
        return out
    gaps = _replicate_gaps(c, n, n_boot, seed)
    defined = np.isfinite(gaps).any(axis=1)
    gaps = gaps[defined]
    out["n_valid"] = int(gaps.shape[0])
    if gaps.shape[0] == 0:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reps = np.nanmean(gaps, axis=1) if stat == "mean" else np.nanmedian(gaps, axis=1)
    alpha = 1.0 - level
    low, high = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    out["low"], out["high"] = float(low), float(high)
    return out


def _replicate_gaps(c: dict[str, np.ndarray], n: dict[str, np.ndarray], n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, scenarios) gaps closed, every model's count redrawn as Binomial(n, c/n)."""
    rng = np.random.default_rng(seed)
    shares = [rng.binomial(n[m], c[m] / n[m], size=(n_boot, len(c[m]))) / n[m] for m in MODELS]
    return gap_closed_array(*shares)


def bootstrap_scenario_ci(
    per_scenario_rows: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Per-scenario percentile intervals for the gap closed, by the same resampling as
    :func:`bootstrap_ci` (replicates with a zero gap are left out of that scenario's interval).

    Returns a frame with columns ``low`` and ``high``, aligned with the input rows.
    """
    counts = check_count_columns(per_scenario_rows.reset_index(drop=True))
    c = {m: counts[f"{m}_c"].to_numpy(dtype=np.int64) for m in MODELS}
    n = {m: counts[f"{m}_n"].to_numpy(dtype=np.int64) for m in MODELS}
    gaps = _replicate_gaps(c, n, n_boot, seed)
    alpha = 1.0 - level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(gaps, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    return pd.DataFrame({"low": low, "high": high}, index=per_scenario_rows.index)


# --------------------------------------------------------------------------------------------------
# Game vs context


def variance_decomposition(
    df: pd.DataFrame, value: str = "p_c", context: str = "context", game: str = "game"
) -> dict[str, float]:
    """Share of the variance in ``value`` explained by the game and by the context.

    Two-way ANOVA without replication on a full context x game grid (exactly one value per cell;
    r contexts, k games, cell values y_ij, row means y_i., column means y_.j, grand mean y_..):

        SS_total    = sum_ij (y_ij - y_..)^2
        SS_context  = k * sum_i (y_i. - y_..)^2
        SS_game     = r * sum_j (y_.j - y_..)^2
        SS_residual = sum_ij (y_ij - y_i. - y_.j + y_..)^2   (interaction, as there is no replication)

    and the shares SS_x / SS_total (NaN when SS_total is 0). Also the F tests of each factor against
    the residual mean square, F = (SS_x / df_x) / (SS_residual / ((r - 1)(k - 1))), with p-values from
    ``scipy.stats.f``; NaN when a factor or the residual has no degrees of freedom, F = inf (p = 0)
    when the residual is exactly 0 but the factor is not.

    Raises ValueError if a column is missing, a value is not a number, a cell is repeated or missing.
    """
    for col in (context, game, value):
        if col not in df.columns:
            raise ValueError(f"variance_decomposition: missing column {col!r}")
    data = df[[context, game, value]].copy()
    data[value] = pd.to_numeric(data[value], errors="coerce")
    if data[value].isna().any() or not np.isfinite(data[value].to_numpy(dtype=float)).all():
        raise ValueError(f"variance_decomposition: column {value!r} must hold finite numbers")
    dup = data.duplicated([context, game])
    if dup.any():
        first = data[dup].iloc[0]
        raise ValueError(
            f"variance_decomposition: cell ({first[context]}, {first[game]}) appears more than once; "
            "need one value per context x game cell"
        )
    grid = data.pivot(index=context, columns=game, values=value)
    if grid.isna().to_numpy().any():
        ctx, gm = next((i, j) for i in grid.index for j in grid.columns if pd.isna(grid.loc[i, j]))
        raise ValueError(f"variance_decomposition: cell ({ctx}, {gm}) is missing; need a full grid")
    y = grid.to_numpy(dtype=float)
    r, k = y.shape
    grand = y.mean()
    row = y.mean(axis=1, keepdims=True)
    col = y.mean(axis=0, keepdims=True)
    ss_total = float(((y - grand) ** 2).sum())
    ss_context = float(k * ((row - grand) ** 2).sum())
    ss_game = float(r * ((col - grand) ** 2).sum())
    ss_resid = float(((y - row - col + grand) ** 2).sum())
    df_ctx, df_game, df_resid = r - 1, k - 1, (r - 1) * (k - 1)

    def share(ss: float) -> float:
        return ss / ss_total if ss_total > 0 else math.nan

    def ftest(ss: float, dfx: int) -> tuple[float, float]:
        if dfx == 0 or df_resid == 0:
            return math.nan, math.nan
        if ss_resid <= 1e-12 * max(ss_total, 1e-300):
            return (math.inf, 0.0) if ss > 0 else (math.nan, math.nan)
        f = (ss / dfx) / (ss_resid / df_resid)
        return float(f), float(stats.f.sf(f, dfx, df_resid))

    f_ctx, p_ctx = ftest(ss_context, df_ctx)
    f_game, p_game = ftest(ss_game, df_game)
    return {
        "n_contexts": r,
        "n_games": k,
        "ss_total": ss_total,
        "ss_context": ss_context,
        "ss_game": ss_game,
        "ss_residual": ss_resid,
        "share_context": share(ss_context),
        "share_game": share(ss_game),
        "share_residual": share(ss_resid),
        "f_context": f_ctx,
        "p_context": p_ctx,
        "f_game": f_game,
        "p_game": p_game,
    }
