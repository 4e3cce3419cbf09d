"""The teacher-only temperature x seed spread: a Hydra sweep of the teacher stages, then
``python -m stratdistill.teacher_spread SWEEP_DIR`` over its folder."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest

from conftest import compose_cfg, run_launch
from stratdistill.pipeline import run_pipeline
from stratdistill.teacher_spread import analyse
from stratdistill.teacher_spread.cli import main

TEMPS = [0.4, 0.8, 1.2]
SEEDS = [0, 1, 2]
N = 40
SCENARIOS = ["IR_prison", "friendsharing_prison", "IR_staghunt", "friendsharing_staghunt"]  # split=quick


def _sweep_args(cache: Path, sweep: Path, temps=TEMPS) -> list[str]:
    """The named sweep (until=teacher, seed=0,1,2) with its temperatures narrowed, on a small split."""
    return [
        "-m",
        "sweep=teacher_temperature",
        f"temperature.teacher={','.join(map(str, temps))}",
        "split=quick",
        f"data.teacher_samples={N}",
        f"cache_dir={cache}",
        f"hydra.sweep.dir={sweep}",
    ]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("spread")
    proc = run_launch(_sweep_args(root / "cache", root / "sweep"), cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root / "launch.out").write_text(proc.stdout)
    return root


@pytest.fixture(scope="module")
def spread(swept):
    return swept, analyse(swept / "sweep")


def _samples(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "samples.jsonl").read_text().splitlines() if line.strip()]


def test_the_named_sweep_runs_only_the_teacher_and_lists_each_jobs_artifacts(swept) -> None:
    jobs = sorted(p for p in (swept / "sweep").iterdir() if (p / ".hydra").is_dir())
    assert len(jobs) == len(TEMPS) * len(SEEDS)
    for job in jobs:
        listed = json.loads((job / "artifacts.json").read_text())
        assert listed["until"] == "teacher" and set(listed["artifacts"]) == {"generate", "evaluate_teacher"}
    assert not (swept / "cache" / "finetune").exists()  # no student
    # and no student comparison claiming that every job failed: the analysis to run instead is named
    assert not (swept / "sweep" / "comparison.md").exists()
    out = (swept / "launch.out").read_text()
    assert "[compare] until=teacher: no student is scored" in out and "stratdistill.teacher_spread" in out


def test_one_row_per_scenario_and_temperature(spread):
    root, res = spread
    t = res.table
    assert sorted(zip(t["scenario"], t["temperature"], strict=True)) == sorted(
        (s, temp) for s in SCENARIOS for temp in TEMPS
    )
    assert (t["n_seeds"] == len(SEEDS)).all()
    assert (t["seeds"] == "0 1 2").all()
    assert (t["n_per_seed"] == N).all() and (t["parse_rate"] == 1.0).all()
    assert list(res.by_temperature["temperature"]) == TEMPS
    assert res.out == root / "sweep"  # written into the sweep folder, next to its jobs
    csv = pd.read_csv(res.files["csv"])
    assert len(csv) == len(SCENARIOS) * len(TEMPS)
    assert res.files["png"].stat().st_size > 0
    md = res.files["md"].read_text()
    assert "At T=0.8 the teacher's P(C) moves by" in md and "expected from sampling" in md
    assert "offline **stand-in**" in md and not res.missing
    assert len({p.artifact.key for p in res.points}) == len(TEMPS) * len(SEEDS)
    assert {(p.temperature, p.seed) for p in res.points} == {(t, s) for t in TEMPS for s in SEEDS}


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


def test_the_analysis_only_reads_and_repeats_itself(spread, capsys):
    root, res = spread
    files = [p.artifact.path / name for p in res.points for name in ("samples.jsonl", "manifest.json")]
    before = {f: f.stat().st_mtime_ns for f in files}
    folders = sorted((root / "cache" / "generate").iterdir())
    assert main([str(root / "sweep"), "--out", str(root / "out2")]) == 0
    out = capsys.readouterr().out
    n = len(TEMPS) * len(SEEDS)
    assert f"{n} teacher datasets ({n} generated by the sweep, 0 reused from the cache)" in out
    assert "At T=0.8 the teacher's P(C) moves by" in out and str(root / "out2" / "teacher_spread.md") in out
    assert {f: f.stat().st_mtime_ns for f in files} == before
    assert sorted((root / "cache" / "generate").iterdir()) == folders
    again = pd.read_csv(root / "out2" / "teacher_spread.csv")
    pd.testing.assert_frame_equal(again, pd.read_csv(res.files["csv"]))


def test_jobs_without_an_artifact_list_are_found_in_the_cache_and_lost_ones_are_listed(spread, tmp_path):
    """A job folder from a full-pipeline sweep (or one written before artifacts.json) is looked up from
    its saved config; a job whose data is gone is left out and named."""
    import shutil

    root, res = spread
    copy = tmp_path / "sweep"
    shutil.copytree(root / "sweep", copy)
    jobs = sorted(p for p in copy.iterdir() if (p / ".hydra").is_dir())
    for job in jobs:
        (job / "artifacts.json").unlink()
    found = analyse(copy, tmp_path / "out")
    pd.testing.assert_frame_equal(found.table, res.table)
    assert [p.artifact.path for p in found.points] == [p.artifact.path for p in res.points]
    # one job lost its data (a different cache): left out, and said so
    lost = jobs[0]
    cfg_file = lost / ".hydra" / "config.yaml"
    cfg_file.write_text(cfg_file.read_text().replace(str(root / "cache"), str(tmp_path / "elsewhere")))
    partial = analyse(copy, tmp_path / "out3")
    assert len(partial.points) == len(res.points) - 1 and len(partial.missing) == 1
    assert lost.name in partial.missing[0] and lost.name in partial.files["md"].read_text()
    assert (partial.table["n_seeds"] < len(SEEDS)).any()


def test_a_sweep_that_also_varies_the_teacher_data_is_refused(spread, tmp_path, capsys):
    import shutil

    root, _ = spread
    copy = tmp_path / "sweep"
    shutil.copytree(root / "sweep", copy)
    job = sorted(p for p in copy.iterdir() if (p / ".hydra").is_dir())[0]
    # a job of another sample count: its teacher data (a fresh artifact) differs in more than T and seed
    cfg = compose_cfg(
        ["until=teacher", "split=quick", "data.teacher_samples=8", f"cache_dir={root / 'cache'}"]
    )
    other = run_pipeline(cfg, tmp_path / "job").artifacts["generate"]
    capsys.readouterr()  # the run's own output
    twin = job.with_name("9_other")
    shutil.copytree(job, twin)
    listed = json.loads((twin / "artifacts.json").read_text())
    listed["artifacts"]["generate"] |= {"key": other.key, "path": str(other.path)}
    (twin / "artifacts.json").write_text(json.dumps(listed))
    overrides = twin / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text().replace(f"data.teacher_samples={N}", "data.teacher_samples=8"))
    assert main([str(copy)]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err.startswith("stratdistill: error: sweep=") and "temperature.teacher and seed" in err
    assert "differ in the teacher data's ['data.teacher_samples']" in err
    # the same data twice (a sweep that also varied a student setting) counts once
    shutil.rmtree(twin)
    shutil.copytree(job, job.with_name("9_same"))
    assert len(analyse(copy, tmp_path / "out").points) == len(TEMPS) * len(SEEDS)


def test_a_folder_that_is_no_sweep_exits_2_with_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("stratdistill: error: ")
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no sweep jobs found" in capsys.readouterr().err


def test_every_point_is_validated_before_any_generation(tmp_path):
    """0.8 is valid and comes first; 9 is not: the sweep stops before anything is generated."""
    proc = run_launch(
        _sweep_args(tmp_path / "cache", tmp_path / "sweep", [0.8, 9]), cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("stratdistill:")]
    assert len(lines) == 1 and "temperature.teacher=9.0 is not valid" in lines[0], proc.stderr[-3000:]
    assert not (tmp_path / "cache" / "generate").exists()
