"""The run's report: Markdown with PNG figures, written into the run's output folder.

It opens with a plain-language summary, then puts teacher, base student and tuned student side by side
per context x game (heatmaps like the paper's figures), the share of the gap closed per scenario and per
split with bootstrap intervals, the game-vs-context variance decomposition, and the paper's published
figures next to ours wherever the scenario exists in the paper. It names the teacher plainly: a
stand-in is labelled as a stand-in.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on laptops and cluster nodes alike
import matplotlib.pyplot as plt
import pandas as pd

from stratdistill.artifacts import atomic_write_text
from stratdistill.metrics import bootstrap_ci, bootstrap_scenario_ci, split_summary, variance_decomposition
from stratdistill.reference import PAPER_STUDENT, PAPER_TEACHER

MODELS = ("teacher", "base", "tuned")
# Exact probabilities carry no sampling noise: in the bootstrap they enter as shares of this many answers.
EXACT_PSEUDO_N = 10**6
N_BOOT = 2000
SCENARIO_COLUMNS = {
    "scenario": "scenario",
    "teacher": "teacher",
    "base": "base",
    "tuned": "tuned",
    "improvement": "gap closed %",
    "improvement_low": "CI low",
    "improvement_high": "CI high",
    "bridging": "bridging",
    "base_valid_mass": "base valid mass",
    "tuned_valid_mass": "tuned valid mass",
    "paper_teacher": "paper teacher",
    "paper_base": "paper base",
    "paper_tuned": "paper tuned",
    "paper_improvement": "paper gap closed %",
    "js_tuned_teacher": "JS(tuned, teacher)",
}
SAMPLED_COLUMNS = {
    "z_base_tuned": "z base-tuned",
    "p_base_tuned": "p",
    "z_tuned_teacher": "z tuned-teacher",
    "p_tuned_teacher": "p ",
}


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def count_rows(df: pd.DataFrame) -> pd.DataFrame:
    """C counts per model for the bootstrap: real counts where a model was sampled (the teacher always,
    the students with eval=sampled), pseudo-counts out of EXACT_PSEUDO_N for exact probabilities."""
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
    results["improvement_low"] = math.nan
    results["improvement_high"] = math.nan
    two = (results["kind"] == "2x2") & results["teacher_c"].notna()
    if two.any():
        ci = bootstrap_scenario_ci(count_rows(results[two]), n_boot=N_BOOT)
        results.loc[two, "improvement_low"] = ci["low"]
        results.loc[two, "improvement_high"] = ci["high"]
    return results


def heatmap(df: pd.DataFrame, split: str, path: Path) -> None:
    """Three panels (teacher, base, tuned): share of C per context (rows) x game (columns)."""
    fig, axes = plt.subplots(
        1, 3, figsize=(13, 0.55 * df["context"].nunique() + 2.2), constrained_layout=True
    )
    for ax, model in zip(axes, MODELS, strict=True):
        grid = df.pivot(index="context", columns="game", values=model)
        grid = grid.loc[df["context"].unique(), df["game"].unique()]  # keep the split's own order
        im = ax.imshow(grid.to_numpy(float), vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, ha="right")
        ax.set_yticks(range(grid.shape[0]), grid.index)
        for (i, j), v in pd.DataFrame(grid.to_numpy(float)).stack().items():
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9)
        ax.set_title(f"{model}: P(C)")
    fig.colorbar(im, ax=axes, shrink=0.8, label="share of C")
    fig.suptitle(f"Cooperation by context x game — {split}")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def improvement_bars(df: pd.DataFrame, split: str, path: Path) -> None:
    """Gap closed per scenario with its 95% interval, the paper's figure as a black tick."""
    d = df.sort_values("improvement")
    values = d["improvement"].fillna(0)
    fig, ax = plt.subplots(figsize=(max(6, 0.42 * len(d) + 2), 4), constrained_layout=True)
    ax.bar(d["scenario"], values, color=["#2a7" if v >= 0 else "#c44" for v in values])
    if d["improvement_low"].notna().any():
        below = (d["improvement"] - d["improvement_low"]).clip(lower=0).fillna(0)
        above = (d["improvement_high"] - d["improvement"]).clip(lower=0).fillna(0)
        ax.errorbar(d["scenario"], values, yerr=[below, above], fmt="none", ecolor="k", lw=0.8, capsize=2)
    if d["paper_improvement"].notna().any():
        ax.scatter(
            d["scenario"], d["paper_improvement"], color="k", marker="_", s=200, label="paper", zorder=3
        )
        ax.legend()
    ax.axhline(0, color="grey", lw=0.8)
    ax.axhline(100, color="grey", lw=0.8, ls="--")
    ax.set_ylabel("gap closed (%)")
    ax.set_title(f"Share of the base-to-teacher gap closed by fine-tuning — {split}")
    ax.tick_params(axis="x", rotation=60)
    for label in ax.get_xticklabels():
        label.set_ha("right")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _interval(df: pd.DataFrame, stat: str) -> str:
    two = df[(df["kind"] == "2x2") & df["teacher_c"].notna()]
    if two.empty:
        return "–"
    ci = bootstrap_ci(count_rows(two), stat=stat, n_boot=N_BOOT)
    return f"[{ci['low']:.1f}, {ci['high']:.1f}]"


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per split: mean and median gap closed with 95% bootstrap intervals, bridging, the paper's figures."""
    rows = []
    for split, df in results.groupby("split", sort=False):
        imp, paper = split_summary(df["improvement"]), split_summary(df["paper_improvement"])
        rows.append(
            {
                "split": split,
                "scenarios": len(df),
                "mean gap closed %": imp["mean"],
                "95% CI (mean)": _interval(df, "mean"),
                "median gap closed %": imp["median"],
                "95% CI (median)": _interval(df, "median"),
                "mean bridging": split_summary(df["bridging"])["mean"],
                "paper mean %": paper["mean"],
                "paper median %": paper["median"],
            }
        )
    return pd.DataFrame(rows)


