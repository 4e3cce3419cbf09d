"""What the GPU machine lacks, installed offline from ``.gpu-deps/wheels`` before anything imports it.

Stdlib only: this runs before transformers is imported, since the machine's own transformers (5.17) is
older than the project's floor (5.24). A wheel is installed (``pip --no-index --no-deps --target
.gpu-deps/site``) only when the running Python lacks that distribution or has an older version, and the
target folder goes first on ``sys.path``; nothing outside the repository is touched. On a machine that
already satisfies everything (this CPU dev box with its venv), nothing is installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEPS = ROOT / ".gpu-deps"
WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-")


def _version_tuple(version: str) -> tuple[int, ...]:
    """Numeric release part of a version (``5.24.0`` -> (5, 24, 0)); enough to order release wheels."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:4])


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def needed_wheels(wheels: list[Path]) -> list[tuple[Path, str | None]]:
    """(wheel, installed version) for each wheel whose distribution is missing or older here."""
    out = []
    for wheel in wheels:
        m = WHEEL_NAME.match(wheel.name)
        if m is None:
            raise ValueError(f"not a wheel file name: {wheel.name}")
        have = _installed(m["name"].replace("_", "-"))
        if have is None or _version_tuple(have) < _version_tuple(m["version"]):
            out.append((wheel, have))
    return out


def bootstrap(deps_dir: Path = DEPS, cuda: bool = True) -> dict[str, Any]:
    """Install the needed wheels into ``deps_dir/site`` (once per wheel set) and put it first on sys.path.

    Without CUDA the bitsandbytes wheel is left out (QLoRA is skipped there anyway). Returns what was
    done, for the JSON: which wheels were needed and why, and whether pip ran.
    """
    wheels = sorted((deps_dir / "wheels").glob("*.whl"))
    if not cuda:
        wheels = [w for w in wheels if not w.name.startswith("bitsandbytes-")]
    info: dict[str, Any] = {"deps_dir": str(deps_dir), "wheels": [w.name for w in wheels], "installed": []}
    if not wheels:
        info["note"] = "no .gpu-deps/wheels: the running environment's packages are used as they are"
        return info
    needed = needed_wheels(wheels)
    info["installed"] = [{"wheel": w.name, "replaces": have} for w, have in needed]
    if not needed:
        return info
    site, stamp = deps_dir / "site", deps_dir / "site" / ".installed.json"
    want = sorted(w.name for w, _ in needed)
    done = json.loads(stamp.read_text()) if stamp.is_file() else None
    if done != want:
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
        cmd += ["--disable-pip-version-check", "--upgrade", "--target", str(site)]
        cmd += [str(w) for w, _ in needed]
        subprocess.run(cmd, check=True)
        stamp.write_text(json.dumps(want))
        info["pip_ran"] = True
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    return info


def ensure_stratdistill() -> str:
    """Import path of stratdistill: installed (the dev venv) or the tree's ``src/`` (the GPU machine)."""
    try:
        import stratdistill
    except ImportError:
        sys.path.insert(0, str(ROOT / "src"))
        import stratdistill
    return str(Path(stratdistill.__file__).parent)


class _Blocker(importlib.abc.MetaPathFinder):
    """Refuses imports of the named top-level packages, as if they were not installed."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname.split(".")[0] in self.names:
            raise ImportError(f"{fullname} is blocked by --block-imports (the GPU machine lacks it)")


def block_imports(names: list[str]) -> None:
    """Make the named packages unimportable, to run here as on the GPU machine (no hydra/omegaconf)."""
    if names:
        sys.meta_path.insert(0, _Blocker(set(names)))
