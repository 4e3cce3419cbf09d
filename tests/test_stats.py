"""The uncertainty of a split's gap closed (bootstrap) and the game-vs-context decomposition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratdistill.metrics_cli import summarise_counts
from stratdistill.reference import paper_counts
from stratdistill.stats import bootstrap_ci, variance_decomposition

N_BOOT = 200


def test_bootstrap_deterministic_for_a_seed():
    df = paper_counts()
    df = df[df["split"] == "heldout_contexts"]
    a = bootstrap_ci(df, "median", n_boot=N_BOOT, seed=3)
    b = bootstrap_ci(df, "median", n_boot=N_BOOT, seed=3)
    c = bootstrap_ci(df, "median", n_boot=N_BOOT, seed=4)
    assert a == b
    assert (a["low"], a["high"]) != (c["low"], c["high"])
    assert a["estimate"] == pytest.approx(13.66, abs=0.005)
    assert a["low"] < a["estimate"] < a["high"]
    # a wider level gives a wider interval from the same replicates
    w = bootstrap_ci(df, "median", n_boot=N_BOOT, seed=3, level=0.99)
    assert w["low"] <= a["low"] and w["high"] >= a["high"]
    # the same interval through summarise_counts
    s = summarise_counts(df, n_boot=N_BOOT, seed=3)
    assert s["groups"]["heldout_contexts"]["median_gap_closed"]["low"] == a["low"]


def test_bootstrap_skips_zero_gap_scenarios():
    rows = [
        # base == teacher and both constant: the gap closed is NaN in every replicate
        {"base_c": 0, "base_n": 10, "tuned_c": 5, "tuned_n": 10, "teacher_c": 0, "teacher_n": 10},
        {"base_c": 100, "base_n": 100, "tuned_c": 50, "tuned_n": 100, "teacher_c": 0, "teacher_n": 100},
    ]
    ci = bootstrap_ci(rows, "mean", n_boot=50, seed=0)
    assert ci["estimate"] == 50.0 and ci["n_valid"] == 50
    assert ci["low"] <= 50.0 <= ci["high"]
    with pytest.raises(ValueError):
        bootstrap_ci(rows, "mode", n_boot=10)  # type: ignore[arg-type]


def test_variance_decomposition_game_only():
    games = {"prison": 0.2, "snowdrift": 0.4, "staghunt": 0.7, "delight": 0.9}
    rows = [{"context": c, "game": g, "p_c": v} for c in ("IR", "biz", "team") for g, v in games.items()]
    vd = variance_decomposition(pd.DataFrame(rows))
    assert vd["share_game"] == pytest.approx(1.0)
    assert vd["share_context"] == pytest.approx(0.0, abs=1e-12)
    assert vd["share_residual"] == pytest.approx(0.0, abs=1e-12)
    assert (vd["n_contexts"], vd["n_games"]) == (3, 4)


def test_variance_decomposition_additive_by_hand():
    # y = a_context + b_game + e: shares from the textbook formulas
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=5), rng.normal(size=4)
    y = a[:, None] + b[None, :] + rng.normal(scale=0.3, size=(5, 4))
    rows = [{"context": f"c{i}", "game": f"g{j}", "v": y[i, j]} for i in range(5) for j in range(4)]
    vd = variance_decomposition(pd.DataFrame(rows), value="v")
    ss_t = ((y - y.mean()) ** 2).sum()
    assert vd["share_context"] == pytest.approx(4 * ((y.mean(axis=1) - y.mean()) ** 2).sum() / ss_t)
    assert vd["share_game"] == pytest.approx(5 * ((y.mean(axis=0) - y.mean()) ** 2).sum() / ss_t)
    assert vd["share_context"] + vd["share_game"] + vd["share_residual"] == pytest.approx(1.0)
    assert 0 < vd["p_context"] < 1 and 0 < vd["p_game"] < 1
    with pytest.raises(ValueError, match="missing"):
        variance_decomposition(pd.DataFrame(rows[:-1]), value="v")
    with pytest.raises(ValueError, match="more than once"):
        variance_decomposition(pd.DataFrame([*rows, rows[0]]), value="v")
