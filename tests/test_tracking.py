"""Trackers: the W&B run is written offline and read back from its files (config, summary metrics,
training curve, artifacts with lineage, tables, figures); run ids are deterministic for requeued jobs."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from conftest import compose_cfg, run_launch
from stratdistill.artifacts import ArtifactStore, write_jsonl
from stratdistill.config import validate
from stratdistill.errors import ConfigError
from stratdistill.tracking import JsonlTracker, NoTracker, WandbTracker, make_tracker, run_id, wandb_mode
from stratdistill.tracking_policy import TrainerMetricsCallback, log_pipeline, training_callbacks
from stratdistill.wandb_offline import read_offline_run

matplotlib.use("Agg")


@pytest.fixture
def offline(monkeypatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for k in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    return tmp_path


def _fake_run(root: Path) -> tuple[dict, pd.DataFrame, dict, Path]:
    """Stage artifacts, results and figures shaped exactly like the pipeline's, without any model."""
    store = ArtifactStore(root / "cache")

    def samples(folder: Path) -> dict:
        rows = [
            {
                "scenario": "IR_prison",
                "raw": f"I would choose strategy {a}. Because.",
                "value": a,
                "parse_status": "ok",
                "motivation": "Because.",
            }
            for a in "CDCD"
        ] + [{"scenario": "IR_prison", "raw": "?", "value": None, "parse_status": "unparseable"}]
        write_jsonl(folder / "samples.jsonl", rows)
        return {"rows": 5, "parse_status": {"ok": 4, "unparseable": 1}}

    def adapter(folder: Path) -> dict:
        (folder / "adapter").mkdir()
        (folder / "adapter" / "adapter_config.json").write_text("{}")
        (folder / "adapter" / "adapter_model.safetensors").write_bytes(b"0" * 64)
        history = [{"loss": 2.0 - 0.1 * s, "learning_rate": 1e-4, "step": s} for s in (5, 10, 15)]
        (folder / "log_history.json").write_text(json.dumps(history))
        return {"steps": 15, "examples": 16, "train_loss": 1.8}

    def evaluation(p: float):
        def produce(folder: Path) -> dict:
            write_jsonl(folder / "results.jsonl", [{"scenario": "IR_prison", "p_c": p, "valid_mass": 0.9}])
            return {}

        return produce

    artifacts = {
        "generate": store.build("generate", {"x": 1}, samples),
        "finetune": store.build("finetune", {"x": 1}, adapter),
        "evaluate_base": store.build("evaluate", {"x": 1}, evaluation(0.2)),
        "evaluate_tuned": store.build("evaluate", {"x": 2}, evaluation(0.4)),
        "evaluate_teacher": store.build(
            "evaluate_teacher", {"x": 1}, lambda f: write_jsonl(f / "samples.jsonl", [])
        ),
    }
    results = pd.DataFrame(
        [
            {
                "split": "in_sample",
                "scenario": "IR_prison",
                "teacher": 0.6,
                "base": 0.2,
                "tuned": 0.4,
                "gap_closed": 50.0,
                "bridging": 0.5,
                "base_valid_mass": 0.9,
                "tuned_valid_mass": 0.95,
                "paper_base": None,
                "distributions": None,
            }
        ]
    )
    summary = {"in_sample": {"mean": 50.0, "median": 50.0, "n": 1}}
    out = root / "out"
    out.mkdir()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(out / "improvement_in_sample.png")
    plt.close(fig)
    return artifacts, results, summary, out


