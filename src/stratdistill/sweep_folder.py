"""Reading a Hydra sweep folder back: every planned point, finished, failed or missing, with its error.

Apart from the statistics (:mod:`stratdistill.sweep_stats`) and the rendering (:mod:`stratdistill.compare`)
because this is the part that knows Hydra's and submitit's folder layouts: the planned points come from
the sweep's ``multirun.yaml`` (basic sweeper grid), so a job that never wrote its folder is listed too;
errors come from ``error.txt`` (written by :class:`stratdistill.compare.CompareCallback` when a job
raises) or from submitit's logs in ``<sweep>/.submitit/`` when the jobs ran on a cluster; results come
from each job's ``results.csv`` (:func:`stratdistill.results.read_results`, which also reads the
columns of folders written before the metric's rename).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ERROR_FILE = "error.txt"
ERROR_TAIL = 2500  # characters of an error kept in the comparison


@dataclass
class Point:
    """One job of the sweep: its number, its overrides and what became of it."""

    num: int | None
    overrides: list[str]
    status: str  # ok | failed | missing
    folder: Path | None = None
    results: Any = None  # the job's results.csv as a DataFrame
    error: str | None = None
    values: dict[str, str] = field(default_factory=dict)  # key -> value of every override


def _split_override(item: str) -> tuple[str, str]:
    key, _, value = item.partition("=")
    return key.lstrip("+~"), value  # +key=value (append) is the same key for the comparison


def planned_points(sweep_dir: Path) -> list[list[str]] | None:
    """Every job the sweep planned, as its list of overrides, from ``multirun.yaml`` (None when the
    file is missing or the sweeper is not Hydra's basic grid sweeper)."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return None
    try:
        from omegaconf import OmegaConf

        from stratdistill.preflight import sweep_points

        return sweep_points(OmegaConf.load(path))
    except Exception as exc:  # an unreadable plan: fall back to the jobs found on disk
        log.warning("could not read the planned points from %s: %s", path, exc)
        return None


def _job_folders(sweep_dir: Path) -> list[tuple[int | None, list[str], Path]]:
    import yaml

    jobs = []
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        overrides_file = folder / ".hydra" / "overrides.yaml"
        if not overrides_file.is_file():
            continue
        overrides = [str(o) for o in (yaml.safe_load(overrides_file.read_text()) or [])]
        num = None
        hydra_file = folder / ".hydra" / "hydra.yaml"
        try:
            num = int(yaml.safe_load(hydra_file.read_text())["hydra"]["job"]["num"])
        except Exception:
            match = re.match(r"(\d+)_", folder.name)
            num = int(match.group(1)) if match else None
        jobs.append((num, overrides, folder))
    return jobs


def _tail(text: str, limit: int = ERROR_TAIL) -> str:
    """The end of a log: from its last traceback if it has one, at most ``limit`` characters."""
    text = text.replace("\r", "\n")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback")]
    lines = lines[starts[-1] :] if starts else lines[-12:]
    out = "\n".join(lines)
    return out[-limit:]


def submitit_errors(sweep_dir: Path) -> dict[int, str]:
    """Job number -> the tail of its submitit stderr log (``<sweep>/.submitit/<array>_<task>/...``).

    Hydra's submitit launcher submits each batch as one array job whose task ids are the positions in
    the batch; arrays are numbered in submission order, so job number = task id + the sizes of the
    arrays before it."""
    folder = sweep_dir / ".submitit"
    if not folder.is_dir():
        return {}
    found: dict[tuple[int, int], Path] = {}
    for log_file in folder.rglob("*_log.err"):
        match = re.fullmatch(r"(\d+)_(\d+)_\d+_log\.err", log_file.name)
        if match:
            found[(int(match.group(1)), int(match.group(2)))] = log_file
    out: dict[int, str] = {}
    offset = 0
    for array in sorted({a for a, _ in found}):
        tasks = sorted(t for a, t in found if a == array)
        for task in tasks:
            text = found[(array, task)].read_text(errors="replace")
            if "Traceback" in text or "Error" in text or "CANCELLED" in text or "DUE TO" in text:
                out[offset + task] = _tail(text)
        offset += max(tasks) + 1
    return out


def load_sweep(sweep_dir: Path) -> list[Point]:
    """Every point of the sweep: finished (results), failed (with its error) or missing."""
    # read_results renames the columns of an old results.csv ("improvement" -> "gap_closed"), so that
    # sweep folders written before the rename still compare
    from stratdistill.results import RESULTS_CSV, read_results

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such sweep folder")
    jobs = _job_folders(sweep_dir)
    cluster_errors = submitit_errors(sweep_dir)
    plan = planned_points(sweep_dir)
    by_overrides = {frozenset(o): (num, o, folder) for num, o, folder in jobs}
    entries: list[tuple[int | None, list[str], Path | None]] = []
    if plan is not None:
        for i, overrides in enumerate(plan):
            num, _, folder = by_overrides.pop(frozenset(overrides), (i, overrides, None))
            entries.append((num, overrides, folder))
        # a job whose overrides are spelled differently from the plan: match it by its job number
        by_num = {num: key for key, (num, _, _) in by_overrides.items() if num is not None}
        for i, (num, overrides, folder) in enumerate(entries):
            if folder is None and num in by_num:
                _, _, folder = by_overrides.pop(by_num.pop(num))
                entries[i] = (num, overrides, folder)  # the plan's spelling keeps the levels consistent
    entries += list(by_overrides.values())  # jobs outside the plan (e.g. a rerun with other overrides)
    points = []
    for num, overrides, folder in entries:
        values = dict(_split_override(o) for o in overrides)
        results_file = folder / RESULTS_CSV if folder is not None else None
        if results_file is not None and results_file.is_file():
            points.append(Point(num, overrides, "ok", folder, read_results(results_file), values=values))
            continue
        error = None
        if folder is not None and (folder / ERROR_FILE).is_file():
            error = _tail((folder / ERROR_FILE).read_text(errors="replace"))
        elif num is not None and num in cluster_errors:
            error = cluster_errors[num]
        elif folder is not None:
            logs = sorted(folder.glob("*.log"))
            error = f"no {RESULTS_CSV}: the job stopped before its report (or is still running)"
            if logs:
                error += f"; end of {logs[0].name}:\n" + _tail(logs[0].read_text(errors="replace"))
        status = "failed" if error is not None else "missing"
        points.append(Point(num, overrides, status, folder, None, error, values))
    return points


def swept_keys(points: list[Point]) -> list[str]:
    """The override keys whose value differs between points, in the order they first appear."""
    keys: list[str] = []
    for p in points:
        for k in p.values:
            if k not in keys:
                keys.append(k)
    return [k for k in keys if len({p.values.get(k) for p in points}) > 1]


def point_label(point: Point, keys: list[str]) -> str:
    return (
        ", ".join(f"{k}={point.values.get(k, '-')}" for k in keys) or " ".join(point.overrides) or "(default)"
    )
