"""End to end through launch.py on a reduced config: a report, then reuse; a sweep shares the teacher."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import run_launch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_smoke_run_writes_a_report_and_a_second_run_reuses_every_stage(cache: Path, tmp_path: Path) -> None:
    first = run_launch(["experiment=smoke", f"cache_dir={cache}", f"output_dir={tmp_path}/one"])
    assert first.returncode == 0, first.stderr[-3000:]
    report = tmp_path / "one" / "report.md"
    assert f"Report: {report}" in first.stdout
    text = report.read_text()
    assert "STAND-IN" in text  # the stand-in teacher is labelled as such
    for split in ("in_sample", "heldout_contexts", "doubled_games", "donation"):
        assert f"## {split}" in text
    for png in ("heatmap_in_sample.png", "improvement_in_sample.png", "heatmap_heldout_contexts.png"):
        assert (tmp_path / "one" / png).stat().st_size > 5000
    results = pd.read_csv(tmp_path / "one" / "results.csv")
    assert set(results["scenario"]) >= {"IR_prison", "sports_staghunt", "IR_prison_d", "donation"}
    assert results[["teacher", "base", "tuned"]].notna().all().all()
    # the paper's figures stand next to ours where the scenario exists in the paper
    assert results.set_index("scenario").loc["IR_prison", "paper_teacher"] == pytest.approx(77 / 300)
    assert results["base_valid_mass"].between(0, 1).all()
    assert "[generate] wrote" in first.stdout and "[finetune] wrote" in first.stdout

    second = run_launch(["experiment=smoke", f"cache_dir={cache}", f"output_dir={tmp_path}/two"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "wrote" not in second.stdout.replace("Report:", "")
    assert second.stdout.count("reusing") == 5
    again = pd.read_csv(tmp_path / "two" / "results.csv")
    pd.testing.assert_frame_equal(results, again)


def test_four_point_sweep_generates_teacher_data_once(cache: Path, tmp_path: Path) -> None:
    proc = run_launch(
        [
            "-m",
            "experiment=smoke",
            "seed=1",
            "lora.r=4,8",
            "data.motivations=true,false",
            f"cache_dir={cache}",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("[generate] wrote") == 1
    assert out.count("[generate] reusing") == 3
    assert out.count("[finetune] wrote") == 4
    # the base student's evaluation does not depend on the sweep's settings either
    assert out.count("[evaluate] reusing") >= 3
    reports = sorted((tmp_path / "sweep").glob("*/report.md"))
    assert len(reports) == 4
    # the sweep's comparison (Hydra callback): one row per point and the two ablation effects
    comparison = pd.read_csv(tmp_path / "sweep" / "comparison.csv")
    assert len(comparison) == 4 and (comparison["status"] == "ok").all()
    effects = pd.read_csv(tmp_path / "sweep" / "comparison_effects.csv")
    assert set(effects["key"]) == {"lora.r", "data.motivations"}
    assert (tmp_path / "sweep" / "comparison.png").is_file()
    assert "[compare] sweep comparison:" in out


def test_killed_finetune_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    """kill -9 in the middle of fine-tuning, run again: it resumes from the last checkpoint and finishes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    args = [
        sys.executable,
        str(ROOT / "launch.py"),
        "experiment=smoke",
        "train.max_steps=10",
        "train.save_steps=2",
        f"cache_dir={tmp_path}/cache",
        f"output_dir={tmp_path}/out",
    ]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    try:
        while time.time() < deadline:
            if list((tmp_path / "cache" / "finetune").glob("*.partial/checkpoints/checkpoint-4")):
                break
            assert proc.poll() is None, "the run ended before it could be interrupted"
            time.sleep(0.5)
        else:
            pytest.fail("no checkpoint appeared")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not list((tmp_path / "cache" / "finetune").glob("*/manifest.json"))  # nothing half-published
    again = run_launch(args[2:])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from the last checkpoint" in again.stdout
    (adapter,) = (tmp_path / "cache" / "finetune").glob("*/adapter/provenance.json")
    import json

    info = json.loads(adapter.read_text())
    assert info["resumed"] is True and info["steps"] == 10
