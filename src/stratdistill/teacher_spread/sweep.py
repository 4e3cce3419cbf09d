"""Reading a teacher sweep folder: each job's temperature, seed and teacher dataset (generate artifact).

The sweep itself is an ordinary Hydra multirun (``python launch.py -m sweep=teacher_temperature``, or
any ``-m until=teacher temperature.teacher=... seed=...``), so composition, validation of every point
before anything runs, launchers (SLURM included) and the content-addressed cache are the pipeline's
own. What this module adds is finding each job's answers again:

* a job that stopped early (``until=teacher``) lists its artifacts in ``artifacts.json`` in its folder
  (:data:`stratdistill.pipeline.STOPPED_ARTIFACTS_FILE`);
* any other job (a full-pipeline sweep, or one run before that file existed) is looked up in the cache
  from its saved config (``.hydra/config.yaml``): the generate stage's key is recomputed exactly as the
  pipeline computes it, and nothing is generated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratdistill.artifacts import Artifact, ArtifactStore, content_key
from stratdistill.errors import ConfigError

JOB_CONFIG = Path(".hydra") / "config.yaml"
JOB_OVERRIDES = Path(".hydra") / "overrides.yaml"
# The keys the analysis is about; a sweep over anything else that changes the teacher's data is refused.
SPREAD_KEYS = ("temperature.teacher", "seed")


@dataclass
class Point:
    """One (temperature, seed) of the sweep: its job folder, config and teacher dataset."""

    temperature: float
    seed: int
    folder: Path
    cfg: Any
    artifact: Artifact  # the generate artifact (reused: the job found it in the cache)
    overrides: list[str] = field(default_factory=list)


@dataclass
class Sweep:
    """What was found in a sweep folder: the usable points, and the jobs that have no teacher data."""

    folder: Path
    points: list[Point]
    missing: list[str]  # one line per planned job without teacher data, saying why


class _LookupStore(ArtifactStore):
    """An artifact store that only finds: ``build`` returns the cached artifact, never produces one."""

    def build(
        self,
        stage: str,
        spec: dict[str, Any],
        producer: Callable[[Path], dict[str, Any] | None],
        log: Callable[[str], None] = print,
    ) -> Artifact:
        key = content_key(stage, spec)
        found = self.get(stage, key)
        if found is None:
            raise FileNotFoundError(f"{self.path(stage, key)} (not in the cache)")
        return found


def _job_num(folder: Path) -> int:
    match = re.match(r"(\d+)_", folder.name)
    return int(match.group(1)) if match else -1


def job_folders(sweep_dir: Path) -> list[Path]:
    """The sweep's job folders (those with a saved config), in job-number order."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / JOB_CONFIG).is_file()]
    return sorted(jobs, key=lambda p: (_job_num(p), p.name))


def _overrides(folder: Path) -> list[str]:
    import yaml

    path = folder / JOB_OVERRIDES
    return [str(o) for o in (yaml.safe_load(path.read_text()) or [])] if path.is_file() else []


def _from_manifest(folder: Path) -> Artifact | None:
    """The generate artifact a stopped job recorded, if it recorded one and it is still there."""
    from stratdistill.pipeline import STOPPED_ARTIFACTS_FILE

    path = folder / STOPPED_ARTIFACTS_FILE
    if not path.is_file():
        return None
    entry = json.loads(path.read_text()).get("artifacts", {}).get("generate")
    if entry is None:
        return None
    art_path = Path(entry["path"])
    if not (art_path / "manifest.json").is_file():
        raise FileNotFoundError(f"{art_path} (listed in {path}, no longer in the cache)")
    return Artifact("generate", entry["key"], art_path, reused=bool(entry.get("reused")))


def _from_cache(cfg: Any) -> Artifact:
    """The job's generate artifact, found by recomputing its key from the job's config."""
    from stratdistill.scenarios import load_library, resolve_split
    from stratdistill.stages.generate import generate_stage

    library = load_library(list(cfg.games.library_dirs), cfg.games.prompt_dir)
    train, _ = resolve_split(library, cfg.split)
    return generate_stage(cfg, _LookupStore(cfg.cache_dir), library, train)


