"""How much of the teacher's behaviour the student picked up, and whether the differences are real.

For a scenario s, with x(s) a model's share of C answers (or its mean donation in a public goods game):

    improvement(s) = (x_tuned(s) - x_base(s)) / (x_teacher(s) - x_base(s)) * 100

the share of the base-to-teacher gap that fine-tuning closed: 0 = unchanged, 100 = matches the
teacher, negative = moved away, above 100 = overshot. Signed and unbounded: a tiny gap makes it large.
It is undefined (NaN) when base and teacher agree exactly. The headline is the plain mean over the
scenarios of a split; the median is its robust companion.

    bridging(s) = (|x_base - x_teacher| - |x_tuned - x_teacher|) / |x_base - x_teacher|

counts overshooting as a miss (it is at most 1, and 1 only when the tuned student matches the teacher).

Shares are computed with each cell's own number of answers n (the paper divided every count by 300,
also for the three cells with fewer answers; give n = 300 to reproduce its 46.26 / 17.90).

Significance and uncertainty:

* ``two_proportion_ztest``: pooled two-sided z-test of two shares of C answers,
  z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p = (c1 + c2) / (n1 + n2).
* ``welch_ttest_from_counts``: Welch's unequal-variance t-test on two donation distributions.
* ``js_divergence``: Jensen-Shannon divergence (base 2, in [0, 1]) of two discrete distributions.
* ``bootstrap_ci``: percentile interval of a split's mean or median improvement, resampling the
  answers of every scenario (parametric binomial bootstrap).
* ``variance_decomposition``: how much of the variance in cooperation the game and the context
  explain (two-way ANOVA without replication), the predecessor paper's game-vs-context question.

Command line (:mod:`stratdistill.metrics_cli`): ``python -m stratdistill.metrics COUNTS.csv [--json]
[--n-boot N] [--seed S]``, one row per scenario with columns
``scenario,base_c,base_n,tuned_c,tuned_n,teacher_c,teacher_n`` (optional ``split`` groups the summaries;
optional ``context`` and ``game`` add the variance decomposition and the game-effect metrics).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

MODELS = ("base", "tuned", "teacher")
COUNT_COLUMNS = tuple(f"{m}_{k}" for m in MODELS for k in ("c", "n"))
REQUIRED_COLUMNS = ("scenario", *COUNT_COLUMNS)
ALL_GROUP = "all"


# --------------------------------------------------------------------------------------------------
# The metric


def improvement(base: float, tuned: float, teacher: float) -> float:
    """Share of the base-to-teacher gap closed by the tuned student, in percent (NaN if no gap)."""
    gap = teacher - base
    return math.nan if gap == 0 else (tuned - base) / gap * 100.0


def bridging(base: float, tuned: float, teacher: float) -> float:
    """(|base - teacher| - |tuned - teacher|) / |base - teacher|: at most 1, NaN if no gap."""
    gap = abs(base - teacher)
    return math.nan if gap == 0 else (gap - abs(tuned - teacher)) / gap


def split_summary(values: Iterable[float]) -> dict[str, float]:
    """Mean and median over the finite values, and how many there were."""
    arr = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return {"mean": math.nan, "median": math.nan, "n": 0}
    return {"mean": float(arr.mean()), "median": float(np.median(arr)), "n": int(arr.size)}


# --------------------------------------------------------------------------------------------------
# Tests of differences


def _check_count(c: float, n: float, what: str) -> None:
    if not (n > 0 and 0 <= c <= n):
        raise ValueError(f"{what}: need n > 0 and 0 <= c <= n, got c={c}, n={n}")


def two_proportion_ztest(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float]:
    """Pooled two-sided z-test of c1/n1 against c2/n2; returns (z, p).

    With the pooled share p = (c1 + c2) / (n1 + n2),

        z = (c1/n1 - c2/n2) / sqrt(p (1 - p) (1/n1 + 1/n2)),   p-value = 2 * (1 - Phi(|z|)).

    z is positive when the first share is the larger. Degenerate case: when the pooled share is 0 or 1
    (both samples all D or all C) the standard error is 0 but so is the difference, as both shares are
    equal; the test then returns z = 0 and p = 1 (no evidence of a difference) rather than 0/0.
    Raises ValueError unless n > 0 and 0 <= c <= n for both samples.
    """
    _check_count(c1, n1, "first sample")
    _check_count(c2, n2, "second sample")
    p1, p2 = c1 / n1, c2 / n2
    pooled = (c1 + c2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return 0.0, 1.0
    z = (p1 - p2) / se
    return float(z), float(2.0 * stats.norm.sf(abs(z)))


def _dist_stats(dist: Mapping[int, int], what: str) -> tuple[float, float, int]:
    if not dist:
        raise ValueError(f"{what}: empty distribution")
    values = np.array([float(k) for k in dist], dtype=float)
    counts = np.array([int(v) for v in dist.values()], dtype=float)
    if (counts < 0).any():
        raise ValueError(f"{what}: counts must be >= 0")
    n = int(counts.sum())
    if n < 2:
        raise ValueError(f"{what}: need at least 2 observations, got {n}")
    mean = float(np.average(values, weights=counts))
    var = float(np.sum(counts * (values - mean) ** 2) / (n - 1))  # sample variance (ddof=1)
    return mean, math.sqrt(var), n


def welch_ttest_from_counts(dist1: Mapping[int, int], dist2: Mapping[int, int]) -> tuple[float, float]:
    """Welch's two-sided t-test of two donation distributions given as {value: count}; returns (t, p).

    Each distribution is summarised by its mean, sample standard deviation (ddof = 1) and size, and
    passed to ``scipy.stats.ttest_ind_from_stats(..., equal_var=False)``:

        t = (m1 - m2) / sqrt(s1^2/n1 + s2^2/n2), Welch-Satterthwaite degrees of freedom.

    t is positive when the first mean is the larger. One constant sample is fine (the paper's teacher
    donated 7 every time). When both samples are constant the test is degenerate: equal means give
    (nan, nan), different means give (+/-inf, 0.0). Raises ValueError for fewer than 2 observations
    or negative counts.
    """
    m1, s1, n1 = _dist_stats(dist1, "first distribution")
    m2, s2, n2 = _dist_stats(dist2, "second distribution")
    if s1 == 0.0 and s2 == 0.0:
        if m1 == m2:
            return math.nan, math.nan
        return math.copysign(math.inf, m1 - m2), 0.0
    res = stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False)
    return float(res.statistic), float(res.pvalue)


def js_divergence(
    p: Sequence[float] | Mapping[Any, float], q: Sequence[float] | Mapping[Any, float]
) -> float:
    """Jensen-Shannon divergence of two discrete distributions, base 2, in [0, 1].

        JSD(P, Q) = 1/2 KL(P || M) + 1/2 KL(Q || M),  M = (P + Q) / 2,

    computed as the square of ``scipy.spatial.distance.jensenshannon(p, q, base=2)``. 0 for identical
    distributions, 1 for distributions with disjoint support. ``p`` and ``q`` are either sequences of
    the same length (probabilities or counts over the same outcomes) or mappings outcome -> weight
    (e.g. a donation distribution {value: count}); outcomes missing from one mapping have weight 0.
    Weights are normalised; they must be >= 0 with a positive sum.
    """
    if isinstance(p, Mapping) or isinstance(q, Mapping):
        if not (isinstance(p, Mapping) and isinstance(q, Mapping)):
            raise ValueError("js_divergence: give two mappings or two sequences, not one of each")
        keys = sorted(set(p) | set(q), key=repr)
        pa = np.array([float(p.get(k, 0.0)) for k in keys])
        qa = np.array([float(q.get(k, 0.0)) for k in keys])
    else:
        pa, qa = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
        if pa.shape != qa.shape or pa.ndim != 1:
            raise ValueError(
                f"js_divergence: need two 1-d sequences of equal length, got {pa.shape}, {qa.shape}"
            )
    for name, a in (("p", pa), ("q", qa)):
        if not np.all(np.isfinite(a)) or (a < 0).any() or a.sum() <= 0:
            raise ValueError(f"js_divergence: {name} must be finite weights >= 0 with a positive sum")
    d = float(distance.jensenshannon(pa, qa, base=2.0)) ** 2
    return float(min(max(d, 0.0), 1.0))


# --------------------------------------------------------------------------------------------------
# Uncertainty of a split's summary


def bootstrap_ci(
    per_scenario_rows: pd.DataFrame | Iterable[Mapping[str, Any]],
    stat: Literal["mean", "median"] = "mean",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile bootstrap interval for a split's mean or median improvement.

    ``per_scenario_rows``: one row per scenario of the split (a DataFrame or mappings) with the counts
    ``base_c, base_n, tuned_c, tuned_n, teacher_c, teacher_n``. The answers are resampled within each
    scenario (parametric bootstrap): in replicate b every model's count is redrawn as
    C* ~ Binomial(n, c/n) with that cell's own n, the shares C*/n give improvement*(s) for every
    scenario, and the split statistic (mean or median over scenarios) is recomputed. The interval is
    the (1 - level)/2 and (1 + level)/2 quantiles of the replicate statistics.

    A scenario whose resampled base and teacher shares coincide (gap 0) has no improvement: it is NaN
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
    counts = _check_count_columns(df.reset_index(drop=True))
    c = {m: counts[f"{m}_c"].to_numpy(dtype=np.int64) for m in MODELS}
    n = {m: counts[f"{m}_n"].to_numpy(dtype=np.int64) for m in MODELS}

    observed = _improvements(*(c[m] / n[m] for m in MODELS))
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
    imp = _replicate_improvements(c, n, n_boot, seed)
    defined = np.isfinite(imp).any(axis=1)
    imp = imp[defined]
    out["n_valid"] = int(imp.shape[0])
    if imp.shape[0] == 0:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reps = np.nanmean(imp, axis=1) if stat == "mean" else np.nanmedian(imp, axis=1)
    alpha = 1.0 - level
    low, high = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    out["low"], out["high"] = float(low), float(high)
    return out


def _replicate_improvements(
    c: dict[str, np.ndarray], n: dict[str, np.ndarray], n_boot: int, seed: int
) -> np.ndarray:
    """(n_boot, scenarios) improvements, every model's count redrawn as Binomial(n, c/n)."""
    rng = np.random.default_rng(seed)
    shares = [rng.binomial(n[m], c[m] / n[m], size=(n_boot, len(c[m]))) / n[m] for m in MODELS]
    return _improvements(*shares)


