"""The paper's metric, pinned to its published headline figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratdistill.metrics import bridging, gap_closed, gap_closed_array, split_summary
from stratdistill.reference import paper_counts, paper_mean_donation, paper_rate, paper_values


def _split_gaps_closed(split: str, every_n_300: bool) -> list[float]:
    df = paper_counts()
    df = df[df["split"] == split]
    out = []
    for _, r in df.iterrows():
        n = {m: 300 if every_n_300 else r[f"{m}_n"] for m in ("base", "tuned", "teacher")}
        out.append(
            gap_closed(r["base_c"] / n["base"], r["tuned_c"] / n["tuned"], r["teacher_c"] / n["teacher"])
        )
    return out


@pytest.mark.parametrize(
    ("split", "every_n_300", "mean", "median"),
    [
        ("in_sample", False, 46.65, 32.33),
        ("in_sample", True, 46.26, 32.33),
        ("heldout_contexts", False, 18.26, 13.66),
        ("heldout_contexts", True, 17.90, 13.66),
    ],
)
def test_paper_headline_figures(split: str, every_n_300: bool, mean: float, median: float) -> None:
    s = split_summary(_split_gaps_closed(split, every_n_300))
    assert round(s["mean"], 2) == mean
    assert round(s["median"], 2) == median


def test_donation_game_gap_closed() -> None:
    base, tuned, teacher = (paper_mean_donation(m) for m in ("base", "tuned", "teacher"))
    assert round(base, 2) == 5.49 and round(tuned, 2) == 5.92 and teacher == 7.0
    assert round(gap_closed(base, tuned, teacher), 1) == 28.3


def test_gap_closed_and_bridging_edge_cases() -> None:
    assert gap_closed(0.8, 0.8, 0.2) == 0
    assert gap_closed(0.8, 0.2, 0.2) == 100
    assert gap_closed(0.8, 0.9, 0.2) < 0
    assert math.isnan(gap_closed(0.5, 0.6, 0.5))
    assert bridging(0.8, 0.0, 0.2) < gap_closed(0.8, 0.0, 0.2) / 100  # overshoot counts as a miss
    assert bridging(0.8, 0.2, 0.2) == 1
    assert split_summary([1.0, math.nan, 3.0]) == {"mean": 2.0, "median": 2.0, "n": 2}
    vectorised = gap_closed_array(np.array([0.8, 0.5]), np.array([0.2, 0.6]), np.array([0.2, 0.5]))
    assert vectorised[0] == gap_closed(0.8, 0.2, 0.2) and math.isnan(vectorised[1])


def test_paper_values_is_the_one_lookup_of_published_figures() -> None:
    row = paper_counts().loc["IR_prison"]
    assert paper_values("IR_prison")["teacher"] == row["teacher_c"] / row["teacher_n"]
    assert paper_values("IR_prison")["base"] == paper_rate("IR_prison", "base")
    assert paper_values("not_published") == {"base": None, "tuned": None, "teacher": None}
    assert paper_values("donation", public_goods=True)["teacher"] == 7.0
    assert paper_values("my_own_pg", public_goods=True) == {"base": None, "tuned": None, "teacher": None}
