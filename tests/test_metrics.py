"""The paper's metric, pinned to its published headline figures."""

from __future__ import annotations

import math

import pytest

from stratdistill.metrics import bridging, improvement, split_summary
from stratdistill.reference import paper_counts, paper_mean_donation


def _split_improvements(split: str, every_n_300: bool) -> list[float]:
    df = paper_counts()
    df = df[df["split"] == split]
    out = []
    for _, r in df.iterrows():
        n = {m: 300 if every_n_300 else r[f"{m}_n"] for m in ("base", "tuned", "teacher")}
        out.append(
            improvement(r["base_c"] / n["base"], r["tuned_c"] / n["tuned"], r["teacher_c"] / n["teacher"])
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
    s = split_summary(_split_improvements(split, every_n_300))
    assert round(s["mean"], 2) == mean
    assert round(s["median"], 2) == median


def test_donation_game_improvement() -> None:
    base, tuned, teacher = (paper_mean_donation(m) for m in ("base", "tuned", "teacher"))
    assert round(base, 2) == 5.49 and round(tuned, 2) == 5.92 and teacher == 7.0
    assert round(improvement(base, tuned, teacher), 1) == 28.3


def test_improvement_and_bridging_edge_cases() -> None:
    assert improvement(0.8, 0.8, 0.2) == 0
    assert improvement(0.8, 0.2, 0.2) == 100
    assert improvement(0.8, 0.9, 0.2) < 0
    assert math.isnan(improvement(0.5, 0.6, 0.5))
    assert bridging(0.8, 0.0, 0.2) < improvement(0.8, 0.0, 0.2) / 100  # overshoot counts as a miss
    assert bridging(0.8, 0.2, 0.2) == 1
    assert split_summary([1.0, math.nan, 3.0]) == {"mean": 2.0, "median": 2.0, "n": 2}