def test_wandb_offline_run_holds_config_summary_curve_artifacts_tables_and_figures(offline: Path) -> None:
    cfg = compose_cfg(["tracker=wandb"])
    artifacts, results, summary, out = _fake_run(offline)
    context = {"overrides": ["lora.r=16"], "override_dirname": "lora.r=16", "job_num": 3, "multirun": True}
    context |= {"sweep_dir": "/x/multirun/2026-01-01/10-00-00", "sweep": "lora_rank"}
    tracker = WandbTracker(cfg.tracker, out, context)
    assert tracker.mode == "offline"
    try:
        tracker.log_params({"lora": {"r": 16}})
        log_pipeline(tracker, cfg, artifacts, results, summary, out)
    finally:
        tracker.finish()

    (run_dir,) = (out / "wandb").glob("offline-run-*")
    run = read_offline_run(run_dir)
    assert run["run"]["job_type"] == "pipeline"
    assert run["run"]["name"] == "lora.r=16"
    assert run["run"]["group"] == "lora_rank:multirun/2026-01-01/10-00-00"
    assert run["run"]["id"] == tracker.id
    assert run["config"]["lora"] == {"r": 16}
    assert run["config"]["hydra"]["overrides"] == ["lora.r=16"]
    assert run["config"]["stages"]["finetune"]["reused"] is False
    s = run["summary"]
    assert s["in_sample/gap_closed_mean"] == 50.0
    assert s["teacher/parse_rate_train"] == pytest.approx(0.8)
    assert s["train/train_loss_final"] == 1.8
    assert s["generations"]["_type"] == "table-file"
    assert s["results"]["_type"] == "table-file"
    assert s["figures/improvement_in_sample"]["_type"] == "image-file"
    # a fine-tune built in this run logs its curve live (callback), not again from its log history
    assert not [h for h in run["history"] if "train/loss" in h]
    arts = {a["type"]: a for a in run["artifacts"]}
    assert arts["dataset"]["use_after_commit"] is True  # the run uses the dataset: lineage
    assert arts["dataset"]["files"] == ["samples.jsonl"]
    assert arts["dataset"]["metadata"]["key"] == artifacts["generate"].key
    assert arts["model"]["use_after_commit"] is False
    assert "adapter_config.json" in arts["model"]["files"]
    assert run["exit_code"] == 0
    table = next((run_dir / "files" / "media" / "table").glob("generations_*.table.json"))
    gen = json.loads(table.read_text())
    rows = [dict(zip(gen["columns"], r, strict=True)) for r in gen["data"]]
    teacher = [r for r in rows if r["model"].startswith("teacher")]
    assert {r["parsed"] for r in teacher} == {"C", "D", None}
    assert {r["parse_status"] for r in teacher} == {"ok", "unparseable"}
    tuned = [r for r in rows if r["model"] == "tuned student"]
    assert tuned[0]["parsed"] == "D" and tuned[0]["p"] == pytest.approx(0.6)


def test_reused_finetune_logs_its_curve_and_a_failed_run_is_marked_failed(offline: Path) -> None:
    cfg = compose_cfg(["tracker=wandb"])
    artifacts, results, summary, out = _fake_run(offline)
    store = ArtifactStore(offline / "cache")
    artifacts["finetune"] = store.get("finetune", artifacts["finetune"].key)  # reused
    tracker = WandbTracker(cfg.tracker, out, {})
    with pytest.raises(RuntimeError):
        try:
            log_pipeline(tracker, cfg, artifacts, results, summary, out)
            raise RuntimeError("boom")
        finally:
            tracker.finish()
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    run = read_offline_run(run_dir)
    curve = [(h["_step"], h["train/loss"]) for h in run["history"] if "train/loss" in h]
    assert curve == [(5, pytest.approx(1.5)), (10, pytest.approx(1.0)), (15, pytest.approx(0.5))]
    assert run["exit_code"] == 1
    assert run["run"]["group"] == ""  # a single run has no sweep


def test_trainer_callback_sends_the_loss_at_its_step(tmp_path: Path) -> None:
    tracker = JsonlTracker(tmp_path)
    (cb,) = training_callbacks(tracker)
    assert isinstance(cb, TrainerMetricsCallback)

    class State:
        global_step, is_world_process_zero = 7, True

    cb.on_log(None, State(), None, logs={"loss": 1.25, "epoch": 0.5, "note": "x"})
    cb.on_step_end(None, State(), None)  # every other Trainer event is a no-op
    tracker.finish()
    (line,) = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert line["step"] == 7 and line["metrics"] == {"train/loss": 1.25, "train/epoch": 0.5}
    assert training_callbacks(NoTracker()) == []


