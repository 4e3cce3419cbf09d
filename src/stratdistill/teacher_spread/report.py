"""The teacher-spread report: a plain-language summary, the tables (markdown, CSV) and the figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratdistill.formatting import fmt, md_table, pct, pvalue
from stratdistill.teacher_spread.stats import ALPHA
from stratdistill.teacher_spread.sweep import Point

MD_FILE, CSV_FILE, PNG_FILE = "teacher_spread.md", "teacher_spread.csv", "teacher_spread.png"


def _t(t: float) -> str:
    return f"{t:g}"


def summary_lines(table: pd.DataFrame, per_t: pd.DataFrame, teacher: str) -> list[str]:
    pc = table[table["metric"] == "p_c"]
    n = round(float(table["n_ok_per_seed"].mean())) if len(table) else 0
    seeds = sorted({s for ss in table["seeds"] for s in ss.split()}, key=int)
    lines = [
        f"Teacher {teacher}: {table['scenario'].nunique()} training scenarios, temperatures "
        f"{', '.join(_t(t) for t in sorted(table['temperature'].unique()))}, seeds {', '.join(seeds)}, "
        f"~{n} parsed answers per scenario and seed."
    ]
    for r in per_t.itertuples():
        verdict = "more than" if r.pooled_p_overdispersion < ALPHA else "consistent with"
        lines.append(
            f"At T={_t(r.temperature)} the teacher's P(C) moves by {fmt(r.mean_seed_sd, 3)} on average "
            f"between seeds, {fmt(r.mean_expected_sd, 3)} expected from sampling {n} answers alone: "
            f"{verdict} sampling noise (pooled test p={pvalue(r.pooled_p_overdispersion)}; "
            f"{r.scenarios_overdispersed}/{r.scenarios} scenarios at p<{ALPHA}). Mean P(C) "
            f"{fmt(r.mean_p_c, 3)}, parse rate {pct(r.mean_parse_rate * 100, 1)}."
        )
    if pc["temperature"].nunique() >= 2:
        rng = pc.drop_duplicates("scenario").set_index("scenario")["between_temperature_range"]
        lo, hi = pc["temperature"].min(), pc["temperature"].max()
        lines.append(
            f"Between temperatures {_t(lo)} and {_t(hi)} a scenario's seed-mean P(C) moves by "
            f"{fmt(float(rng.mean()), 3)} on average (most: {rng.idxmax()}, {fmt(float(rng.max()), 3)}; "
            f"least: {rng.idxmin()}, {fmt(float(rng.min()), 3)})."
        )
    don = table[table["metric"] == "mean_donation"]
    for scen, g in don.groupby("scenario", sort=False):
        parts = [f"T={_t(r.temperature)}: ${fmt(r.mean, 2)} ± {fmt(r.seed_sd, 2)}" for r in g.itertuples()]
        lines.append(f"{scen}: mean donation (± seed sd) {'; '.join(parts)}.")
    return lines


def write_markdown(
    path: Path,
    summary: list[str],
    table: pd.DataFrame,
    per_t: pd.DataFrame,
    points: list[Point],
    meta: dict[str, Any],
    missing: list[str] | None = None,
) -> None:
    """``teacher_spread.md``: the summary, how to read it, the two tables, the figure, and where every
    (temperature, seed)'s answers are (``missing``: the sweep's jobs without teacher data)."""
    temps = sorted(table["temperature"].unique())
    lines = ["# Teacher temperature-variance analysis", "", *(f"- {s}" for s in summary), ""]
    if meta.get("stand_in"):
        lines += [
            "> The teacher is the offline **stand-in** (`teacher=reference`), not a language model: its "
            "seeds differ only by sampling by construction, and temperature rescales its logit by 0.8/T.",
            "",
        ]
    lines += [
        "How to read: *seed sd* is the standard deviation across seeds of a scenario's P(C); *expected sd* "
        "is what it would be on average if the seeds differed only by drawing n answers "
        "(binomial SE sqrt(p(1-p)/n) times c4(k), the small-sample bias of an sd over k seeds). A seed "
        "sd well above the expected one (small *p*) means the teacher signal is less stable than its "
        "sample size suggests. *Range over T* is max - min of the seed mean across temperatures.",
        "",
        "## Per temperature (P(C) scenarios)",
        "",
    ]
    pt = pd.DataFrame(
        {
            "T": [_t(t) for t in per_t["temperature"]],
            "scenarios": per_t["scenarios"],
            "mean P(C)": per_t["mean_p_c"].map(lambda x: fmt(x, 3)),
            "mean seed sd": per_t["mean_seed_sd"].map(lambda x: fmt(x, 3)),
            "mean expected sd": per_t["mean_expected_sd"].map(lambda x: fmt(x, 3)),
            "mean sampling SE": per_t["mean_sampling_se"].map(lambda x: fmt(x, 3)),
            "pooled p": per_t["pooled_p_overdispersion"].map(pvalue),
            f"scenarios p<{ALPHA}": per_t["scenarios_overdispersed"],
            "parse rate": per_t["mean_parse_rate"].map(lambda x: pct(x * 100, 1)),
        }
    )
    lines += [
        *md_table(pt).splitlines(),
        "",
        "## Per scenario: mean ± seed sd (expected sd from sampling)",
        "",
    ]
    wide = []
    for scen, g in table.groupby("scenario", sort=False):
        row = {"scenario": scen, "metric": g["metric"].iloc[0]}
        by_t = {r.temperature: r for r in g.itertuples()}
        for t in temps:
            r = by_t.get(t)
            row[f"T={_t(t)}"] = (
                f"{fmt(r.mean, 3)} ± {fmt(r.seed_sd, 3)} ({fmt(r.expected_sd, 3)})" if r is not None else "–"
            )
        row["range over T"] = fmt(float(g["between_temperature_range"].iloc[0]), 3)
        row["parse rate"] = pct(float((g["parse_rate"] * g["n_seeds"]).sum() / g["n_seeds"].sum()) * 100, 1)
        wide.append(row)
    lines += [*md_table(pd.DataFrame(wide)).splitlines(), "", f"![P(C) against temperature]({PNG_FILE})", ""]
    lines += [
        "## Provenance",
        "",
        f"Sweep `{meta.get('sweep', '?')}`. Teacher: {meta.get('teacher', '?')}. Every (temperature, seed) "
        "is one job of the sweep and one generate artifact, content-addressed in the cache (a rerun of the "
        "sweep reuses it; so does `python launch.py` with the same teacher settings). Per-seed values are "
        "in the CSV's `values` column.",
        "",
    ]
    prov = pd.DataFrame(
        {
            "T": [_t(p.temperature) for p in points],
            "seed": [p.seed for p in points],
            "job": [f"`{p.folder.name}`" for p in points],
            "artifact": [f"`{p.artifact.path}`" for p in points],
            "generated by the job": ["no (reused)" if p.artifact.reused else "yes" for p in points],
        }
    )
    lines += [*md_table(prov).splitlines(), ""]
    if missing:
        lines += ["## Jobs without teacher data (left out)", "", *(f"- {m}" for m in missing), ""]
    from stratdistill.artifacts import atomic_write_text

    atomic_write_text(path, "\n".join(lines))


def write_figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(table["scenario"]))
    ncols = min(5, len(scenarios)) or 1
    nrows = math.ceil(len(scenarios) / ncols) or 1
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.6 * ncols, 2.2 * nrows + 0.6), squeeze=False, constrained_layout=True
    )
    for ax in axes.flat[len(scenarios) :]:
        ax.set_visible(False)
    for ax, scen in zip(axes.flat, scenarios, strict=False):
        g = table[table["scenario"] == scen].sort_values("temperature")
        t = g["temperature"].to_numpy(float)
        mean = g["mean"].to_numpy(float)
        band = np.nan_to_num(g["sampling_se"].to_numpy(float))
        ax.fill_between(t, mean - band, mean + band, color="0.85", lw=0, label="± sampling SE")
        for ti, vals in zip(t, g["values"], strict=True):
            v = [float(x) for x in vals.split()]
            ax.plot([ti] * len(v), v, ".", color="tab:blue", alpha=0.35, ms=4)
        ax.errorbar(
            t, mean, yerr=np.nan_to_num(g["seed_sd"].to_numpy(float)), fmt="o-", ms=4, capsize=3,
            color="tab:blue", label="mean ± seed sd",
        )  # fmt: skip
        donation = g["metric"].iloc[0] == "mean_donation"
        if not donation:
            ax.set_ylim(-0.03, 1.03)
        ax.set_title(scen, fontsize=9)
        ax.set_xticks(t, [_t(x) for x in t], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel("mean donation ($)" if donation else "P(C)", fontsize=8)
    axes.flat[0].legend(fontsize=6, loc="best")
    fig.supxlabel("teacher temperature", fontsize=9)
    fig.suptitle("Teacher P(C) per scenario: seed mean ± sd across seeds (dots: seeds)", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)
