"""How much of the teacher's behaviour the student picked up, and whether the differences are real.

The per-scenario metrics and the tests of one difference live here; the uncertainty of a split's
summary (bootstrap) and the game-vs-context decomposition live in :mod:`stratdistill.stats`, and the
command line in :mod:`stratdistill.metrics_cli`, so that each stays readable on its own.

For a scenario s, with x(s) a model's share of C answers (or its mean donation in a public goods game):

    gap_closed(s) = (x_tuned(s) - x_base(s)) / (x_teacher(s) - x_base(s)) * 100

the share of the base-to-teacher gap that fine-tuning closed (the paper's "gap closed"): 0 = unchanged,
100 = matches the teacher, negative = moved away, above 100 = overshot. Signed and unbounded: a tiny gap
makes it large. It is undefined (NaN) when base and teacher agree exactly. The headline is the plain
mean over the scenarios of a split; the median is its robust companion.

    bridging(s) = (|x_base - x_teacher| - |x_tuned - x_teacher|) / |x_base - x_teacher|

counts overshooting as a miss (it is at most 1, and 1 only when the tuned student matches the teacher).

Shares are computed with each cell's own number of answers n (the paper divided every count by 300,
also for the three cells with fewer answers; give n = 300 to reproduce its 46.26 / 17.90).

Tests of a difference:

* ``two_proportion_ztest``: pooled two-sided z-test of two shares of C answers,
  z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p = (c1 + c2) / (n1 + n2).
* ``js_divergence``: Jensen-Shannon divergence (base 2, in [0, 1]) of two discrete distributions.

A table of counts (``check_count_columns``, :class:`CountsError`): one row per scenario with
``base_c, base_n, tuned_c, tuned_n, teacher_c, teacher_n``, checked once for every consumer.

Command line: ``python -m stratdistill.metrics COUNTS.csv [--json] [--n-boot N] [--seed S]`` (see
:mod:`stratdistill.metrics_cli`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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


def gap_closed(base: float, tuned: float, teacher: float) -> float:
    """Share of the base-to-teacher gap closed by the tuned student, in percent (NaN if no gap)."""
    gap = teacher - base
    return math.nan if gap == 0 else (tuned - base) / gap * 100.0


def gap_closed_array(base: np.ndarray, tuned: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """Vectorised :func:`gap_closed` (any broadcastable shapes): NaN where the gap is 0."""
    gap = teacher - base
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap != 0, (tuned - base) / np.where(gap != 0, gap, 1.0) * 100.0, np.nan)


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


def check_count_columns(df: pd.DataFrame) -> pd.DataFrame:
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
