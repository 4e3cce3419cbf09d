"""The report says what its numbers can carry: undefined values as n/a, baselines beside the paper's
metric, published and recomputed paper figures each under its name, honest wording."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from conftest import compose_cfg
from stratdistill.report import summary_table, write_report
from stratdistill.report_figures import gap_closed_bars
from stratdistill.results import RESULTS_CSV, assemble, read_results, two_by_two
from stratdistill.scenarios import PublicGoodsGame, load_library, resolve_split

META = {
    "teacher": "`reference` — stand-in",
    "student": "`s`",
    "estimator": "forced choice",
    "data": "d",
    "training": "t",
    "stand_in": True,
    "students_sampled": True,
    "estimator_method": "sampled",
    "seed": 0,
    "unparsed": "trained on verbatim (data.parse_failures=keep) and left out of the rates",
    "teacher_parse": [{"scenario": "IR_prison", "answers": 300, "parsed": 290, "failed": 10}],
}


def synthetic_results(constant_student: bool = False) -> pd.DataFrame:
    """The paper split with sampled students; IR_prison's base equals its teacher (gap undefined) and
    the tuned student parsed no answer on sports_prison (its P(C) is undefined)."""
    library = load_library([], None)
    _, evals = resolve_split(library, compose_cfg().split)
    rng = np.random.default_rng(0)
    teacher, base, tuned = {}, {}, {}
    for sc in {s.key: s for ss in evals.values() for s in ss}.values():
        if isinstance(sc.game, PublicGoodsGame):
            teacher[sc.key] = {
                "n": 300,
                "n_ok": 300,
                "n_failed": 0,
                "mean_donation": 7.0,
                "distribution": {7: 300},
            }
            base[sc.key] = {"mean_donation": 5.0, "distribution": {"5": 1.0}, "valid_mass": 1.0}
            tuned[sc.key] = {"mean_donation": 6.0, "distribution": {"6": 1.0}, "valid_mass": 1.0}
            continue
        c = int(rng.integers(20, 280))
        teacher[sc.key] = {"n": 300, "n_ok": 300, "n_failed": 0, "c": c, "p_c": c / 300}
        b = 250 if sc.key != "IR_prison" else c
        u = 200 if constant_student else int(b + 0.5 * (c - b))
        base[sc.key] = {"c": b, "n_ok": 300, "p_c": b / 300, "valid_mass": 1.0}
        tuned[sc.key] = {"c": u, "n_ok": 300, "p_c": u / 300, "valid_mass": 1.0}
    tuned["sports_prison"] = {"c": None, "n_ok": 0, "p_c": None, "valid_mass": 0.0}
    return assemble(evals, teacher, base, tuned)


def test_undefined_values_are_na_and_counted(tmp_path: Path) -> None:
    results = synthetic_results()
    row = results.set_index("scenario")
    assert math.isnan(row.loc["IR_prison", "gap_closed"])  # base == teacher: no gap
    assert math.isnan(row.loc["sports_prison", "gap_closed"])  # the student gave no parseable answer
    assert row.loc["sports_prison", "js_tuned_teacher"] is None or math.isnan(
        row.loc["sports_prison", "js_tuned_teacher"]
    )
    summary = summary_table(results).set_index("split")
    assert summary.loc["in_sample", "scenarios (gap defined)"] == "20 (19)"
    assert summary.loc["heldout_contexts", "scenarios (gap defined)"] == "12 (11)"
    text = write_report(results, META, tmp_path).read_text()
    assert "undefined (n/a) in 1 scenario(s)" in text
    assert "| IR_prison |" in text and "| n/a |" in text


def test_undefined_gaps_are_not_drawn_as_zero_bars(tmp_path: Path, monkeypatch) -> None:
    results = synthetic_results()
    results["gap_closed_low"] = results["gap_closed_high"] = math.nan
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    df = results[results["split"] == "in_sample"]
    gap_closed_bars(df, "in_sample", tmp_path / "bars.png")
    (ax,) = figures[0].axes
    assert len(ax.patches) == df["gap_closed"].notna().sum() == 19
    assert any(t.get_text() == "n/a" for t in ax.texts)


def test_paper_figures_are_named_published_and_recomputed(tmp_path: Path) -> None:
    summary = summary_table(synthetic_results()).set_index("split")
    assert summary.loc["in_sample", "paper: published mean %"] == pytest.approx(46.26)
    assert summary.loc["in_sample", "paper: mean % recomputed (true n)"] == pytest.approx(46.65, abs=0.01)
    assert summary.loc["heldout_contexts", "paper: published mean %"] == pytest.approx(17.90)
    assert summary.loc["heldout_contexts", "paper: mean % recomputed (true n)"] == pytest.approx(
        18.26, abs=0.01
    )
    # doubled games now have their paper column too
    assert summary.loc["doubled_games", "paper: published mean %"] == pytest.approx(39.95)


def test_summary_names_a_baseline_that_beats_the_student(tmp_path: Path) -> None:
    text = write_report(synthetic_results(constant_student=True), META, tmp_path).read_text()
    assert "**the student does not beat" in text
    assert (tmp_path / "baselines.csv").is_file()
    table = pd.read_csv(tmp_path / "baselines.csv")
    assert set(table["predictor"]) == {"tuned", "constant", "shift", "context_mean"}


def test_wording_follows_the_run(tmp_path: Path) -> None:
    text = write_report(synthetic_results(), META, tmp_path).read_text()
    assert "trained on verbatim (data.parse_failures=keep)" in text  # not "left out of training"
    assert "expected rates" in text and "cannot show transfer of reasoning" in text
    assert "exactly the published" not in text
    assert "**One seed** (seed=0)" in text and "sweep=seeds" in text


def test_results_csv_names_the_metric_gap_closed_and_old_columns_still_read(tmp_path: Path) -> None:
    write_report(synthetic_results(), META, tmp_path)
    written = pd.read_csv(tmp_path / RESULTS_CSV)
    assert {"gap_closed", "gap_closed_low", "gap_closed_high", "paper_gap_closed"} <= set(written.columns)
    assert not any("improvement" in c for c in written.columns)
    old = written.rename(
        columns={
            "gap_closed": "improvement",
            "gap_closed_low": "improvement_low",
            "gap_closed_high": "improvement_high",
            "paper_gap_closed": "paper_improvement",
        }
    )
    old.to_csv(tmp_path / "old.csv", index=False)
    pd.testing.assert_frame_equal(read_results(tmp_path / "old.csv"), written)


def test_two_by_two_leaves_out_the_public_goods_rows() -> None:
    results = synthetic_results()
    two = two_by_two(results)
    assert set(two["kind"]) == {"2x2"}
    assert len(two) == len(results) - (results["kind"] == "public_goods").sum() > 0
