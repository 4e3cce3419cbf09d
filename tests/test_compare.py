"""The sweep comparison: one row per point (failed ones shown, not dropped), intervals as in the report,
ablation effects with paired intervals, a figure; from the CLI, the Hydra callback and a real multirun."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from conftest import ROOT, compose_cfg
from stratdistill.compare import CompareCallback, main, write_comparison
from stratdistill.report import summary_table, with_intervals
from stratdistill.results import assemble
from stratdistill.scenarios import PublicGoodsGame, load_library, resolve_split
from stratdistill.sweep_folder import load_sweep, planned_points, swept_keys
from stratdistill.sweep_stats import ablation_effects, split_estimates

# gap share closed by each arm (the true effect of motivations=False is -30 points, of r=8 +5, r=16 +10)
SHARE = {"True": 0.6, "False": 0.3}
RANK = {"4": 0.0, "8": 0.05, "16": 0.10}


def results_frame(motivations: str, rank: str, seed: int) -> pd.DataFrame:
    """A results.csv exactly as the pipeline writes it (assemble + the report's intervals), from
    synthetic behaviours: every scenario closes a known share of its gap, plus scenario-level noise."""
    cfg = compose_cfg()
    library = load_library([], None)
    _, evals = resolve_split(library, cfg.split)
    rng = np.random.default_rng(0)  # the same scenarios and the same noise pattern in every arm
    noise_rng = np.random.default_rng(seed)
    teacher, base, tuned = {}, {}, {}
    share = SHARE[motivations] + RANK[rank]
    for sc in {s.key: s for ss in evals.values() for s in ss}.values():
        if isinstance(sc.game, PublicGoodsGame):
            teacher[sc.key] = {
                "n": 300,
                "n_ok": 300,
                "n_failed": 0,
                "mean_donation": 7.0,
                "distribution": {7: 300},
            }
            for d, v in ((base, 3.0), (tuned, 3.0 + share * 4.0)):
                d[sc.key] = {"mean_donation": v, "distribution": {"3": 1.0}, "valid_mass": 0.9}
            continue
        c = int(rng.integers(20, 280))
        b = float(rng.uniform(0.1, 0.9))
        t = c / 300
        u = float(np.clip(b + (share + noise_rng.normal(0, 0.1)) * (t - b), 0, 1))
        teacher[sc.key] = {"n": 300, "n_ok": 300, "n_failed": 0, "c": c, "p_c": t}
        base[sc.key] = {"p_c": b, "valid_mass": 0.9}
        tuned[sc.key] = {"p_c": u, "valid_mass": 0.9}
    return with_intervals(assemble(evals, teacher, base, tuned))


def make_sweep(root: Path) -> Path:
    """A 3 x 2 sweep folder laid out like Hydra's: multirun.yaml, one folder per job; job #3 failed
    locally (error.txt), job #5 failed on the cluster before it made its folder (submitit log only)."""
    sweep = root / "sweep"
    sweep.mkdir()
    task = ["experiment=smoke", "lora.r=4,8,16", "data.motivations=true,false", "cache_dir=/c"]
    hydra = {
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": None},
        "overrides": {"task": task},
        "sweep": {"dir": str(sweep)},
    }
    OmegaConf.save(OmegaConf.create({"hydra": hydra, "seed": 0}), sweep / "multirun.yaml")
    num = 0
    for rank in ("4", "8", "16"):
        for motivations in ("True", "False"):
            overrides = [
                "experiment=smoke",
                f"lora.r={rank}",
                f"data.motivations={motivations}",
                "cache_dir=/c",
            ]
            if num != 5:
                folder = sweep / f"{num}_{','.join(sorted(overrides[:-1]))}"  # cache_dir: excluded
                (folder / ".hydra").mkdir(parents=True)
                (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
                (folder / ".hydra" / "hydra.yaml").write_text(
                    yaml.safe_dump({"hydra": {"job": {"num": num}}})
                )
                if num == 3:
                    (folder / "error.txt").write_text(
                        "Traceback (most recent call last):\n  File x\nRuntimeError: CUDA out of memory\n"
                    )
                else:
                    results_frame(motivations, rank, num).to_csv(folder / "results.csv", index=False)
            num += 1
    log_dir = sweep / ".submitit" / "777_5"
    log_dir.mkdir(parents=True)
    (log_dir / "777_5_0_log.err").write_text(
        "loading\nslurmstepd: error: *** JOB 777 CANCELLED AT 12:00 DUE TO TIME LIMIT ***\n"
    )
    for task_id in range(5):  # the other tasks of the array: logs without errors
        (sweep / ".submitit" / f"777_{task_id}").mkdir()
        (sweep / ".submitit" / f"777_{task_id}" / f"777_{task_id}_0_log.err").write_text("progress 100%\n")
    return sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("compare"))


def test_every_planned_point_is_listed_failed_ones_with_their_error(sweep: Path) -> None:
    assert len(planned_points(sweep)) == 6
    points = load_sweep(sweep)
    assert [p.num for p in points] == [0, 1, 2, 3, 4, 5]
    assert [p.status for p in points] == ["ok", "ok", "ok", "failed", "ok", "failed"]
    assert "CUDA out of memory" in points[3].error
    assert "TIME LIMIT" in points[5].error and points[5].folder is None
    assert swept_keys(points) == ["lora.r", "data.motivations"]


def test_a_job_whose_overrides_are_spelled_otherwise_is_matched_by_its_number(
    sweep: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    (job,) = copy.glob("4_*")
    spelled = ["experiment=smoke", "lora.r=16", "data.motivations=true", "cache_dir=/c"]
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(spelled))
    points = load_sweep(copy)
    assert [p.status for p in points] == ["ok", "ok", "ok", "failed", "ok", "failed"]
    assert points[4].folder == job and points[4].values["data.motivations"] == "True"


def test_a_sweep_written_before_the_gap_closed_rename_still_loads(sweep: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    old = {"gap_closed": "improvement", "gap_closed_low": "improvement_low"}
    old |= {"gap_closed_high": "improvement_high", "paper_gap_closed": "paper_improvement"}
    for csv in copy.glob("*/results.csv"):
        pd.read_csv(csv).rename(columns=old).to_csv(csv, index=False)
    before, after = load_sweep(sweep), load_sweep(copy)
    assert [p.status for p in after] == [p.status for p in before]
    for a, b in zip(before, after, strict=True):
        if a.results is not None:
            pd.testing.assert_frame_equal(a.results, b.results)
    estimates = (pd.DataFrame(split_estimates(p.results)) for p in (before[0], after[0]))
    pd.testing.assert_frame_equal(*estimates)


def test_intervals_are_those_of_the_runs_report(sweep: Path) -> None:
    points = load_sweep(sweep)
    estimates = split_estimates(points[0].results)
    report = summary_table(points[0].results).set_index("split")
    for split, e in estimates.items():
        assert e["mean"] == pytest.approx(report.loc[split, "mean gap closed % (paper's metric)"])
        if split != "donation":
            assert f"[{e['low']:.1f}, {e['high']:.1f}]" == report.loc[split, "95% CI (mean)"]


def test_effects_are_paired_over_the_points_that_finished(sweep: Path) -> None:
    points = load_sweep(sweep)
    effects = ablation_effects(points, swept_keys(points))
    assert set(effects["metric"]) == {"gap", "mae", "bridging"}
    mae = effects.set_index(["key", "level", "split", "metric"]).loc[
        ("data.motivations", "False", "in_sample", "mae")
    ]
    assert mae["effect"] > 0  # closing 30% rather than 60% of the gap leaves the student farther away
    effects = effects[effects["metric"] == "gap"].set_index(["key", "level", "split"])
    mot = effects.loc[("data.motivations", "False", "in_sample")]
    assert mot["reference"] == "True"
    assert mot["pairs"] == 1  # only r=4 has both arms: r=8 and r=16 lost their motivations=False point
    assert mot["low"] < mot["effect"] < mot["high"] < 0  # the true effect is -30 points
    assert mot["effect"] == pytest.approx(-30, abs=6)
    # by hand: the per-scenario difference between the two r=4 points
    a, b = points[0].results, points[1].results
    a, b = (x[x["split"] == "in_sample"].set_index("scenario")["gap_closed"] for x in (a, b))
    assert mot["effect"] == pytest.approx((b - a).dropna().mean())
    r16 = effects.loc[("lora.r", "16", "in_sample")]
    assert r16["reference"] == "4" and r16["pairs"] == 1
    assert r16["effect"] == pytest.approx(10, abs=6)


def test_writes_table_csv_effects_and_figure(sweep: Path, tmp_path: Path) -> None:
    md = write_comparison(sweep, tmp_path, n_boot=300)
    text = md.read_text()
    assert "6 points: 4 finished, 2 failed, 0 missing" in text
    assert "| 3 | 8 | False | **failed** |" in text
    assert "CUDA out of memory" in text and "TIME LIMIT" in text
    assert "`data.motivations` | False vs True | in_sample" in text
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert len(table) == 6
    assert list(table["status"]) == ["ok", "ok", "ok", "failed", "ok", "failed"]
    assert table.loc[0, "in_sample low"] < table.loc[0, "in_sample mean"] < table.loc[0, "in_sample high"]
    assert table.loc[3, "in_sample mean"] != table.loc[3, "in_sample mean"]  # NaN for the failed point
    assert (tmp_path / "comparison.png").stat().st_size > 5000
    assert len(pd.read_csv(tmp_path / "comparison_effects.csv")) > 0


def test_cli(sweep: Path, tmp_path: Path, capsys) -> None:
    assert main([str(sweep), "--out", str(tmp_path), "--n-boot", "200"]) == 0
    assert "Sweep comparison" in capsys.readouterr().out
    assert main([str(tmp_path / "nowhere")]) == 2


def test_callback_writes_the_comparison_and_never_fails_the_multirun(sweep: Path, tmp_path: Path) -> None:
    from hydra.core.utils import JobReturn, JobStatus

    out = tmp_path / "copy"
    import shutil

    shutil.copytree(sweep, out)
    cb = CompareCallback(n_boot=200)
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(out)}}})
    cb.on_multirun_start(cfg)
    cb.on_multirun_end(cfg)
    assert (out / "comparison.md").is_file()
    broken = CompareCallback()
    bad = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "missing")}}})
    broken.on_multirun_start(bad)
    broken.on_multirun_end(bad)  # logs a warning, raises nothing
    # a failed job keeps its traceback next to its outputs
    try:
        raise ValueError("bad point")
    except ValueError as exc:
        ret = JobReturn(status=JobStatus.FAILED, _return_value=exc)
    job = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(tmp_path / "job")}}})
    cb.on_job_end(job, ret)
    assert "ValueError: bad point" in (tmp_path / "job" / "error.txt").read_text()


