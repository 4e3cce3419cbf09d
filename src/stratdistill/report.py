"""The run's report: Markdown with PNG figures and results.csv, written into the run's output folder.

It opens with a plain-language summary (:mod:`stratdistill.report_summary`), then, per split, the
bounded figures first (distance to the teacher, bridging, median gap closed) and the paper's mean gap
closed with its interval, the published value and our true-denominator recomputation each under its own
name; the same metrics for no-learning baselines and the shift-proof metrics
(:mod:`stratdistill.transfer`); the game-vs-context decomposition; the training data's share of C beside
the teacher's; the estimator's coverage; and per split the heatmaps, the student-vs-teacher scatter and
the per-scenario table. A scenario whose gap is undefined is shown as n/a and counted as such.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from stratdistill.artifacts import atomic_write_text
from stratdistill.formatting import UNDEFINED, ci, md_table
from stratdistill.metrics import split_summary
from stratdistill.reference import PAPER_STUDENT, PAPER_TEACHER, PUBLISHED_GAP_CLOSED
from stratdistill.report_figures import decomposition_figure, gap_closed_bars, heatmap, teacher_scatter
from stratdistill.report_summary import plain_summary
from stratdistill.results import RESULTS_CSV, two_by_two
from stratdistill.stats import N_BOOT, bootstrap_ci, bootstrap_scenario_ci, variance_decomposition
from stratdistill.transfer import METRICS, PREDICTOR_LABELS, transfer_table

MODELS = ("teacher", "base", "tuned")
# Scored probabilities carry no sampling noise: in the bootstrap they enter as shares of this many answers.
EXACT_PSEUDO_N = 10**6
SCENARIO_COLUMNS = {
    "scenario": "scenario",
    "teacher": "teacher",
    "base": "base",
    "tuned": "tuned",
    "gap_closed": "gap closed %",
    "gap_closed_low": "CI low",
    "gap_closed_high": "CI high",
    "bridging": "bridging",
    "base_valid_mass": "base valid mass",
    "tuned_valid_mass": "tuned valid mass",
    "paper_teacher": "paper teacher",
    "paper_base": "paper base",
    "paper_tuned": "paper tuned",
    "paper_gap_closed": "paper gap closed %",
    "js_tuned_teacher": "JS(tuned, teacher)",
}
SAMPLED_COLUMNS = {
    "z_base_tuned": "z base-tuned",
    "p_base_tuned": "p",
    "z_tuned_teacher": "z tuned-teacher",
    "p_tuned_teacher": "p ",
}
METRIC_LABELS = {
    "gap_mean": "mean gap % (paper's)",
    "gap_median": "median gap %",
    "gap_defined": "defined",
    "bridging_mean": "bridging",
    "mae": "MAE to teacher",
    "r": "r",
    "game_r": "game-effect r",
    "game_slope": "game-effect slope",
    "change_slope": "change slope",
}


def countable(df: pd.DataFrame) -> pd.DataFrame:
    """2x2 rows whose three values are defined and whose teacher was counted: what the bootstrap uses."""
    two = two_by_two(df)
    return two[two["teacher_c"].notna() & two[["base", "tuned"]].notna().all(axis=1)]


def count_rows(df: pd.DataFrame) -> pd.DataFrame:
    """C counts per model for the bootstrap: real counts where a model was sampled (the teacher always,
    the students with eval=sampled), pseudo-counts out of EXACT_PSEUDO_N for scored probabilities."""
    out = pd.DataFrame(index=df.index)
    out["teacher_c"], out["teacher_n"] = df["teacher_c"].astype(int), df["teacher_n_ok"].astype(int)
    for m in ("base", "tuned"):
        sampled = df[f"{m}_n"].notna()
        out[f"{m}_n"] = df[f"{m}_n"].where(sampled, EXACT_PSEUDO_N).astype(int)
        out[f"{m}_c"] = df[f"{m}_c"].where(sampled, (df[m] * EXACT_PSEUDO_N).round()).astype(int)
    return out


def with_intervals(results: pd.DataFrame) -> pd.DataFrame:
    """Add per-scenario 95% intervals of the gap closed (2x2 scenarios; the donation game has none)."""
    results = results.copy()
    results["gap_closed_low"] = math.nan
    results["gap_closed_high"] = math.nan
    usable = countable(results)
    if not usable.empty:
        interval = bootstrap_scenario_ci(count_rows(usable), n_boot=N_BOOT)
        results.loc[usable.index, "gap_closed_low"] = interval["low"]
        results.loc[usable.index, "gap_closed_high"] = interval["high"]
    return results


def split_ci(df: pd.DataFrame, stat: str = "mean", n_boot: int = N_BOOT) -> tuple[float, float] | None:
    """The 95% bootstrap interval (low, high) of one split's mean or median gap closed, as the report and
    the sweep comparison show it; None when the split has no row to resample."""
    usable = countable(df)
    if usable.empty:
        return None
    interval = bootstrap_ci(count_rows(usable), stat=stat, n_boot=n_boot)
    return interval["low"], interval["high"]


def _interval(df: pd.DataFrame, stat: str) -> str:
    interval = split_ci(df, stat)
    return UNDEFINED if interval is None else ci(*interval, 1)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per split: the bounded figures first (distance to the teacher, bridging, median gap closed), then
    the paper's metric (mean gap closed) with its 95% interval, the published figure and our
    recomputation of the paper's own counts with each cell's true number of answers."""
    rows = []
    for split, df in results.groupby("split", sort=False):
        gaps, paper = split_summary(df["gap_closed"]), split_summary(df["paper_gap_closed"])
        d = df[df[["base", "tuned", "teacher"]].notna().all(axis=1)]
        published = PUBLISHED_GAP_CLOSED.get(str(split), {}) if df["paper_teacher"].notna().any() else {}
        rows.append(
            {
                "split": split,
                "scenarios (gap defined)": f"{len(df)} ({gaps['n']})",
                "base MAE": float((d["base"] - d["teacher"]).abs().mean()) if len(d) else math.nan,
                "tuned MAE": float((d["tuned"] - d["teacher"]).abs().mean()) if len(d) else math.nan,
                "mean bridging": split_summary(df["bridging"])["mean"],
                "median gap closed %": gaps["median"],
                "mean gap closed % (paper's metric)": gaps["mean"],
                "95% CI (mean)": _interval(df, "mean"),
                "paper: published mean %": published.get("mean", math.nan),
                "paper: mean % recomputed (true n)": paper["mean"],
            }
        )
    return pd.DataFrame(rows)


