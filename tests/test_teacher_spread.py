"""python -m stratdistill.teacher_spread: the teacher-only temperature x seed spread analysis."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from stratdistill.teacher_spread import main, run_spread

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TEMPS = [0.4, 0.8, 1.2]
SEEDS = [0, 1, 2]
N = 40
SCENARIOS = ["IR_prison", "friendsharing_prison", "IR_staghunt", "friendsharing_staghunt"]  # split=quick


def _overrides(cache: Path) -> list[str]:
    return ["split=quick", f"data.teacher_samples={N}", f"cache_dir={cache}"]


def _argv(cache: Path, out: Path, temps=TEMPS, seeds=SEEDS) -> list[str]:
    return [
        "--temperatures",
        *map(str, temps),
        "--seeds",
        *map(str, seeds),
        "--out",
        str(out),
        "--conf",
        str(CONF),
        *_overrides(cache),
    ]


@pytest.fixture(scope="module")
def spread(tmp_path_factory):
    root = tmp_path_factory.mktemp("spread")
    result = run_spread(TEMPS, SEEDS, _overrides(root / "cache"), root / "out", str(CONF))
    return root, result


def _samples(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "samples.jsonl").read_text().splitlines() if line.strip()]


def test_one_row_per_scenario_and_temperature(spread):
    _, res = spread
    t = res.table
    assert sorted(zip(t["scenario"], t["temperature"], strict=True)) == sorted(
        (s, temp) for s in SCENARIOS for temp in TEMPS
    )
    assert (t["n_seeds"] == len(SEEDS)).all()
    assert (t["seeds"] == "0 1 2").all()
    assert (t["n_per_seed"] == N).all() and (t["parse_rate"] == 1.0).all()
    assert list(res.by_temperature["temperature"]) == TEMPS
    csv = pd.read_csv(res.files["csv"])
    assert len(csv) == len(SCENARIOS) * len(TEMPS)
    assert res.files["png"].stat().st_size > 0
    md = res.files["md"].read_text()
    assert "At T=0.8 the teacher's P(C) moves by" in md and "expected from sampling" in md
    assert len({p.artifact.key for p in res.points}) == len(TEMPS) * len(SEEDS)


def test_seed_sd_matches_the_artifacts(spread):
    _, res = spread
    by_point: dict[tuple[str, float], list[float]] = {}
    for p in res.points:
        rows = _samples(p.artifact.path)
        assert {r["temperature"] for r in rows} == {p.temperature} and {r["seed"] for r in rows} == {p.seed}
        for s in SCENARIOS:
            ok = [r for r in rows if r["scenario"] == s and r["parse_status"] == "ok"]
            by_point.setdefault((s, p.temperature), []).append(sum(r["value"] == "C" for r in ok) / len(ok))
    csv = pd.read_csv(res.files["csv"]).set_index(["scenario", "temperature"])
    for (s, temp), rates in by_point.items():
        row = res.table[(res.table["scenario"] == s) & (res.table["temperature"] == temp)].iloc[0]
        assert row["seed_sd"] == pytest.approx(statistics.stdev(rates), abs=1e-12)
        assert row["mean"] == pytest.approx(statistics.mean(rates), abs=1e-12)
        assert (row["min"], row["max"]) == (min(rates), max(rates))
        p = statistics.mean(rates)
        assert row["sampling_se"] == pytest.approx(math.sqrt(p * (1 - p) / N))
        assert csv.loc[(s, temp), "seed_sd"] == pytest.approx(statistics.stdev(rates), rel=1e-5)
    for temp, g in res.table.groupby("temperature"):
        per_t = res.by_temperature.set_index("temperature").loc[temp]
        assert per_t["mean_seed_sd"] == pytest.approx(g["seed_sd"].mean())
    spread_over_t = res.table.groupby("scenario")["mean"].agg(lambda m: m.max() - m.min())
    for r in res.table.itertuples():
        assert r.between_temperature_range == pytest.approx(spread_over_t[r.scenario])


def test_cooperation_moves_with_temperature_as_the_stand_in_documents(spread):
    """The stand-in scales its logit by 0.8 / T: P(C) moves toward 0.5 as T rises. Checked within
    sampling error of its documented probabilities (cooperation_probability), and in aggregate."""
    from stratdistill.scenarios import grid, load_library
    from stratdistill.teachers.reference import cooperation_probability

    _, res = spread
    lib = load_library()
    model = {
        (s.key, t): cooperation_probability(s, t)
        for s in grid(lib, ["IR", "friendsharing"], ["prison", "staghunt"], "test")
        for t in TEMPS
    }
    k_answers = N * len(SEEDS)
    for r in res.table.itertuples():
        p = model[(r.scenario, r.temperature)]
        assert abs(r.mean - p) < 4 * math.sqrt(p * (1 - p) / k_answers), (r.scenario, r.temperature)
    moved, expected, var = [], [], 0.0
    for s in SCENARIOS:
        lo, hi = model[(s, TEMPS[0])], model[(s, TEMPS[-1])]
        assert abs(hi - 0.5) < abs(lo - 0.5)  # the documented model itself
        sign = 1 if hi > lo else -1
        means = res.table[res.table["scenario"] == s].set_index("temperature")["mean"]
        moved.append(sign * (means[TEMPS[-1]] - means[TEMPS[0]]))
        expected.append(abs(hi - lo))
        var += (lo * (1 - lo) + hi * (1 - hi)) / k_answers
    se = math.sqrt(var) / len(SCENARIOS)  # of the mean signed movement
    assert statistics.mean(moved) > 0
    assert abs(statistics.mean(moved) - statistics.mean(expected)) < 4 * se


def test_second_invocation_reuses_every_artifact(spread, capsys):
    root, res = spread
    files = [p.artifact.path / name for p in res.points for name in ("samples.jsonl", "manifest.json")]
    before = {f: f.stat().st_mtime_ns for f in files}
    folders = sorted((root / "cache" / "generate").iterdir())
    assert main(_argv(root / "cache", root / "out2")) == 0
    out = capsys.readouterr().out
    assert f"{len(TEMPS) * len(SEEDS)} teacher datasets ({len(TEMPS) * len(SEEDS)} reused)" in out
    assert "At T=0.8 the teacher's P(C) moves by" in out and str(root / "out2" / "teacher_spread.md") in out
    assert {f: f.stat().st_mtime_ns for f in files} == before
    assert sorted((root / "cache" / "generate").iterdir()) == folders
    again = pd.read_csv(root / "out2" / "teacher_spread.csv")
    pd.testing.assert_frame_equal(again, pd.read_csv(res.files["csv"]))


def test_bad_temperature_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stratdistill.teacher_spread",
            *_argv(tmp_path / "cache", tmp_path / "out", [0.8, -1]),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stratdistill: error: temperature.teacher=-1"), proc.stderr
    assert not (tmp_path / "cache" / "generate").exists() and not (tmp_path / "out").exists()


def test_every_point_is_validated_before_any_generation(tmp_path, capsys):
    # 0.8 is valid and comes first; 9 is not: nothing may be generated
    assert main(_argv(tmp_path / "cache", tmp_path / "out", [0.8, 9])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stratdistill: error: temperature.teacher=9.0 is not valid")
    assert not (tmp_path / "cache" / "generate").exists()
    # the grid's own keys cannot also be overridden
    assert main([*_argv(tmp_path / "cache", tmp_path / "out"), "seed=5"]) == 2
    assert "--seeds" in capsys.readouterr().err