APP = """
import sys
from pathlib import Path

import hydra
import pandas as pd

RESULTS = {results!r}


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def app(cfg):
    from hydra.core.hydra_config import HydraConfig

    if cfg.arm == "broken":
        raise RuntimeError("this point fails")
    out = Path(HydraConfig.get().runtime.output_dir)
    pd.read_csv(RESULTS[str(cfg.arm)]).to_csv(out / "results.csv", index=False)


if __name__ == "__main__":
    app()
"""


@pytest.mark.parametrize("arms", ["True,False", "True,False,broken"])
def test_real_multirun_fires_the_callback_even_when_a_job_fails(
    sweep: Path, tmp_path: Path, arms: str
) -> None:
    """A real Hydra multirun with the callback as conf/config.yaml registers it: the comparison appears,
    also when a job raised (Hydra then skips on_multirun_end)."""
    app = tmp_path / "app.py"
    results = {
        "True": str(next(sweep.glob("0_*")) / "results.csv"),
        "False": str(next(sweep.glob("1_*")) / "results.csv"),
    }
    app.write_text(textwrap.dedent(APP.format(results=results)))
    main_cfg = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())
    target = main_cfg["hydra"]["callbacks"]["compare"]["_target_"]
    out = tmp_path / "multirun"
    proc = subprocess.run(
        [
            sys.executable,
            str(app),
            "-m",
            f"+arm={arms}",
            f"hydra.sweep.dir={out}",
            f"+hydra.callbacks.compare._target_={target}",
            "+hydra.callbacks.compare.n_boot=100",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    failed = "broken" in arms
    assert proc.returncode == (1 if failed else 0), proc.stderr[-2000:]
    text = (out / "comparison.md").read_text()
    assert "`arm` | False vs True | in_sample" in text
    if failed:
        assert "| 2 | broken | **failed** |" in text
        assert "RuntimeError: this point fails" in text


def make_seed_sweep(root: Path) -> Path:
    """motivations x seed: three training runs per arm, each with its own scenario noise."""
    sweep = root / "seeds"
    sweep.mkdir()
    task = ["data.motivations=true,false", "seed=0,1,2"]
    hydra = {
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": None},
        "overrides": {"task": task},
        "sweep": {"dir": str(sweep)},
    }
    OmegaConf.save(OmegaConf.create({"hydra": hydra, "seed": 0}), sweep / "multirun.yaml")
    num = 0
    for motivations in ("True", "False"):
        for seed in (0, 1, 2):
            overrides = [f"data.motivations={motivations}", f"seed={seed}"]
            folder = sweep / f"{num}_{','.join(overrides)}"
            (folder / ".hydra").mkdir(parents=True)
            (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
            (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
            results_frame(motivations, "4", 100 + seed).to_csv(folder / "results.csv", index=False)
            num += 1
    return sweep


def test_seeds_are_replicates_not_an_ablation(tmp_path: Path) -> None:
    sweep = make_seed_sweep(tmp_path)
    points = load_sweep(sweep)
    keys = swept_keys(points)
    assert keys == ["data.motivations", "seed"]
    effects = ablation_effects(points, keys)
    assert set(effects["key"]) == {"data.motivations"}  # "seed=1 vs seed=0" is not an effect
    gap = effects[(effects["metric"] == "gap") & (effects["split"] == "in_sample")].iloc[0]
    assert gap["pairs"] == 3 and gap["low"] < gap["effect"] < gap["high"]
    md = write_comparison(sweep, tmp_path / "out", n_boot=300).read_text()
    assert "## Across seeds" in md and "One seed per configuration" not in md
    seeds = pd.read_csv(tmp_path / "out" / "comparison_seeds.csv")
    row = seeds[(seeds["split"] == "in_sample") & (seeds["metric"] == "gap")].iloc[0]
    assert row["replicates"] == 3 and row["run_sd"] > 0 and row["low"] < row["mean"] < row["high"]


def test_a_one_seed_comparison_says_its_intervals_leave_out_run_variance(sweep: Path, tmp_path: Path) -> None:
    assert "One seed per configuration" in write_comparison(sweep, tmp_path, n_boot=100).read_text()


def test_two_stage_interval_includes_the_run_to_run_variance() -> None:
    """Three runs that disagree by +-10 points on every scenario: resampling scenarios of the average
    run would give a narrow interval; resampling the runs as well must not."""
    from stratdistill.sweep_stats import two_stage_ci

    rng = np.random.default_rng(0)
    scenarios = rng.normal(50, 1, size=20)
    runs = np.vstack([scenarios + offset for offset in (-10, 0, 10)])
    mean, low, high = two_stage_ci(runs, n_boot=2000)
    _, low1, high1 = two_stage_ci(runs.mean(axis=0, keepdims=True), n_boot=2000)
    assert mean == pytest.approx(runs.mean())
    assert high1 - low1 < 2 and high - low > 10
