"""The report's plain-language summary: what a reader can take away without reading the tables.

Every sentence states a figure together with what it must be compared with: a gap closed next to the
no-learning baselines that score on the same metric, a game effect's correlation next to its size, an
interval next to the sources of variance it covers, and a stand-in teacher's figures next to what they
cannot show.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from stratdistill.formatting import fmt, pct
from stratdistill.results import two_by_two
from stratdistill.transfer import describe

VALID_MASS_FLOOR = 0.95  # below this, the estimate covers too little of the model to be read alone


def split_sentence(split: str, df: pd.DataFrame, table: pd.DataFrame, summary_row: dict[str, Any]) -> str:
    d = describe(table, split)
    n, defined = len(df), int(df["gap_closed"].notna().sum())
    toward = int((df["bridging"] > 0).sum())
    text = (
        f"- **{split}** ({n} scenario{'' if n == 1 else 's'}): the tuned student moved toward the teacher in "
        f"{toward} of {n}; distance to the teacher (mean absolute error) {fmt(summary_row['base MAE'], 3)} "
        f"for the base, {fmt(summary_row['tuned MAE'], 3)} tuned; median gap closed {pct(d['gap_median'])}, "
        f"mean bridging {fmt(d['bridging_mean'])}."
    )
    beats = d["beats_gap"]
    if not beats:
        text += (
            f" With {n} scenario(s) no-learning baselines coincide with the student; paper's mean gap closed "
            f"{pct(d['gap_mean'])}."
        )
    else:
        text += (
            f" On the paper's metric (mean gap closed) it scores {pct(d['gap_mean'])}; with no learning, a "
            f"constant at the tuned mean scores {pct(d['constant_gap'])} and a uniform shift of the base "
            f"{pct(d['shift_gap'])}"
        )
        lost = [k for k, won in beats.items() if won is not True and k in ("constant", "shift")]
        text += (
            f": **the student does not beat {' or '.join(lost)} on this metric**"
            if lost
            else ": the student beats both"
        )
        closer = d["beats_mae"]
        mae_lost = [k for k, won in closer.items() if won is not True and k in ("constant", "shift")]
        text += (
            f"; on distance to the teacher it does not beat {' or '.join(mae_lost)} either, so these figures "
            "show no learning beyond a uniform move."
            if mae_lost and lost
            else f"; on distance to the teacher it does not beat {' or '.join(mae_lost)}."
            if mae_lost
            else "; on distance to the teacher it beats both"
            + (
                " (the paper's mean rewards overshooting where base and teacher are close, which a constant "
                "does and a student that matches the teacher does not)."
                if lost
                else "."
            )
        )
    if defined < n:
        text += f" The gap is undefined (n/a) in {n - defined} scenario(s), left out of the means."
    return text


def game_sentence(split: str, table: pd.DataFrame) -> str | None:
    d = describe(table, split)
    if not math.isfinite(d["game_slope"]) and not math.isfinite(d["game_r"]):
        return None
    size = d["game_slope"]
    verdict = (
        "it has not learned the teacher's game effects"
        if not math.isfinite(size) or size < 0.25 or not math.isfinite(d["game_r"]) or d["game_r"] < 0.5
        else "it reproduces part of the teacher's game effects"
    )
    return (
        f"- **Game effects ({split})**: within each context, the tuned student's differences between games "
        f"correlate r = {fmt(d['game_r'])} with the teacher's, at {fmt(size)} of their size (slope; 1 = full "
        f"size): {verdict}."
    )


def validity_sentence(results: pd.DataFrame, method: str) -> str:
    two = two_by_two(results)
    if two.empty:
        return ""
    low = {
        m: two.loc[two[f"{m}_valid_mass"] < VALID_MASS_FLOOR, "scenario"].unique() for m in ("base", "tuned")
    }
    text = (
        f"- **What the estimate covers** ({method}): the options hold {fmt(two['base_valid_mass'].min())}–"
        f"{fmt(two['base_valid_mass'].max())} of the base student's probability and "
        f"{fmt(two['tuned_valid_mass'].min())}–{fmt(two['tuned_valid_mass'].max())} of the tuned student's "
        "(2x2 scenarios)."
    )
    short = [f"{m} in {len(v)} scenario(s)" for m, v in low.items() if len(v)]
    if short:
        text += f" Below {VALID_MASS_FLOOR}: {', '.join(short)}; read those values with that in mind."
    return text


def stand_in_sentence() -> str:
    return (
        "- **The teacher is an offline stand-in, not a language model.** Its actions are drawn at the "
        "published LLaMa2-70b rates (expected rates: each scenario's share is a binomial draw around "
        "them) and its motivations are composed from templates. These figures can show whether the "
        "student absorbs a known per-scenario behaviour and how the pipeline's metrics behave; they "
        "cannot show transfer of reasoning (template motivations carry none) and are not a replication "
        "of the paper's result."
    )


def seed_sentence(seed: int, students_sampled: bool) -> str:
    noise = "the teacher's and the students' sampled answers" if students_sampled else "the teacher's answers"
    return (
        f"- **One seed** (seed={seed}): the intervals resample {noise} only; they do not include the "
        "variance between training runs (seed, training subset). `python launch.py -m sweep=seeds` "
        "measures it, and the sweep comparison puts it in its intervals."
    )


def plain_summary(
    results: pd.DataFrame, summary: pd.DataFrame, table: pd.DataFrame, meta: dict[str, Any]
) -> list[str]:
    rows = {r["split"]: r for r in summary.to_dict("records")}
    lines = []
    for split, df in results.groupby("split", sort=False):
        if split in rows and not table[table["split"] == split].empty:
            lines.append(split_sentence(split, df, table, rows[split]))
    for split in ("in_sample", "heldout_contexts"):
        if split in set(table["split"]):
            sentence = game_sentence(split, table)
            if sentence:
                lines.append(sentence)
    if meta.get("estimator_method") in ("forced_choice", "forms"):
        lines.append(validity_sentence(results, meta["estimator_method"]))
    if meta.get("stand_in"):
        lines.append(stand_in_sentence())
    lines.append(seed_sentence(meta.get("seed", 0), bool(meta.get("students_sampled"))))
    return [ln for ln in lines if ln]