def decomposition_table(results: pd.DataFrame) -> pd.DataFrame:
    """Game vs context: the share of the variance in P(C) each explains, per split and model (two-way
    ANOVA on the split's full context x game grid; splits without one are left out)."""
    rows = []
    for split, df in results[results["kind"] == "2x2"].groupby("split", sort=False):
        n_ctx, n_game = df["context"].nunique(), df["game"].nunique()
        if n_ctx < 2 or n_game < 2 or len(df) != n_ctx * n_game:
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


def decomposition_figure(table: pd.DataFrame, path: Path) -> None:
    labels = [f"{r.split}\n{r.model}" for r in table.itertuples()]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(table) + 2), 3.8), constrained_layout=True)
    bottom = pd.Series(0.0, index=table.index)
    for part, colour in (("game", "#3b7dd8"), ("context", "#e39b2d"), ("residual", "#bbbbbb")):
        ax.bar(labels, table[part], bottom=bottom, color=colour, label=part)
        bottom += table[part]
    ax.set_ylabel("share of variance in P(C)")
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("What drives cooperation: the game or the context?")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plain_summary(results: pd.DataFrame, summary: pd.DataFrame, meta: dict[str, Any]) -> list[str]:
    """A few sentences a reader can take away without reading the tables."""
    lines = []
    for row in summary.to_dict("records"):
        df = results[results["split"] == row["split"]]
        toward = int((df["bridging"] > 0).sum())
        text = (
            f"- **{row['split']}** ({row['scenarios']} scenario{'' if row['scenarios'] == 1 else 's'}): "
            "fine-tuning moved the student toward the "
            f"teacher in {toward} of {len(df)} and closed {_fmt(row['mean gap closed %'], 0)}% of the gap on "
            f"average (95% CI {row['95% CI (mean)']}; median {_fmt(row['median gap closed %'], 0)}%)."
        )
        if pd.notna(row["paper mean %"]):
            text += f" The paper reports {row['paper mean %']:.0f}% on the same scenarios."
        lines.append(text)
    if meta.get("stand_in"):
        lines.append(
            "- The teacher is an offline stand-in, not a language model: these figures exercise the pipeline "
            "and measure how well the student absorbs the published teacher behaviour."
        )
    return lines


def write_report(results: pd.DataFrame, meta: dict[str, Any], out_dir: Path) -> Path:
    """Write report.md, results.csv and the figures into ``out_dir``; return the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = with_intervals(results)
    results.to_csv(out_dir / "results.csv", index=False)
    summary = summary_table(results)
    decomposition = decomposition_table(results)
    noise = (
        "the teacher's and the students' answers"
        if meta.get("students_sampled")
        else "the teacher's answers (the students' exact probabilities carry no sampling noise)"
    )
    lines = [
        "# stratdistill report",
        "",
        *plain_summary(results, summary, meta),
        "",
        f"**Teacher:** {meta['teacher']}",
        "",
        f"**Student:** {meta['student']} (base and tuned). **Estimator:** {meta['estimator']}.",
        "",
        f"**Data:** {meta['data']}",
        "",
        f"**Training:** {meta['training']}",
        "",
        "Cooperation is the share of C (2x2 games) or the mean donation in dollars (public goods). "
        "*Gap closed* = (tuned − base) / (teacher − base) × 100 per scenario; the split figure is the plain "
        "mean over its scenarios, as in the paper. Paper columns: "
        f"{PAPER_TEACHER} teacher, {PAPER_STUDENT} student, computed with each cell's true number of "
        "answers.",
        "",
        "## Gap closed per split",
        "",
        _md_table(summary),
        "",
        f"Intervals: 95% percentile bootstrap ({N_BOOT:,} replicates) resampling {noise} within each "
        "scenario.",
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
            _md_table(decomposition),
            "",
        ]
    for split, df in results.groupby("split", sort=False):
        lines += [f"## {split}", ""]
        two = df[df["kind"] == "2x2"]
        if not two.empty:
            hm = f"heatmap_{split}.png"
            heatmap(two, split, out_dir / hm)
            lines += [f"![cooperation heatmaps]({hm})", ""]
        bars = f"improvement_{split}.png"
        improvement_bars(df, split, out_dir / bars)
        lines += [f"![gap closed]({bars})", ""]
        columns = SCENARIO_COLUMNS | (SAMPLED_COLUMNS if meta.get("students_sampled") else {})
        lines += [_md_table(df[list(columns)].rename(columns=columns)), ""]
        for row in df[df["distributions"].notna()].to_dict("records"):
            dists = pd.DataFrame(json.loads(row["distributions"])).fillna(0.0)
            dists.index.name = "dollars"
            dists = dists.reset_index()
            dists = dists.sort_values("dollars", key=lambda c: c.astype(int))
            lines += [
                f"Donation distribution, {row['scenario']} (share of answers per amount):",
                "",
                _md_table(dists),
                "",
            ]
    if meta.get("teacher_parse"):
        lines += [
            "## Teacher answers: parse rates",
            "",
            "Every teacher answer is kept with its raw text; unparseable ones are counted here and left "
            "out of training and of the rates.",
            "",
            _md_table(pd.DataFrame(meta["teacher_parse"])),
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
