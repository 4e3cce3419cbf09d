"""The sweep comparison as a reader sees it: ``comparison.md`` and ``comparison.png``.

Apart from :mod:`stratdistill.compare` (which gathers the points, computes and writes the files) so that
the wording and layout of the comparison can change without touching its statistics
(:mod:`stratdistill.sweep_stats`) or the reading of the sweep folder (:mod:`stratdistill.sweep_folder`).
Numbers go through :mod:`stratdistill.formatting`, as in the run's own report.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from stratdistill.formatting import UNDEFINED, ci, fmt
from stratdistill.sweep_folder import Point, point_label
from stratdistill.sweep_stats import METRIC_NAMES, REPLICATE_KEYS


def _interval(mean: Any, low: Any, high: Any) -> str:
    """A point's mean gap closed with its interval, one decimal ("–" when the mean is undefined)."""
    if mean is None or not math.isfinite(mean):
        return "–"
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        return fmt(mean, 1)
    return f"{fmt(mean, 1)} {ci(low, high, 1)}"


def figure(
    table: pd.DataFrame, splits: list[str], effects: pd.DataFrame, labels: list[str], path: Path
) -> None:
    """comparison.png: gap closed per point with its interval and, when a key was ablated, the effects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    effects = effects[effects["metric"] == "gap"] if "metric" in effects else effects
    has_effects = not effects.empty and effects["effect"].notna().any()
    ncols = 2 if has_effects else 1
    height = max(3.5, 0.45 * max(len(table), len(effects) if has_effects else 0) + 1.8)
    fig, axes = plt.subplots(1, ncols, figsize=(7 * ncols, height), constrained_layout=True, squeeze=False)
    ax = axes[0][0]
    y = np.arange(len(table))
    width = 0.8 / max(1, len(splits))
    for i, split in enumerate(splits):
        mean = table[f"{split} mean"].to_numpy(float)
        low, high = table[f"{split} low"].to_numpy(float), table[f"{split} high"].to_numpy(float)
        err = np.vstack([np.clip(mean - low, 0, None), np.clip(high - mean, 0, None)])
        err = np.nan_to_num(err)
        pos = y - 0.4 + width * (i + 0.5)
        ax.errorbar(mean, pos, xerr=err, fmt="o", ms=4, capsize=2, label=split)
    for yi, status in zip(y, table["status"], strict=True):
        if status != "ok":
            ax.text(0, yi, f"  {status}", color="#c00", va="center", fontsize=9, fontweight="bold")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.8)
    ax.axvline(100, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("mean gap closed (%), 95% CI")
    ax.set_title("Gap closed per sweep point")
    if splits:
        ax.legend(fontsize=8, loc="best")
    if has_effects:
        ax2 = axes[0][1]
        e = effects[effects["effect"].notna()].reset_index(drop=True)
        names = [f"{r.key}: {r.level} vs {r.reference} ({r.split})" for r in e.itertuples()]
        err = np.nan_to_num(
            np.vstack([(e["effect"] - e["low"]).clip(lower=0), (e["high"] - e["effect"]).clip(lower=0)])
        )
        ax2.errorbar(e["effect"], np.arange(len(e)), xerr=err, fmt="s", ms=4, capsize=2, color="k")
        ax2.set_yticks(np.arange(len(e)), names, fontsize=8)
        ax2.invert_yaxis()
        ax2.axvline(0, color="grey", lw=0.8)
        ax2.set_xlabel("difference in mean gap closed (points), 95% paired CI")
        ax2.set_title("Ablation effects")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def comparison_markdown(
    sweep_dir: Path,
    points: list[Point],
    keys: list[str],
    table: pd.DataFrame,
    splits: list[str],
    effects: pd.DataFrame,
    seeds: pd.DataFrame | None,
) -> str:
    """The text of comparison.md: points per status, gap closed per point (with what a constant and a
    uniform shift score), the figures across seeds, the ablation effects, and every failed point's error."""
    replicated = [k for k in keys if k in REPLICATE_KEYS]
    counts = {s: sum(p.status == s for p in points) for s in ("ok", "failed", "missing")}
    lines = [
        f"# Sweep comparison: `{sweep_dir}`",
        "",
        f"{len(points)} points: {counts['ok']} finished, {counts['failed']} failed, "
        f"{counts['missing']} missing." + (f" Swept: {', '.join(f'`{k}`' for k in keys)}." if keys else ""),
        "",
        "## Gap closed per sweep point",
        "",
        "Mean gap closed (%) per split with its 95% bootstrap interval, computed as in each run's report "
        "(resampling the teacher's answers, and the students' where they were sampled), then in brackets "
        "what two predictors that learned nothing score on the same metric: a constant at the point's "
        "tuned mean / a uniform shift of its base (`comparison.csv` also has each point's MAE to the "
        "teacher).",
        "",
    ]
    header = ["#", *keys, "status", *splits]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p, row in zip(points, table.to_dict("records"), strict=True):
        cells = [
            fmt(p.num),
            *[fmt(p.values.get(k), 1) for k in keys],
            p.status if p.status == "ok" else f"**{p.status}**",
        ]
        cells += [
            f"{_interval(row[f'{s} mean'], row[f'{s} low'], row[f'{s} high'])} "
            f"(const {fmt(row[f'{s} constant'], 1)} / shift {fmt(row[f'{s} shift'], 1)})"
            for s in splits
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![comparison](comparison.png)", ""]
    if seeds is not None and not seeds.empty:
        config_keys = [k for k in keys if k not in REPLICATE_KEYS]
        lines += [
            "## Across seeds",
            "",
            f"Each configuration over its {', '.join(f'`{k}`' for k in replicated)} values: the mean over "
            "runs and scenarios with a 95% two-stage bootstrap interval (runs, then scenarios, resampled), "
            "so the interval includes the run-to-run variance; *run sd*: the spread of the runs' split "
            "means. Also in `comparison_seeds.csv`.",
            "",
            "| " + " | ".join([*config_keys, "split", "metric", "mean [95% CI]", "runs", "run sd"]) + " |",
            "|" + "---|" * (len(config_keys) + 5),
        ]
        for r in seeds.to_dict("records"):
            digits = 1 if r["metric"] == "gap" else 3
            interval = ci(r["low"], r["high"], digits)
            lines.append(
                "| "
                + " | ".join(
                    [
                        *[fmt(r[k], 1) for k in config_keys],
                        str(r["split"]),
                        METRIC_NAMES[r["metric"]],
                        f"{fmt(r['mean'], digits)} {interval}",
                        str(r["replicates"]),
                        fmt(r["run_sd"], digits),
                    ]
                )
                + " |"
            )
        lines.append("")
    elif "seed" not in keys:
        lines += [
            "One seed per configuration: the intervals below do not include the run-to-run variance (add "
            "`seed=0,1,2` to the sweep, or `sweep=seeds`).",
            "",
        ]
    if not effects.empty:
        lines += [
            "## Ablation effects",
            "",
            "Difference between a value and the key's first value, taken scenario by scenario between points "
            "that agree on every other swept key (seed included), averaged over those pairs: in mean gap "
            "closed (percentage points; the paper's metric, which rewards overshooting), in MAE to the "
            "teacher (negative = closer) and in mean bridging (positive = closer, overshooting counts as a "
            "miss). 95% two-stage paired bootstrap interval resampling the pairs and the scenarios.",
            "",
            "| key | comparison | split | metric | difference | 95% CI | pairs | scenarios |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in effects.itertuples():
            digits = 1 if r.metric == "gap" else 3
            interval = ci(r.low, r.high, digits) if math.isfinite(r.low) else UNDEFINED
            lines.append(
                f"| `{r.key}` | {r.level} vs {r.reference} | {r.split} | {METRIC_NAMES[r.metric]} | "
                f"{fmt(r.effect, digits)} | {interval} | {r.pairs} | {r.scenarios} |"
            )
        lines.append("")
    bad = [p for p in points if p.status != "ok"]
    if bad:
        lines += ["## Failed and missing points", ""]
        for p in bad:
            where = f" (`{p.folder.name}`)" if p.folder is not None else ""
            lines += [f"- **#{fmt(p.num)} {point_label(p, keys)}**{where}: {p.status}"]
            if p.error:
                lines += ["", "  ```", *[f"  {ln}" for ln in p.error.splitlines()], "  ```"]
        lines.append("")
    return "\n".join(lines)