def _why_missing(folder: Path | None, reason: str) -> str:
    """A planned job's line in the report: which job, and why it has no teacher data."""
    if folder is None:
        return reason
    error = folder / "error.txt"  # written by stratdistill.compare.CompareCallback for a failed job
    if error.is_file():
        lines = [ln for ln in error.read_text(errors="replace").splitlines() if ln.strip()]
        reason = f"failed: {lines[-1].strip()}" if lines else reason
    return f"`{folder.name}`: {reason}"


def planned(sweep_dir: Path) -> list[list[str]]:
    """Every job the sweep planned (its overrides), from ``multirun.yaml``; empty when there is no
    readable plan (then only the jobs found on disk count)."""
    from omegaconf import OmegaConf

    from stratdistill.preflight import sweep_points

    path = sweep_dir / "multirun.yaml"
    try:
        return (sweep_points(OmegaConf.load(path)) or []) if path.is_file() else []
    except Exception:  # another sweeper, or a plan Hydra can no longer parse: the jobs on disk count
        return []


def _setting(point: Point) -> dict[str, Any]:
    """What the point's teacher data depends on besides its temperature and seed (the generate
    stage's key spec, as its manifest records it)."""
    spec = dict(point.artifact.manifest.get("spec", {}))
    if isinstance(spec.get("config"), dict):  # the stage key rule: config values by their dotted path
        config = {k: v for k, v in spec.pop("config").items() if k not in SPREAD_KEYS}
        spec.update(config)
    # keys written before the stage key rule kept these two at the top level
    return {k: v for k, v in spec.items() if k not in ("temperature", "seed")}


def _check_one_setting(sweep_dir: Path, points: list[Point]) -> None:
    """Refuse to pool seeds of different teacher settings (another teacher, sample count or split)."""
    first = points[0]
    for point in points[1:]:
        a, b = _setting(first), _setting(point)
        if a == b:
            continue
        fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        keys = sorted(
            {o.split("=", 1)[0] for o in set(first.overrides) ^ set(point.overrides)} - set(SPREAD_KEYS)
        )
        raise ConfigError(
            "sweep",
            str(sweep_dir),
            "a sweep of one teacher setting over temperature.teacher and seed only (jobs "
            f"`{first.folder.name}` and `{point.folder.name}` differ in the teacher data's {fields}"
            + (f", set by {keys})" if keys else ")"),
        )


def read_sweep(sweep_dir: str | Path) -> Sweep:
    """Every job of the sweep with teacher data, one per (temperature, seed).

    Raises ConfigError when the jobs' teacher data differ in more than temperature and seed (another
    teacher, sample count or split): seeds of different teacher settings must not be pooled. Jobs that
    share a (temperature, seed) and its data (a sweep that also varied student settings) count once."""
    from omegaconf import OmegaConf

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such sweep folder")
    folders = job_folders(sweep_dir)
    if not folders:
        raise FileNotFoundError(f"{sweep_dir}: no sweep jobs found (no */{JOB_CONFIG})")
    points: list[Point] = []
    missing: list[str] = []
    found_overrides: set[frozenset[str]] = set()
    for folder in folders:
        overrides = _overrides(folder)
        found_overrides.add(frozenset(overrides))
        cfg = OmegaConf.load(folder / JOB_CONFIG)
        try:
            artifact = _from_manifest(folder) or _from_cache(cfg)
        except FileNotFoundError as exc:
            missing.append(_why_missing(folder, f"no teacher data ({exc})"))
            continue
        points.append(Point(float(cfg.temperature.teacher), int(cfg.seed), folder, cfg, artifact, overrides))
    for overrides in planned(sweep_dir):
        if frozenset(overrides) not in found_overrides:
            missing.append(_why_missing(None, f"{' '.join(overrides)}: never started"))
    if not points:
        detail = f" ({'; '.join(missing)})" if missing else ""
        raise FileNotFoundError(f"{sweep_dir}: no job has teacher data{detail}")
    _check_one_setting(sweep_dir, points)
    unique: dict[tuple[float, int], Point] = {}
    for point in points:
        unique.setdefault((point.temperature, point.seed), point)
    return Sweep(sweep_dir, sorted(unique.values(), key=lambda p: (p.temperature, p.seed)), missing)
