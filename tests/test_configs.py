"""Every shipped config composes and validates; typos and bad values fail early with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from conftest import CONF, ROOT, compose_cfg, run_launch
from stratdistill.config import validate
from stratdistill.errors import ConfigError

GROUPS = ["teacher", "student", "lora", "temperature", "split", "games", "data", "train", "eval", "tracker"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in _options(g)])
def test_every_group_option_composes_and_validates(group: str, option: str) -> None:
    overrides = [f"{group}={option}"]
    if (group, option) == ("student", "hf"):
        overrides.append("student.model_id=/some/local/model")
    if (group, option) == ("teacher", "openai"):  # the user names the server and the model
        overrides += ["teacher.model_id=gpt-4o-mini", "teacher.base_url=https://api.openai.com/v1"]
    cfg = compose_cfg(overrides)
    if (group, option) == ("train", "qlora") and not _has_cuda():
        with pytest.raises(ConfigError, match="CUDA"):
            validate(cfg)
        return
    validate(cfg)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_composes(experiment: str) -> None:
    validate(compose_cfg([f"experiment={experiment}"]))


@pytest.mark.parametrize("sweep", sorted(p.stem for p in (ROOT / "sweeps").glob("*.yaml")))
def test_every_sweep_composes_and_each_point_validates(sweep: str) -> None:
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hcompose(config_name="config", overrides=[f"sweep={sweep}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params, f"sweep {sweep} defines no sweeper params"
    # compose every point of the grid the basic sweeper would launch
    import itertools

    keys = list(params)
    values = [str(params[k]).split(",") for k in keys]
    for combo in itertools.product(*values):
        point = compose_cfg([f"sweep={sweep}", *(f"{k}={v}" for k, v in zip(keys, combo, strict=True))])
        validate(point)


def test_typo_in_key_fails_at_composition() -> None:
    with pytest.raises((ConfigCompositionException, ConfigKeyError)):
        compose_cfg(["lora.rr=8"])


def test_wrong_type_fails_at_composition() -> None:
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_cfg(["lora.r=eight"])


def test_unknown_group_option_fails() -> None:
    with pytest.raises(ConfigCompositionException):
        compose_cfg(["split=nonexistent"])


@pytest.mark.parametrize(
    ("override", "key", "allowed"),
    [
        ("split.train.games=[prison,chess]", "split.train.games", "prison"),
        ("split.train.contexts=[IR,mars]", "split.train.contexts", "biz"),
        ("temperature.teacher=-0.5", "temperature.teacher", "[0, 5.0]"),
        ("temperature.teacher=50", "temperature.teacher", "[0, 5.0]"),
        ("data.teacher_samples=0", "data.teacher_samples", "> 0"),
        ("eval.teacher_samples=-3", "eval.teacher_samples", "> 0"),
        ("lora.r=0", "lora.r", "> 0"),
        ("eval.splits=[in_sample,bogus]", "eval.splits", "heldout_contexts"),
        ("train.learning_rate=0", "train.learning_rate", "> 0"),
    ],
)
def test_bad_values_raise_one_line_config_error(override: str, key: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(compose_cfg([override]))
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(key) and allowed in msg


def test_student_hf_without_model_id_is_reported() -> None:
    with pytest.raises(ConfigError, match=r"student\.model_id"):
        validate(compose_cfg(["student=hf"]))


def test_launch_rejects_bad_input_before_loading_anything(tmp_path: Path) -> None:
    proc = run_launch(
        ["temperature.teacher=-1", f"cache_dir={tmp_path}/cache", f"output_dir={tmp_path}/out"], timeout=120
    )
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith("stratdistill: error: temperature.teacher=-1.0 is not valid")
    assert not (tmp_path / "cache").exists()  # nothing was generated, no model converted
