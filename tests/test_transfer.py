"""Baselines and shift-proof metrics: what a predictor that learned nothing scores, and metrics it cannot
fake."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stratdistill.transfer import beats_baselines, game_effects, predictions, score, transfer_table

CONTEXTS = np.repeat(["IR", "biz", "team"], 4)
GAMES = np.tile(["prison", "delight", "staghunt", "snowdrift"], 3)
TEACHER = np.array([0.26, 0.35, 0.40, 0.36, 0.31, 0.46, 0.35, 0.35, 0.67, 0.77, 0.73, 0.67])
BASE = np.full(12, 0.85) + np.linspace(-0.02, 0.02, 12)


def _frame(tuned: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "split": "in_sample",
            "context": CONTEXTS,
            "game": GAMES,
            "base": BASE,
            "tuned": tuned,
            "teacher": TEACHER,
        }
    )


def test_a_student_equal_to_the_teacher_scores_perfectly_and_beats_every_baseline() -> None:
    table = transfer_table(_frame(TEACHER.copy()))
    tuned = table.set_index("predictor").loc["tuned"]
    assert tuned["mae"] == pytest.approx(0) and tuned["bridging_mean"] == pytest.approx(1)
    assert tuned["r"] == pytest.approx(1) and tuned["game_r"] == pytest.approx(1)
    assert tuned["game_slope"] == pytest.approx(1) and tuned["change_slope"] == pytest.approx(1)
    assert beats_baselines(table, "in_sample", "mae") == {
        "constant": True,
        "shift": True,
        "context_mean": True,
    }


def test_a_uniform_shift_scores_well_on_the_papers_mean_but_not_on_shift_proof_metrics() -> None:
    """The reviewer's point: moving every scenario by the same amount toward D closes a big share of the
    mean gap, yet its change slope is 0 and it reproduces no game effect the base did not have."""
    shift = BASE - 0.45
    m = score(BASE, shift, TEACHER, CONTEXTS)
    assert m["gap_mean"] > 60
    assert m["change_slope"] == pytest.approx(0, abs=1e-12)
    base_game_r = score(BASE, BASE, TEACHER, CONTEXTS)["game_r"]
    assert m["game_r"] == pytest.approx(base_game_r)


def test_predictors_are_built_from_the_students_own_numbers() -> None:
    tuned = TEACHER * 0.5 + 0.3
    p = predictions(BASE, tuned, CONTEXTS)
    assert np.allclose(p["constant"], tuned.mean())
    assert np.allclose(p["shift"], BASE + (tuned - BASE).mean())
    assert np.allclose(p["context_mean"][:4], tuned[:4].mean())
    assert np.allclose(game_effects(p["context_mean"], CONTEXTS), 0)


def test_undefined_metrics_are_nan_not_zero() -> None:
    m = score(BASE, np.full(12, 0.5), TEACHER, CONTEXTS)
    assert math.isnan(m["r"]) and math.isnan(m["game_r"])  # a constant has no correlation
    single = score(np.array([0.8]), np.array([0.6]), np.array([0.3]), np.array(["-"]))
    assert math.isnan(single["game_r"]) and math.isnan(single["change_slope"])
    # a context with one scenario has no game effect (the donation game)
    assert math.isnan(game_effects(np.array([1.0, 2.0, 5.0]), np.array(["a", "a", "-"]))[2])


def test_tiny_game_effects_show_as_a_small_slope_even_when_correlated() -> None:
    """A student whose game effects point the right way at a tenth of the size: r is high, slope is not."""
    ctx_mean = pd.Series(TEACHER).groupby(CONTEXTS).transform("mean").to_numpy()
    tuned = ctx_mean + 0.1 * (TEACHER - ctx_mean)
    m = score(BASE, tuned, TEACHER, CONTEXTS)
    assert m["game_r"] == pytest.approx(1) and m["game_slope"] == pytest.approx(0.1)


def test_too_few_scenarios_are_not_compared_with_baselines() -> None:
    table = transfer_table(_frame(TEACHER.copy()).iloc[:2])
    assert beats_baselines(table, "in_sample") == {}


def test_the_papers_mean_ranks_a_constant_above_a_student_that_matches_the_teacher() -> None:
    """Why the bounded metrics lead: where base and teacher are close (friends, teams), a constant that
    overshoots scores hundreds of percent; a student equal to the teacher scores exactly 100."""
    base = np.array([0.85, 0.85, 0.85, 0.86, 0.84, 0.85])
    teacher = np.array([0.30, 0.35, 0.40, 0.80, 0.78, 0.75])
    contexts = np.array(["a", "a", "a", "b", "b", "b"])
    table = transfer_table(
        pd.DataFrame({"split": "s", "context": contexts, "base": base, "tuned": teacher, "teacher": teacher})
    ).set_index("predictor")
    assert table.at["tuned", "gap_mean"] == pytest.approx(100)
    assert table.at["constant", "gap_mean"] > 200
    assert table.at["tuned", "mae"] < table.at["constant", "mae"]
