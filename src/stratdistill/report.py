"""The run's report: Markdown with PNG figures, written into the run's output folder.

It puts teacher, base student and tuned student side by side per context x game (heatmaps like the
paper's figures), the share of the gap closed per scenario and per split, and the paper's published
figures next to ours wherever the scenario exists in the paper. It names the teacher plainly: a
stand-in is labelled as a stand-in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on laptops and cluster nodes alike
import matplotlib.pyplot as plt
import pandas as pd

from stratdistill.artifacts import atomic_write_text
from stratdistill.metrics import split_summary
from stratdistill.reference import PAPER_STUDENT, PAPER_TEACHER

MODELS = ("teacher", "base", "tuned")


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


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
    d = df.sort_values("improvement")
    fig, ax = plt.subplots(figsize=(max(6, 0.42 * len(d) + 2), 4), constrained_layout=True)
    ax.bar(
        d["scenario"],
        d["improvement"].fillna(0),
        color=["#2a7" if v >= 0 else "#c44" for v in d["improvement"].fillna(0)],
    )
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


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for split, df in results.groupby("split", sort=False):
        imp = split_summary(df["improvement"])
        paper = split_summary(df["paper_improvement"])
        rows.append(
            {
                "split": split,
                "scenarios": len(df),
                "mean gap closed %": imp["mean"],
                "median gap closed %": imp["median"],
                "mean bridging": split_summary(df["bridging"])["mean"],
                "paper mean %": paper["mean"],
                "paper median %": paper["median"],
            }
        )
    return pd.DataFrame(rows)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def write_report(results: pd.DataFrame, meta: dict[str, Any], out_dir: Path) -> Path:
    """Write report.md, results.csv and the figures into ``out_dir``; return the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results.to_csv(out_dir / "results.csv", index=False)
    summary = summary_table(results)
    lines = [
        "# stratdistill report",
        "",
        f"**Teacher:** {meta['teacher']}",
        "",
        f"**Student:** {meta['student']} (base and LoRA-tuned). **Estimator:** {meta['estimator']}.",
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
    ]
    for split, df in results.groupby("split", sort=False):
        lines += [f"## {split}", ""]
        two = df[df["kind"] == "2x2"]
        if not two.empty and two["context"].nunique() > 0:
            hm = f"heatmap_{split}.png"
            heatmap(two, split, out_dir / hm)
            lines += [f"![cooperation heatmaps]({hm})", ""]
        bars = f"improvement_{split}.png"
        improvement_bars(df, split, out_dir / bars)
        lines += [f"![gap closed]({bars})", ""]
        table = df[
            [
                "scenario",
                "teacher",
                "base",
                "tuned",
                "improvement",
                "bridging",
                "base_valid_mass",
                "tuned_valid_mass",
                "paper_teacher",
                "paper_base",
                "paper_tuned",
                "paper_improvement",
            ]
        ]
        table = table.rename(
            columns={
                "improvement": "gap closed %",
                "base_valid_mass": "base valid mass",
                "tuned_valid_mass": "tuned valid mass",
                "paper_improvement": "paper gap closed %",
            }
        )
        lines += [_md_table(table), ""]
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
