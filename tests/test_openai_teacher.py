"""teacher.backend=openai against a real OpenAI-compatible server: llama.cpp serving SmolLM2 on loopback.

No protocol mocks: every request goes to ``llama_cpp.server`` (installed by ``make setup-server``, which
``make test`` runs). The retry test puts a real HTTP proxy in front of it that fails the first requests.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import compose_cfg, run_launch
from stratdistill.dataset import sample_teacher
from stratdistill.errors import ConfigError, TeacherStopped
from stratdistill.scenarios import grid, load_library
from stratdistill.teachers import build_teacher

pytest.importorskip("llama_cpp.server", reason="llama.cpp's server is not installed: run `make setup-server`")

LIB = load_library()
SECRET = "sk-test-7f3a9c1e-never-in-a-file"
KEY_ENV = "STRATDISTILL_TEST_TEACHER_KEY"
ASK = [{"role": "user", "content": "Say C or D."}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, api_key: str | None = None) -> subprocess.Popen:
    from stratdistill.teachers.llamacpp import server_command

    proc = subprocess.Popen(
        server_command(port, api_key=api_key),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {proc.returncode}")
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers=headers)
            with urllib.request.urlopen(req, timeout=2):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("llama.cpp server did not come up in 120 s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server():
    """One keyed server for the module: (port, process)."""
    port = _free_port()
    proc = _start_server(port, api_key=SECRET)
    yield port
    _stop(proc)


def _teacher_cfg(port: int, **overrides):
    cfg = compose_cfg(
        [
            "teacher=smollm2_llamacpp",
            f"teacher.base_url=http://127.0.0.1:{port}/v1",
            f"teacher.api_key_env={KEY_ENV}",
            "teacher.max_new_tokens=24",
            *[f"teacher.{k}={v}" for k, v in overrides.items()],
        ]
    )
    return cfg.teacher


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


def test_served_answers_come_back_parsed_with_n_fallback(server, key, tmp_path: Path) -> None:
    teacher = build_teacher(_teacher_cfg(server, n_per_request=4))
    (sc,) = grid(LIB, ["biz"], ["prison"], "x")
    rows = sample_teacher(teacher, [sc], LIB, "action_motivation", 5, 0, 0.8, "train", tmp_path / "chunks")
    # llama.cpp answers n=4 with one choice: the teacher notices and asks one sample per request.
    assert teacher.n_supported is False
    assert [r["sample_index"] for r in rows] == [0, 1, 2, 3, 4]
    assert all(r["backend"] == "openai" and r["raw"].strip() for r in rows)
    assert all(r["parse_status"] == "ok" or r["value"] is None for r in rows)
    assert rows[0]["prompt"].startswith("<system>") or rows[0]["prompt"].startswith("<user>")


def test_bad_server_settings_fail_before_the_run_in_one_line(server, key, monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"^teacher.base_url=.*reachable"):
        build_teacher(_teacher_cfg(_free_port(), max_retries=0))
    with pytest.raises(ConfigError, match=r"^teacher.model_id='llama-9000'.*smollm2-135m-instruct"):
        build_teacher(_teacher_cfg(server, model_id="llama-9000"))
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with pytest.raises(ConfigError) as err:
        build_teacher(_teacher_cfg(server))
    message = str(err.value)
    assert message.startswith(f"{KEY_ENV}='(hidden)'") and "401" in message and "\n" not in message
    assert "sk-wrong" not in message


def test_config_values_are_checked_before_any_request() -> None:
    from stratdistill.config import validate

    with pytest.raises(ConfigError, match=r"^teacher.base_url='localhost:8000'"):
        validate(compose_cfg(["teacher=smollm2_llamacpp", "teacher.base_url=localhost:8000"]))
    with pytest.raises(ConfigError, match=r"^teacher.concurrency=0"):
        validate(compose_cfg(["teacher=smollm2_llamacpp", "teacher.concurrency=0"]))
    with pytest.raises(ConfigError, match=r"^teacher.model_id=None"):
        validate(compose_cfg(["teacher=openai", "teacher.base_url=https://api.example.com/v1"]))


class _FlakyProxy(http.server.BaseHTTPRequestHandler):
    """Answers the first ``failures`` chat requests with 503, forwards everything else to the server."""

    upstream = ""
    failures = 0
    served_errors = 0

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if "chat/completions" in self.path and type(self).served_errors < type(self).failures:
            type(self).served_errors += 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._forward(body)

    def _forward(self, body: bytes | None) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
        req = urllib.request.Request(self.upstream + self.path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as up:
                status, payload = up.status, up.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def test_server_errors_are_retried_with_backoff(server, key) -> None:
    _FlakyProxy.upstream, _FlakyProxy.failures, _FlakyProxy.served_errors = f"http://127.0.0.1:{server}", 2, 0
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        port = proxy.server_address[1]
        teacher = build_teacher(_teacher_cfg(port, max_retries=3, n_per_request=1))
        (sc,) = grid(LIB, ["team"], ["staghunt"], "x")
        texts = teacher.sample(
            sc, [{"role": "user", "content": "Say C or D."}], "action_only", 2, np.random.default_rng(0), 0.8
        )
        assert len(texts) == 2 and _FlakyProxy.served_errors == 2
        _FlakyProxy.failures, _FlakyProxy.served_errors = 10, 0
        no_retry = build_teacher(_teacher_cfg(port, max_retries=0, n_per_request=1))
        with pytest.raises(TeacherStopped, match="InternalServerError"):
            no_retry.sample(
                sc,
                [{"role": "user", "content": "Say C or D."}],
                "action_only",
                1,
                np.random.default_rng(0),
                0.8,
            )
    finally:
        proxy.shutdown()


def test_server_lost_mid_run_keeps_every_chunk_and_resumes(tmp_path: Path) -> None:
    port = _free_port()
    proc = _start_server(port)
    scenarios = grid(LIB, ["biz", "IR"], ["prison"], "x")
    chunks = tmp_path / "chunks"
    cfg = _teacher_cfg(port, max_retries=0, n_per_request=1)
    teacher = build_teacher(cfg)
    sample = teacher.sample
    calls = []

    def dies_after_two_chunks(*args, **kwargs):
        if len(calls) == 2:
            _stop(proc)  # the server goes away between chunks
        calls.append(1)
        return sample(*args, **kwargs)

    teacher.sample = dies_after_two_chunks
    try:
        with pytest.raises(TeacherStopped):
            sample_teacher(teacher, scenarios, LIB, "action_only", 4, 0, 0.8, "train", chunks, chunk_size=2)
        kept = sorted(p.name for p in chunks.glob("*.jsonl"))
        assert len(kept) == 2  # both finished chunks are on disk
        before = {p.name: p.read_text() for p in chunks.glob("*.jsonl")}
        proc = _start_server(port)
        rows = sample_teacher(
            build_teacher(cfg),
            scenarios,
            LIB,
            "action_only",
            4,
            0,
            0.8,
            "train",
            chunks,
            chunk_size=2,
        )
        assert sorted((r["scenario"], r["sample_index"]) for r in rows) == sorted(
            (sc.key, i) for sc in scenarios for i in range(4)
        )
        assert all(chunks.joinpath(name).read_text() == text for name, text in before.items())
    finally:
        _stop(proc)


def test_whole_teacher_stage_through_launch_never_writes_the_key(server, tmp_path: Path) -> None:
    env_before = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = SECRET
    try:
        proc = run_launch(
            [
                "teacher=smollm2_llamacpp",
                f"teacher.base_url=http://127.0.0.1:{server}/v1",
                f"teacher.api_key_env={KEY_ENV}",
                "teacher.max_new_tokens=16",
                "split=quick",
                "data.teacher_samples=2",
                "data.train_per_scenario=2",
                "eval.teacher_samples=2",
                "until=teacher",
                f"cache_dir={tmp_path / 'cache'}",
                f"hydra.run.dir={tmp_path / 'run'}",
            ],
            timeout=900,
        )
    finally:
        if env_before is None:
            os.environ.pop(KEY_ENV)
        else:
            os.environ[KEY_ENV] = env_before
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert SECRET not in proc.stdout + proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    samples = [p for p in files if p.name == "samples.jsonl"]
    assert samples and all('"backend": "openai"' in p.read_text() for p in samples if p.stat().st_size)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
