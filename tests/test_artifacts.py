"""Content-addressed artifacts: stable keys, reuse, atomic publication, resumable staging, one builder."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from stratdistill.artifacts import ArtifactStore, atomic_write_text, content_key


def test_key_depends_on_exactly_the_spec() -> None:
    a = content_key("generate", {"n": 300, "teacher": {"name": "x", "t": 0.8}})
    assert a == content_key("generate", {"teacher": {"t": 0.8, "name": "x"}, "n": 300})  # order-free
    assert a != content_key("generate", {"n": 301, "teacher": {"name": "x", "t": 0.8}})
    assert a != content_key("finetune", {"n": 300, "teacher": {"name": "x", "t": 0.8}})


def test_build_runs_once_then_reuses(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    calls = []

    def produce(folder: Path) -> dict:
        calls.append(folder)
        (folder / "data.txt").write_text("hello")
        return {"rows": 1}

    first = store.build("stage", {"x": 1}, produce, log=lambda _: None)
    second = store.build("stage", {"x": 1}, produce, log=lambda _: None)
    assert len(calls) == 1 and not first.reused and second.reused
    assert first.path == second.path and (second.path / "data.txt").read_text() == "hello"
    assert second.manifest["rows"] == 1 and second.manifest["spec"] == {"x": 1}


def test_failed_build_publishes_nothing_and_keeps_staging_for_resume(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)

    def crash(folder: Path) -> dict:
        (folder / "checkpoint").write_text("step 3")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.build("stage", {"x": 2}, crash, log=lambda _: None)
    key = content_key("stage", {"x": 2})
    assert store.get("stage", key) is None
    seen = []

    def resume(folder: Path) -> dict:
        seen.append((folder / "checkpoint").read_text())
        return {}

    store.build("stage", {"x": 2}, resume, log=lambda _: None)
    assert seen == ["step 3"]


def test_atomic_write_leaves_old_content_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    class Boom(str):
        def __str__(self) -> str:
            raise RuntimeError

    with pytest.raises(TypeError):
        atomic_write_text(path, 123)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary left behind


def _slow_build(root: str, log_path: str) -> None:
    def produce(folder: Path) -> dict:
        with open(log_path, "a") as fh:
            fh.write("built\n")
        time.sleep(1.0)
        return {}

    ArtifactStore(root).build("stage", {"shared": True}, produce, log=lambda _: None)


def test_concurrent_processes_build_once(tmp_path: Path) -> None:
    log = tmp_path / "builds.log"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_slow_build, args=(str(tmp_path / "store"), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert log.read_text().count("built") == 1


def test_empty_or_corrupt_dataset_is_a_clear_error(tmp_path: Path) -> None:
    from stratdistill.dataset import SAMPLES_FILE, load_samples
    from stratdistill.errors import ConfigError

    with pytest.raises(ConfigError, match="existing dataset artifact"):
        load_samples(tmp_path)
    (tmp_path / SAMPLES_FILE).write_text("")
    with pytest.raises(ConfigError, match="at least one row"):
        load_samples(tmp_path)
    (tmp_path / SAMPLES_FILE).write_text('{"scenario": "IR_prison"}\n{"scenario": "IR_pri')
    with pytest.raises(ConfigError) as info:
        load_samples(tmp_path)
    assert "line 2" in str(info.value) and "corrupt" in str(info.value) and "\n" not in str(info.value)


def _hangs_while_building(root: str, started: str) -> None:
    def produce(folder: Path) -> dict:
        (folder / "half.txt").write_text("part of the work\n")
        Path(started).write_text("holding the lock\n")
        time.sleep(600)  # killed here
        return {}

    ArtifactStore(root).build("stage", {"shared": True}, produce, log=lambda _: None)


def test_lock_of_a_killed_builder_does_not_block(tmp_path: Path) -> None:
    """A job killed while it holds the build lock (kill -9, node lost) leaves no lock behind: the kernel
    drops a dead process's flock, and the next job builds, finding the killed job's staged files."""
    store, started = tmp_path / "store", tmp_path / "started"
    holder = mp.get_context("spawn").Process(target=_hangs_while_building, args=(str(store), str(started)))
    holder.start()
    deadline = time.time() + 60
    while not started.exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    seen: list[str] = []

    def produce(folder: Path) -> dict:
        seen.extend(p.name for p in folder.iterdir())
        return {}

    t0 = time.time()
    art = ArtifactStore(store).build("stage", {"shared": True}, produce, log=lambda _: None)
    assert time.time() - t0 < 10 and not art.reused
    assert seen == ["half.txt"]  # resumed from the killed job's staging folder