def baselines_table(table: pd.DataFrame) -> pd.DataFrame:
    """The transfer table with readable labels."""
    out = table.copy()
    out["predictor"] = out["predictor"].map(PREDICTOR_LABELS)
    return out.rename(columns=METRIC_LABELS)[["split", "predictor", *[METRIC_LABELS[m] for m in METRICS]]]


def training_table(shares: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Per training scenario: the teacher's share of C over all its answers and over the trained ones."""
    rows = [
        {
            "scenario": k,
            "teacher P(C), all answers": v["teacher_p_c"],
            "answers": v["teacher_n"],
            "P(C) of the text-trained answers": v["trained_p_c"],
            "text-trained": v["trained_n"],
            "difference": v["trained_p_c"] - v["teacher_p_c"] if v["trained_p_c"] is not None else math.nan,
        }
        for k, v in shares.items()
    ]
    return pd.DataFrame(rows)


def decomposition_table(results: pd.DataFrame) -> pd.DataFrame:
    """Game vs context: the share of the variance in P(C) each explains, per split and model (two-way
    ANOVA on the split's full context x game grid; splits without one, or with an undefined value, are
    left out)."""
    rows = []
    for split, df in two_by_two(results).groupby("split", sort=False):
        n_ctx, n_game = df["context"].nunique(), df["game"].nunique()
        if n_ctx < 2 or n_game < 2 or len(df) != n_ctx * n_game or df[list(MODELS)].isna().any(axis=None):
            continue
        for model in MODELS:
            v = variance_decomposition(
                df[["context", "game", model]].rename(columns={model: "value"}), value="value"
            )
            rows.append(
                {
                    "split": split,
                    "model": model,
                    "game": v["share_game"],
                    "context": v["share_context"],
                    "residual": v["share_residual"],
                }
            )
    return pd.DataFrame(rows)


def _split_section(df: pd.DataFrame, split: str, out_dir: Path, meta: dict[str, Any]) -> list[str]:
    lines = [f"## {split}", ""]
    two = two_by_two(df)
    if not two.empty and two[list(MODELS)].notna().all(axis=None):
        hm = f"heatmap_{split}.png"
        heatmap(two, split, out_dir / hm)
        lines += [f"![cooperation heatmaps]({hm})", ""]
    if len(df) > 1:
        sc = f"scatter_{split}.png"
        teacher_scatter(df, split, out_dir / sc)
        lines += [f"![student vs teacher]({sc})", ""]
    bars = f"improvement_{split}.png"  # file name kept: runs and the end-to-end test refer to it
    gap_closed_bars(df, split, out_dir / bars)
    lines += [f"![gap closed]({bars})", ""]
    columns = SCENARIO_COLUMNS | (SAMPLED_COLUMNS if meta.get("students_sampled") else {})
    lines += [md_table(df[list(columns)].rename(columns=columns)), ""]
    for row in df[df["distributions"].notna()].to_dict("records"):
        dists = pd.DataFrame(json.loads(row["distributions"])).fillna(0.0)
        dists.index.name = "dollars"
        dists = dists.reset_index().sort_values("dollars", key=lambda c: c.astype(int))
        title = f"Donation distribution, {row['scenario']} (share of answers per amount):"
        lines += [title, "", md_table(dists), ""]
    return lines


def _estimator_section(results: pd.DataFrame, meta: dict[str, Any]) -> list[str]:
    """How much of each model the estimate covers, and, where recorded, the raw and per-form figures."""
    method = meta.get("estimator_method")
    if method == "sampled":
        return []
    cols = ["split", "scenario", "base_valid_mass", "tuned_valid_mass"]
    extra = [
        c for c in results.columns if c.endswith("_raw_valid_mass") or c.endswith("_raw") or "_form_" in c
    ]
    lines = ["## What the estimate covers", ""]
    if method == "forced_choice":
        lines += [
            "*valid mass*: the probability the options get at the decision point under the evaluation's "
            "decoding; *raw*: at temperature 1 without penalty (the model's own distribution). The "
            "evaluation temperature sharpens a model's choice (a share of 0.70 at temperature 1 reads 0.74 "
            "at 0.8); the teacher's shares were sampled at its own temperature.",
            "",
        ]
    else:
        lines += ["Each form family's own P(C) and mass beside the blend: they can move apart.", ""]
    lines += [md_table(results[cols + extra], 3), ""]
    return lines


def _header(meta: dict[str, Any], noise: str) -> list[str]:
    return [
        f"**Teacher:** {meta['teacher']}",
        "",
        f"**Student:** {meta['student']} (base and tuned). **Estimator:** {meta['estimator']}.",
        "",
        f"**Data:** {meta['data']}",
        "",
        f"**Training:** {meta['training']}",
        "",
        "Cooperation is the share of C (2x2 games) or the mean donation in dollars (public goods). "
        "*Gap closed* = (tuned − base) / (teacher − base) × 100 per scenario (the paper's metric: signed, "
        "unbounded, undefined when base equals the teacher); *bridging* = (|base − teacher| − |tuned − "
        "teacher|) / |base − teacher| is at most 1 and counts overshooting as a miss. Paper columns: "
        f"{PAPER_TEACHER} teacher, {PAPER_STUDENT} student; *published* is the paper's own figure (it "
        "divided every count by 300), *recomputed* is ours from its counts with each cell's true number "
        "of answers.",
        "",
    ]


def write_report(results: pd.DataFrame, meta: dict[str, Any], out_dir: Path) -> Path:
    """Write report.md, results.csv, baselines.csv and the figures into ``out_dir``; return the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = with_intervals(results)
    results.to_csv(out_dir / RESULTS_CSV, index=False)
    summary = summary_table(results)
    transfer = transfer_table(results)
    transfer.to_csv(out_dir / "baselines.csv", index=False)
    decomposition = decomposition_table(results)
    noise = (
        "the teacher's and the students' answers"
        if meta.get("students_sampled")
        else "the teacher's answers (the students' scored probabilities carry no sampling noise)"
    )
    lines = [
        "# stratdistill report",
        "",
        *plain_summary(results, summary, transfer, meta),
        "",
        *_header(meta, noise),
        "## Per split",
        "",
        md_table(summary),
        "",
        f"Intervals: 95% percentile bootstrap ({N_BOOT:,} replicates) resampling {noise} within each "
        "scenario; one training run (see the summary on seeds).",
        "",
        "## Against baselines that need no learning",
        "",
        "Each metric for the tuned student and for three predictors built from the same numbers: a constant "
        "at the tuned student's split mean, the base moved by the tuned student's mean change (uniform "
        "shift), and the tuned student's mean per context. *r*: correlation with the teacher across "
        "scenarios; *game-effect r / slope*: correlation and least-squares slope of each value minus its "
        "context's mean against the teacher's (slope 1 = the teacher's game effects at full size); *change "
        "slope*: slope of (x − base) on (teacher − base), 0 for a uniform shift. n/a: undefined (e.g. a "
        "constant has no correlation). Also in `baselines.csv`.",
        "",
        md_table(baselines_table(transfer), 3),
        "",
    ]
    if not decomposition.empty:
        decomposition_figure(decomposition, out_dir / "decomposition.png")
        lines += [
            "## Game or context?",
            "",
            "Share of the variance in P(C) across each split's context x game grid explained by the game, by "
            "the context, and left over (two-way ANOVA without replication).",
            "",
            "![decomposition](decomposition.png)",
            "",
            md_table(decomposition),
            "",
        ]
    if meta.get("training_shares"):
        lines += [
            "## Training data against the teacher",
            "",
            "Per training scenario: the teacher's share of C over all its parsed answers (what the decision "
            "loss fits, when it is on) and over the answers the text loss trains on.",
            "",
            md_table(training_table(meta["training_shares"]), 3),
            "",
        ]
    lines += _estimator_section(results, meta)
    for split, df in results.groupby("split", sort=False):
        lines += _split_section(df, str(split), out_dir, meta)
    if meta.get("teacher_parse"):
        lines += [
            "## Teacher answers: parse rates",
            "",
            "Every teacher answer is kept with its raw text; unparseable ones are counted here and "
            f"{meta.get('unparsed', 'left out of the rates')}.",
            "",
            md_table(pd.DataFrame(meta["teacher_parse"])),
            "",
        ]
    lines += [
        "## Provenance",
        "",
        "```",
        *[f"{k}: {v}" for k, v in meta.get("provenance", {}).items()],
        "```",
        "",
    ]
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