def test_run_id_is_deterministic_from_slurm_ids_else_the_output_folder(tmp_path: Path) -> None:
    ctx = {"job_num": 2, "override_dirname": "lora.r=8"}
    first = run_id(tmp_path / "a", ctx, {"SLURM_ARRAY_JOB_ID": "100", "SLURM_ARRAY_TASK_ID": "2"})
    requeued = run_id(
        tmp_path / "b",
        ctx,
        {"SLURM_ARRAY_JOB_ID": "100", "SLURM_ARRAY_TASK_ID": "2", "SLURM_RESTART_COUNT": "1"},
    )
    assert first == requeued  # a requeue (even into a new timestamped folder) continues the same run
    assert run_id(tmp_path / "a", ctx, {"SLURM_ARRAY_JOB_ID": "100", "SLURM_ARRAY_TASK_ID": "3"}) != first
    assert run_id(tmp_path / "a", ctx, {"SLURM_JOB_ID": "55"}) != first
    # in one allocation (salloc + a local multirun) the jobs still get a run each
    assert run_id(tmp_path, ctx, {"SLURM_JOB_ID": "55"}) != run_id(
        tmp_path, {"job_num": 3, "override_dirname": "lora.r=16"}, {"SLURM_JOB_ID": "55"}
    )
    assert run_id(tmp_path / "a", ctx, {}) == run_id(tmp_path / "a", {}, {})
    assert run_id(tmp_path / "a", ctx, {}) != run_id(tmp_path / "b", ctx, {})


def test_mode_is_offline_without_an_api_key() -> None:
    assert wandb_mode(None, {}) == "offline"
    assert wandb_mode(None, {"WANDB_API_KEY": "k"}) == "online"
    assert wandb_mode(None, {"WANDB_API_KEY": "k", "WANDB_MODE": "offline"}) == "offline"
    assert wandb_mode("disabled", {"WANDB_API_KEY": "k"}) == "disabled"


def test_tracker_config_is_validated() -> None:
    validate(compose_cfg(["tracker=wandb", "tracker.mode=offline"]))
    with pytest.raises(ConfigError, match=r"tracker\.mode"):
        validate(compose_cfg(["tracker=wandb", "tracker.mode=sometimes"]))
    with pytest.raises(ConfigError, match=r"tracker\.backend"):
        validate(compose_cfg(["tracker.backend=mlflow"]))
    assert isinstance(make_tracker("none", Path(".")), NoTracker)


@pytest.mark.slow
def test_smoke_pipeline_with_wandb_offline(offline: Path) -> None:
    """The real pipeline with tracker=wandb: the offline run files hold what the pipeline logged."""
    tmp_path = offline
    proc = run_launch(
        [
            "experiment=smoke",
            "tracker=wandb",
            "train.logging_steps=1",
            f"cache_dir={tmp_path}/cache",
            f"output_dir={tmp_path}/out",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "out" / "wandb").glob("offline-run-*")
    assert f"wandb sync {run_dir}" in proc.stdout
    run = read_offline_run(run_dir)
    assert run["config"]["train"]["max_steps"] == 4
    assert run["config"]["hydra"]["overrides"][0] == "experiment=smoke"
    for split in ("in_sample", "heldout_contexts", "doubled_games", "donation"):
        assert f"{split}/gap_closed_mean" in run["summary"]
    curve = [(h["_step"], h["train/loss"]) for h in run["history"] if "train/loss" in h]
    assert [step for step, _ in curve] == [1, 2, 3, 4]  # the curve, logged live while training
    arts = {a["type"]: a for a in run["artifacts"]}  # also the tables, as type run_table
    assert arts["dataset"]["files"] == ["samples.jsonl"] and arts["dataset"]["use_after_commit"]
    assert "adapter_model.safetensors" in arts["model"]["files"]
    assert any(k.startswith("figures/heatmap_") for k in run["summary"])
    assert run["summary"]["generations"]["_type"] == "table-file"
    assert run["exit_code"] == 0


def test_a_run_stopped_early_logs_what_it_has(offline: Path) -> None:
    """until=finetune: no results, no evaluations; the dataset and the adapter are still logged."""
    cfg = compose_cfg()
    artifacts, _, _, out = _fake_run(offline)
    partial = {k: artifacts[k] for k in ("generate", "finetune")}
    tracker = JsonlTracker(out)
    log_pipeline(tracker, cfg, partial, pd.DataFrame(), {}, out)
    tracker.finish()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["type"] for x in lines if x["kind"] == "artifact"] == ["dataset", "model"]
    assert [x["name"] for x in lines if x["kind"] == "table"] == ["generations"]


def test_the_pipeline_and_the_readme_still_find_the_moved_names_in_tracking() -> None:
    import stratdistill.tracking as tracking
    import stratdistill.tracking_policy as policy
    import stratdistill.wandb_offline as offline

    assert tracking.log_pipeline is policy.log_pipeline
    assert tracking.training_callbacks is policy.training_callbacks
    assert tracking.TrainerMetricsCallback is policy.TrainerMetricsCallback
    assert tracking.read_offline_run is offline.read_offline_run
