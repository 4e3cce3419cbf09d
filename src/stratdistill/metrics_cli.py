"""``python -m stratdistill.metrics COUNTS.csv``: the statistics of :mod:`stratdistill.metrics` and
:mod:`stratdistill.stats` for a table of counts you already have, with the no-learning baselines and
shift-proof metrics of :mod:`stratdistill.transfer` beside the paper's mean gap closed.

One row per scenario with ``scenario,base_c,base_n,tuned_c,tuned_n,teacher_c,teacher_n``; optional
``split`` groups the summaries, optional ``context`` and ``game`` add the variance decomposition and the
game-effect metrics. Bad input exits 2 with one line naming the row and the column.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratdistill.formatting import ci, fmt, pvalue
from stratdistill.metrics import (
    ALL_GROUP,
    COUNT_COLUMNS,
    MODELS,
    REQUIRED_COLUMNS,
    CountsError,
    bridging,
    check_count_columns,
    gap_closed,
    split_summary,
    two_proportion_ztest,
)
from stratdistill.stats import N_BOOT, bootstrap_ci, variance_decomposition


def validate_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Check a counts table and return it normalised: a ``scenario`` column, a ``group`` column (the
    ``split`` if there is one, else "all") and the six count columns as integers.

    A ``scenario`` index (as in ``reference.paper_counts()``) is taken as the column. Raises
    CountsError (a ValueError) naming the first offending row and column.
    """
    if "scenario" not in df.columns and df.index.name == "scenario":
        df = df.reset_index()
    df = df.rename(columns=lambda c: str(c).strip()).reset_index(drop=True)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise CountsError(
            f"missing column(s) {', '.join(missing)}; required columns: {', '.join(REQUIRED_COLUMNS)} "
            "(optional: split, context, game)"
        )
    if len(df) == 0:
        raise CountsError("no data rows; need one row per scenario")
    out = df.copy()
    out["scenario"] = df["scenario"].astype(str).str.strip()
    for i, s in enumerate(out["scenario"]):
        if s in ("", "nan", "None"):
            raise CountsError("empty; allowed: a scenario name", i + 1, None, "scenario")
    counts = check_count_columns(out)
    for col in COUNT_COLUMNS:
        out[col] = counts[col]
    if "split" in out.columns:
        out["group"] = out["split"].astype(str).str.strip()
        for i, g in enumerate(out["group"]):
            if g in ("", "nan", "None"):
                raise CountsError(
                    "empty; allowed: a split name, or drop the column", i + 1, out["scenario"][i], "split"
                )
    else:
        out["group"] = ALL_GROUP
    dup = out.duplicated(["group", "scenario"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise CountsError("scenario appears twice in the same split", i + 1, out["scenario"][i], "scenario")
    return out


def summarise_counts(
    df: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """Everything the command line prints, as a dict (floats may be NaN).

    ``df``: one row per scenario with ``scenario, base_c, base_n, tuned_c, tuned_n, teacher_c,
    teacher_n``; an optional ``split`` column groups the summaries (else one group "all"), optional
    ``context`` and ``game`` columns add a variance decomposition per group and model. Shares use each
    row's own n.

    Returns {"denominators", "n_boot", "seed", "level", "scenarios": [per scenario: shares,
    gap_closed, bridging, z tests base vs tuned and tuned vs teacher], "groups": {group: {n_scenarios,
    n_defined, mean_gap_closed and median_gap_closed (each {estimate, low, high, n_valid}),
    mean_bridging, median_bridging, variance (per model, or absent)}}}.
    """
    data = validate_counts(df)
    scenarios: list[dict[str, Any]] = []
    for r in data.itertuples(index=False):
        row = r._asdict()
        p = {m: row[f"{m}_c"] / row[f"{m}_n"] for m in MODELS}
        z_bt, p_bt = two_proportion_ztest(row["base_c"], row["base_n"], row["tuned_c"], row["tuned_n"])
        z_tt, p_tt = two_proportion_ztest(row["tuned_c"], row["tuned_n"], row["teacher_c"], row["teacher_n"])
        scenarios.append(
            {
                "scenario": row["scenario"],
                "group": row["group"],
                **{f"{m}_c": int(row[f"{m}_c"]) for m in MODELS},
                **{f"{m}_n": int(row[f"{m}_n"]) for m in MODELS},
                **{f"{m}_p": p[m] for m in MODELS},
                "gap_closed": gap_closed(p["base"], p["tuned"], p["teacher"]),
                "bridging": bridging(p["base"], p["tuned"], p["teacher"]),
                "z_base_tuned": z_bt,
                "p_base_tuned": p_bt,
                "z_tuned_teacher": z_tt,
                "p_tuned_teacher": p_tt,
            }
        )
    groups: dict[str, Any] = {}
    for g in pd.unique(data["group"]):
        sub = data[data["group"] == g]
        rows = [s for s in scenarios if s["group"] == g]
        gaps = split_summary(s["gap_closed"] for s in rows)
        brg = split_summary(s["bridging"] for s in rows)
        entry: dict[str, Any] = {"n_scenarios": len(rows), "n_defined": gaps["n"]}
        for stat in ("mean", "median"):
            ci = bootstrap_ci(sub, stat=stat, n_boot=n_boot, seed=seed, level=level)
            entry[f"{stat}_gap_closed"] = {k: ci[k] for k in ("estimate", "low", "high", "n_valid")}
        entry["mean_bridging"], entry["median_bridging"] = brg["mean"], brg["median"]
        if "context" in sub.columns and "game" in sub.columns:
            entry["variance"] = _group_variance(sub)
        entry["baselines"] = _baselines(rows, sub)
        groups[str(g)] = entry
    return {
        "denominators": "each row's own number of answers n",
        "n_boot": n_boot,
        "seed": seed,
        "level": level,
        "scenarios": scenarios,
        "groups": groups,
    }


def _baselines(rows: list[dict[str, Any]], sub: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The tuned student and the no-learning predictors scored with every metric of
    :mod:`stratdistill.transfer`; without a ``context`` column each scenario is its own context (no
    game-effect metrics)."""
    from stratdistill.transfer import predictions, score

    base = np.array([r["base_p"] for r in rows])
    tuned = np.array([r["tuned_p"] for r in rows])
    teacher = np.array([r["teacher_p"] for r in rows])
    contexts = (
        sub["context"].astype(str).to_numpy()
        if "context" in sub.columns
        else np.array([r["scenario"] for r in rows])
    )
    return {
        name: score(base, pred, teacher, contexts)
        for name, pred in predictions(base, tuned, contexts).items()
    }


def _group_variance(sub: pd.DataFrame) -> dict[str, Any] | None:
    """Variance decomposition of each model's share of C over the group's context x game grid, or
    None when the rows do not form a full grid with at least 2 contexts and 2 games."""
    out: dict[str, Any] = {}
    for m in MODELS:
        tab = pd.DataFrame(
            {
                "context": sub["context"].astype(str),
                "game": sub["game"].astype(str),
                "p_c": sub[f"{m}_c"] / sub[f"{m}_n"],
            }
        )
        try:
            vd = variance_decomposition(tab)
        except ValueError:
            return None
        if vd["n_contexts"] < 2 or vd["n_games"] < 2:
            return None
        out[m] = vd
    return out


# --------------------------------------------------------------------------------------------------
# Command line


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


def format_summary(summary: dict[str, Any]) -> str:
    """The readable report of ``summarise_counts``."""
    rows = summary["scenarios"]
    lines = [f"Per scenario (shares of C use {summary['denominators']}; gap closed in %)"]
    w = max([len("scenario"), *(len(s["scenario"]) for s in rows)])
    gw = max([len("group"), *(len(s["group"]) for s in rows)])
    head = (
        f"{'scenario':<{w}}  {'group':<{gw}}  {'base':>6} {'tuned':>6} {'teacher':>7}  {'gap %':>8} "
        f"{'bridging':>8}  {'z b-t':>6} {'p':>7}  {'z t-T':>6} {'p':>7}"
    )
    lines += [head, "-" * len(head)]
    for s in rows:
        lines.append(
            f"{s['scenario']:<{w}}  {s['group']:<{gw}}  {s['base_p']:>6.3f} {s['tuned_p']:>6.3f} "
            f"{s['teacher_p']:>7.3f}  {fmt(s['gap_closed'], 2):>8} {fmt(s['bridging'], 3):>8}  "
            f"{fmt(s['z_base_tuned'], 2):>6} {pvalue(s['p_base_tuned'], 4):>7}  "
            f"{fmt(s['z_tuned_teacher'], 2):>6} {pvalue(s['p_tuned_teacher'], 4):>7}"
        )
    lines.append("z b-t: base vs tuned, z t-T: tuned vs teacher (pooled two-proportion z-tests, two-sided)")
    pct = f"{summary['level'] * 100:g}%"
    lines += [
        "",
        f"Per group (gap closed in %; {pct} percentile intervals from {summary['n_boot']} parametric "
        f"bootstrap replicates, seed {summary['seed']})",
    ]
    gw = max([len("group"), *(len(g) for g in summary["groups"])])
    head = (
        f"{'group':<{gw}}  {'scenarios':>9}  {'mean':>7}  {pct + ' CI':<18}  "
        f"{'median':>7}  {pct + ' CI':<18}  {'bridging mean':>13}"
    )
    lines += [head, "-" * len(head)]
    for g, e in summary["groups"].items():
        mi, me = e["mean_gap_closed"], e["median_gap_closed"]
        n_txt = (
            f"{e['n_defined']}"
            if e["n_defined"] == e["n_scenarios"]
            else f"{e['n_defined']}/{e['n_scenarios']}"
        )
        lines.append(
            f"{g:<{gw}}  {n_txt:>9}  {fmt(mi['estimate'], 2):>7}  "
            f"{ci(mi['low'], mi['high'], 2):<18}  "
            f"{fmt(me['estimate'], 2):>7}  "
            f"{ci(me['low'], me['high'], 2):<18}  "
            f"{fmt(e['mean_bridging'], 3):>13}"
        )
    lines += [
        "",
        "Against predictors that learned nothing (transfer metrics; the paper's mean gap closed first)",
    ]
    cols = ("gap_mean", "gap_median", "bridging_mean", "mae", "r", "game_r", "game_slope", "change_slope")
    names = ("mean gap", "median", "bridging", "MAE", "r", "game r", "game sl.", "chg sl.")
    head = f"{'group':<{gw}}  {'predictor':<12}  " + "  ".join(f"{n:>8}" for n in names)
    lines += [head, "-" * len(head)]
    for g, e in summary["groups"].items():
        for pred, m in e.get("baselines", {}).items():
            cells = "  ".join(f"{fmt(m[c], 2 if c.startswith(('gap', 'mae')) else 3):>8}" for c in cols)
            lines.append(f"{g:<{gw}}  {pred:<12}  {cells}")
    lines.append(
        "constant: the tuned mean everywhere; shift: base + the mean change; context_mean: the tuned mean "
        "per context. A student that learned the teacher's behaviour beats all three."
    )
    var_groups = {g: e["variance"] for g, e in summary["groups"].items() if e.get("variance")}
    if var_groups:
        lines += [
            "",
            "Share of the variance in P(C) explained (two-way ANOVA, context x game, no replication)",
        ]
        head = f"{'group':<{gw}}  {'model':<7}  {'game':>6}  {'context':>7}  {'residual':>8}"
        lines += [head, "-" * len(head)]
        for g, v in var_groups.items():
            for m, d in v.items():
                lines.append(
                    f"{g:<{gw}}  {m:<7}  {fmt(d['share_game'], 3):>6}  "
                    f"{fmt(d['share_context'], 3):>7}  {fmt(d['share_residual'], 3):>8}"
                )
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not allowed; must be >= 1")
    return v


def _level(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"{v} is not allowed; must be between 0 and 1")
    return v


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: summarise a CSV of per-scenario counts. Returns the exit status (2 for bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m stratdistill.metrics",
        description=(
            "Per-scenario gap closed, bridging and z-tests, and per-split mean/median gap closed with "
            "bootstrap intervals, from a CSV with columns "
            f"{','.join(REQUIRED_COLUMNS)} (optional: split, context, game)."
        ),
    )
    parser.add_argument("counts", help="CSV file, one row per scenario")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON (NaN as null)")
    parser.add_argument(
        "--n-boot", type=_positive_int, default=N_BOOT, help="bootstrap replicates (default 2000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--level", type=_level, default=0.95, help="interval level (default 0.95)")
    args = parser.parse_args(argv)

    def fail(msg: str) -> int:
        print(f"error: {args.counts}: {msg}", file=sys.stderr)
        return 2

    path = Path(args.counts)
    if not path.is_file():
        return fail("no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        return fail(
            f"empty file; need a header line with {','.join(REQUIRED_COLUMNS)} and one row per scenario"
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        return fail(
            f"not a readable CSV file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        )
    try:
        summary = summarise_counts(df, n_boot=args.n_boot, seed=args.seed, level=args.level)
    except CountsError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps(_jsonable(summary), indent=2, allow_nan=False))
    else:
        print(format_summary(summary))
    return 0
