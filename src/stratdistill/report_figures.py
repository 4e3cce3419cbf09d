"""The report's figures (PNG, headless): heatmaps, gap-closed bars, student-vs-teacher scatter, and
the game-vs-context decomposition."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on laptops and cluster nodes alike
import matplotlib.pyplot as plt
import pandas as pd

MODELS = ("teacher", "base", "tuned")


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


def gap_closed_bars(df: pd.DataFrame, split: str, path: Path) -> None:
    """Gap closed per scenario with its 95% interval, the paper's figure as a black tick. A scenario
    whose gap is undefined (base equals the teacher, or a value is missing) gets no bar: it is labelled
    n/a, never drawn as 0."""
    d = df.sort_values("gap_closed", na_position="last")
    values = d["gap_closed"]
    defined = values.notna()
    fig, ax = plt.subplots(figsize=(max(6, 0.42 * len(d) + 2), 4), constrained_layout=True)
    ax.bar(
        d["scenario"][defined],
        values[defined],
        color=["#2a7" if v >= 0 else "#c44" for v in values[defined]],
    )
    for name in d["scenario"][~defined]:
        ax.text(name, 0, "n/a", ha="center", va="bottom", fontsize=8, color="#666", rotation=90)
    if d["gap_closed_low"].notna().any():
        ok = defined & d["gap_closed_low"].notna()
        below = (d["gap_closed"] - d["gap_closed_low"]).clip(lower=0)[ok]
        above = (d["gap_closed_high"] - d["gap_closed"]).clip(lower=0)[ok]
        ax.errorbar(
            d["scenario"][ok], values[ok], yerr=[below, above], fmt="none", ecolor="k", lw=0.8, capsize=2
        )
    if d["paper_gap_closed"].notna().any():
        ax.scatter(
            d["scenario"], d["paper_gap_closed"], color="k", marker="_", s=200, label="paper", zorder=3
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


def teacher_scatter(df: pd.DataFrame, split: str, path: Path) -> None:
    """Each scenario's base and tuned value against the teacher's, with the diagonal: a student that
    learned the teacher's behaviour lies on it; a uniform shift only moves the cloud."""
    d = df[df[["teacher", "base", "tuned"]].notna().all(axis=1)]
    fig, ax = plt.subplots(figsize=(4.6, 4.4), constrained_layout=True)
    lo = float(min(d[["teacher", "base", "tuned"]].min().min(), 0.0)) if len(d) else 0.0
    hi = float(max(d[["teacher", "base", "tuned"]].max().max(), 1.0)) if len(d) else 1.0
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--", label="student = teacher")
    ax.scatter(d["teacher"], d["base"], s=18, color="#999", label="base")
    ax.scatter(d["teacher"], d["tuned"], s=18, color="#2a7", label="tuned")
    for r in d.itertuples():
        ax.plot([r.teacher, r.teacher], [r.base, r.tuned], color="#ccc", lw=0.6, zorder=0)
    ax.set_xlabel("teacher")
    ax.set_ylabel("student")
    ax.set_title(f"Student vs teacher per scenario — {split}", fontsize=10)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