def bootstrap_scenario_ci(
    per_scenario_rows: pd.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Per-scenario percentile intervals for the improvement, by the same resampling as
    :func:`bootstrap_ci` (replicates with a zero gap are left out of that scenario's interval).

    Returns a frame with columns ``low`` and ``high``, aligned with the input rows.
    """
    counts = _check_count_columns(per_scenario_rows.reset_index(drop=True))
    c = {m: counts[f"{m}_c"].to_numpy(dtype=np.int64) for m in MODELS}
    n = {m: counts[f"{m}_n"].to_numpy(dtype=np.int64) for m in MODELS}
    imp = _replicate_improvements(c, n, n_boot, seed)
    alpha = 1.0 - level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(imp, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    return pd.DataFrame({"low": low, "high": high}, index=per_scenario_rows.index)


def _improvements(base: np.ndarray, tuned: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """Vectorised ``improvement``: NaN where the gap is 0."""
    gap = teacher - base
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap != 0, (tuned - base) / np.where(gap != 0, gap, 1.0) * 100.0, np.nan)


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


# --------------------------------------------------------------------------------------------------
# A table of counts


class CountsError(ValueError):
    """A table of counts that cannot be used; the message names the row and the column."""

    def __init__(
        self, problem: str, row: int | None = None, scenario: str | None = None, column: str | None = None
    ):
        self.problem, self.row, self.scenario, self.column = problem, row, scenario, column
        where = []
        if row is not None:
            where.append(f"data row {row}" + (f" (scenario {scenario!r})" if scenario else ""))
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__((", ".join(where) + ": " if where else "") + problem)


def _check_count_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The six count columns as int64, or CountsError naming the first bad row and column."""
    missing = [c for c in COUNT_COLUMNS if c not in df.columns]
    if missing:
        raise CountsError(
            f"missing column(s) {', '.join(missing)}; required columns: {', '.join(REQUIRED_COLUMNS)}"
        )
    scen = df["scenario"].astype(str).tolist() if "scenario" in df.columns else [None] * len(df)
    out = pd.DataFrame(index=df.index)
    for col in COUNT_COLUMNS:
        raw = df[col]
        num = pd.to_numeric(
            raw.astype(str).str.strip() if not pd.api.types.is_numeric_dtype(raw) else raw, errors="coerce"
        )
        for i, (r, v) in enumerate(zip(raw.tolist(), num.tolist(), strict=True)):
            if v is None or not math.isfinite(v) or v != int(v):
                allowed = (
                    "a whole number >= 1" if col.endswith("_n") else f"a whole number from 0 to {col[:-2]}_n"
                )
                raise CountsError(
                    f"{str(r)!r} is not a whole number; allowed: {allowed}", i + 1, scen[i], col
                )
        out[col] = num.astype(np.int64)
    for m in MODELS:
        for i, (c, n) in enumerate(zip(out[f"{m}_c"], out[f"{m}_n"], strict=True)):
            if n <= 0:
                raise CountsError(
                    f"{n} is not allowed; the number of answers must be >= 1", i + 1, scen[i], f"{m}_n"
                )
            if not 0 <= c <= n:
                raise CountsError(
                    f"{c} is not allowed; the C count must be from 0 to {m}_n ({n})", i + 1, scen[i], f"{m}_c"
                )
    return out


if __name__ == "__main__":  # python -m stratdistill.metrics: the command line lives in metrics_cli
    from stratdistill.metrics_cli import main

    raise SystemExit(main())
