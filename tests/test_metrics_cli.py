"""The metrics command line, pinned to the paper's published counts, and its statistics."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from stratdistill.metrics import js_divergence, two_proportion_ztest
from stratdistill.metrics_cli import main
from stratdistill.reference import paper_counts

N_BOOT = 200


def _write_counts(path: Path, every_n_300: bool = False) -> Path:
    df = paper_counts().reset_index()
    if every_n_300:
        for m in ("base", "tuned", "teacher"):
            df[f"{m}_n"] = 300
    df.to_csv(path, index=False)
    return path


def _cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratdistill.metrics", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture(scope="module")
def cli_json(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, dict]:
    """The CLI's --json output on the paper's counts, with the true n (False) and every n = 300 (True)."""
    tmp = tmp_path_factory.mktemp("counts")
    out = {}
    for every_n_300 in (False, True):
        csv = _write_counts(tmp / f"counts_{every_n_300}.csv", every_n_300)
        res = _cli(csv, "--json", "--n-boot", N_BOOT, "--seed", 7, cwd=tmp)
        assert res.returncode == 0, res.stderr
        out[every_n_300] = json.loads(res.stdout)
    return out


@pytest.mark.parametrize(
    ("split", "every_n_300", "mean", "median"),
    [
        ("in_sample", False, 46.65, 32.33),
        ("in_sample", True, 46.26, 32.33),
        ("heldout_contexts", False, 18.26, 13.66),
        ("heldout_contexts", True, 17.90, 13.66),
        ("doubled_games", False, 39.95, 17.39),
    ],
)
def test_cli_reproduces_paper_headlines(cli_json, split: str, every_n_300: bool, mean: float, median: float):
    g = cli_json[every_n_300]["groups"][split]
    assert round(g["mean_gap_closed"]["estimate"], 2) == mean
    assert round(g["median_gap_closed"]["estimate"], 2) == median
    assert g["n_scenarios"] == g["n_defined"] == (12 if split == "heldout_contexts" else 20)
    for stat in ("mean_gap_closed", "median_gap_closed"):
        ci = g[stat]
        assert ci["low"] <= ci["estimate"] <= ci["high"]
        assert ci["n_valid"] == N_BOOT


def test_cli_json_per_scenario_rows(cli_json):
    rows = {r["scenario"]: r for r in cli_json[False]["scenarios"]}
    assert len(rows) == 52
    ir = rows["IR_prison"]
    assert ir["group"] == "in_sample"
    assert ir["base_p"] == pytest.approx(254 / 300) and ir["teacher_p"] == pytest.approx(77 / 300)
    assert ir["gap_closed"] == pytest.approx((221 - 254) / (77 - 254) * 100)
    assert ir["z_base_tuned"] == pytest.approx(3.3173, abs=1e-3)
    # each row's own n: roomsharing_prison base had 295 answers, friendsharing_snowdrift teacher 299
    assert rows["roomsharing_prison"]["base_p"] == pytest.approx(261 / 295)
    assert rows["friendsharing_snowdrift"]["teacher_p"] == pytest.approx(231 / 299)
    assert rows["team_delight"]["gap_closed"] == pytest.approx(200.0)


def test_cli_json_nan_is_null(tmp_path: Path):
    csv = tmp_path / "c.csv"
    csv.write_text(
        "scenario,base_c,base_n,tuned_c,tuned_n,teacher_c,teacher_n\nflat,150,300,160,300,150,300\n"
    )
    res = _cli(csv, "--json", "--n-boot", 20, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "NaN" not in res.stdout
    out = json.loads(res.stdout)
    assert list(out["groups"]) == ["all"]
    assert out["scenarios"][0]["gap_closed"] is None
    assert out["groups"]["all"]["mean_gap_closed"]["estimate"] is None


def test_cli_text_output(tmp_path: Path):
    csv = _write_counts(tmp_path / "c.csv")
    res = _cli(csv, "--n-boot", 50, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    ir = next(line for line in lines if line.startswith("IR_prison "))
    assert "18.64" in ir and "3.32" in ir
    summary = next(line for line in lines if line.startswith("in_sample ") and "46.65" in line)
    assert "32.33" in summary
    assert any(line.startswith("heldout_contexts ") and "18.26" in line for line in lines)


def test_two_proportion_ztest_by_hand():
    # IR_prison, base 254/300 vs tuned 221/300: pooled p = 475/600
    p = 475 / 600
    z_hand = (254 / 300 - 221 / 300) / math.sqrt(p * (1 - p) * (2 / 300))
    z, pval = two_proportion_ztest(254, 300, 221, 300)
    assert z == pytest.approx(z_hand, rel=1e-12)
    assert z == pytest.approx(3.3173, abs=1e-4)
    assert pval == pytest.approx(math.erfc(z_hand / math.sqrt(2)), rel=1e-9)
    assert two_proportion_ztest(221, 300, 254, 300)[0] == pytest.approx(-z)
    assert two_proportion_ztest(0, 300, 0, 200) == (0.0, 1.0)
    assert two_proportion_ztest(300, 300, 50, 50) == (0.0, 1.0)
    with pytest.raises(ValueError):
        two_proportion_ztest(301, 300, 1, 300)
    with pytest.raises(ValueError):
        two_proportion_ztest(0, 0, 1, 300)


def test_js_divergence_bounds():
    assert js_divergence([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_divergence({5: 226, 7: 74}, {5: 226, 7: 74}) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence({0: 10}, {10: 3}) == pytest.approx(1.0)
    mid = js_divergence({5: 162, 7: 138}, {7: 300})
    assert 0 < mid < 1
    assert js_divergence([2, 2], [1, 1]) == pytest.approx(0.0, abs=1e-12)  # counts are normalised
    with pytest.raises(ValueError):
        js_divergence([1, 0], [1, 0, 0])


HEADER = "scenario,base_c,base_n,tuned_c,tuned_n,teacher_c,teacher_n"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("scenario,base_c,base_n,tuned_c,teacher_c,teacher_n\nx,1,10,1,1,10\n", ["tuned_n"]),
        (f"{HEADER}\nx,1,0,1,10,1,10\n", ["'base_n'", ">= 1", "row 1"]),
        (f"{HEADER}\nx,1,10,1,10,1,10\ny,1,10,11,10,1,10\n", ["'tuned_c'", "row 2", "'y'", "0 to tuned_n"]),
        (f"{HEADER}\nx,1,10,abc,10,1,10\n", ["'tuned_c'", "'abc'", "whole number"]),
        (f"{HEADER}\nx,1.5,10,1,10,1,10\n", ["'base_c'", "'1.5'"]),
        (f"{HEADER}\nx,1,10,1,10,,10\n", ["'teacher_c'", "whole number"]),
        (f"{HEADER}\n", ["no data rows"]),
        ("", ["empty file", "scenario"]),
        (f"{HEADER}\nx,1,10,1,10,1,10\nx,1,10,1,10,1,10\n", ["'scenario'", "twice"]),
    ],
)
def test_bad_input_exits_2_naming_the_problem(tmp_path: Path, capsys, text: str, needles: list[str]):
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    assert main([str(csv), "--n-boot", "10"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    for needle in needles:
        assert needle in err


def test_bad_input_through_subprocess_has_no_traceback(tmp_path: Path):
    csv = tmp_path / "bad.csv"
    csv.write_text(f"{HEADER}\nIR_prison,254,300,221,-3,77,300\n")
    res = _cli(csv, "--json", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stdout == ""
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "'tuned_n'" in res.stderr and "IR_prison" in res.stderr
    res = _cli(tmp_path / "missing.csv", cwd=tmp_path)
    assert res.returncode == 2 and "no such file" in res.stderr and "Traceback" not in res.stderr


def test_paper_counts_scored_against_no_learning_baselines(cli_json):
    """On the published counts a uniform shift of the base beats the published student on the paper's
    mean gap closed in-sample (97 vs 46.65), and a constant does too; the bounded and shift-proof metrics
    tell them apart: the shift's change slope is 0 and its bridging is negative."""
    b = cli_json[False]["groups"]["in_sample"]["baselines"]
    assert b["tuned"]["gap_mean"] == pytest.approx(46.65, abs=0.01)
    assert b["shift"]["gap_mean"] == pytest.approx(97.31, abs=0.01)
    assert b["constant"]["gap_mean"] > b["tuned"]["gap_mean"]
    assert b["shift"]["change_slope"] == pytest.approx(0.0, abs=1e-9)
    assert b["shift"]["bridging_mean"] < 0 < b["tuned"]["bridging_mean"]
    assert b["constant"]["r"] is None  # a constant has no correlation: null, never 0
    assert b["tuned"]["game_r"] == pytest.approx(0.332, abs=0.001)


def test_baselines_in_the_text_output(tmp_path: Path):
    res = _cli(_write_counts(tmp_path / "c.csv"), "--n-boot", 20, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    shift = next(ln for ln in res.stdout.splitlines() if ln.startswith("in_sample ") and " shift " in ln)
    assert "97.31" in shift
