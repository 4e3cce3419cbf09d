"""A real model's teacher generation killed with SIGKILL mid-run resumes to exactly the rows of an
uninterrupted run: n per scenario, none twice, nothing lost (SmolLM2 through transformers, CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MODEL_CACHE, ROOT

N, CHUNK = 6, 2
GENERATE = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from conftest import compose_cfg
from stratdistill.dataset import sample_teacher
from stratdistill.scenarios import grid, load_library
from stratdistill.teachers import build_teacher

cfg = compose_cfg(["teacher=smollm2_hf", "teacher.max_new_tokens=12", "teacher.batch_size=2"])
lib = load_library()
teacher = build_teacher(cfg.teacher, {cache!r})
scenarios = grid(lib, ["biz", "IR"], ["prison"], "x")
sample_teacher(teacher, scenarios, lib, "action_motivation", {n}, 0, 0.8, "train", Path({chunks!r}), {chunk})
"""


def _run(chunks: Path) -> subprocess.Popen:
    code = GENERATE.format(
        tests=str(ROOT / "tests"), cache=str(MODEL_CACHE), n=N, chunks=str(chunks), chunk=CHUNK
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _rows(chunks: Path) -> list[dict]:
    rows = [json.loads(line) for p in sorted(chunks.glob("*.jsonl")) for line in p.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "created"} for r in rows]


@pytest.mark.slow
def test_sigkilled_real_generation_resumes_to_the_same_rows(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert _run(straight).wait(timeout=900) == 0
    proc = _run(killed)
    deadline = time.time() + 900
    while not list(killed.glob("*.jsonl")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-run: at least one chunk written, the rest not
    proc.wait()
    done = len(list(killed.glob("*.jsonl")))
    assert 1 <= done < 2 * N // CHUNK, done
    resumed = _run(killed)
    assert resumed.wait(timeout=900) == 0, resumed.stderr.read().decode()[-2000:]
    rows = _rows(killed)
    keys = [(r["scenario"], r["sample_index"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * N  # exactly n per scenario, none twice
    assert rows == _rows(straight)  # the same answers as without the kill (same seed, CPU)
