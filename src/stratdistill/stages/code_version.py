"""A stage's code version: a hash of the code it runs, so that no artifact outlives the code that made it.

The version is derived, not pinned: starting from the stage's entry modules, every ``stratdistill``
module they import (at module level or inside a function: lazy imports are how heavy parts load) is
followed, and each one's source is hashed with its comments and docstrings dropped (through the AST),
so that editing an explanation rebuilds nothing while any change to code does. Data files a stage reads
as code (the stand-in's calibration counts, the motivation sentence banks) are hashed byte for byte.

Two kinds of modules are left out: those that never change a stage's output (validation, storage,
process layout, logging: :data:`NEVER_IN_CODE_VERSION`), and the teacher backends a run does not use,
so that editing the vLLM backend does not regenerate a stand-in's answers (and the other way round).

``ast.unparse`` output may differ between Python minor versions; a cache shared across Python versions
then rebuilds once (never the reverse: stale reuse).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "stratdistill"
# Modules whose code cannot change any artifact: config checks, errors, the store itself, rank layout,
# trackers, the SLURM launcher, reports and analyses (they read artifacts, they do not make them).
NEVER_IN_CODE_VERSION = frozenset(
    {
        "stratdistill.config",
        "stratdistill.validation",
        "stratdistill.errors",
        "stratdistill.artifacts",
        "stratdistill.distributed",
        "stratdistill.slurm",
        "stratdistill.tracking",
        "stratdistill.stages.code_version",
        "stratdistill.stages.base",
    }
)
TEACHER_BACKENDS = {
    "reference": "stratdistill.teachers.reference",
    "hf": "stratdistill.teachers.hf",
    "vllm": "stratdistill.teachers.vllm_engine",
    "openai": "stratdistill.teachers.openai_server",
}


def _module_file(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(name: str, tree: ast.AST, is_package: bool) -> set[str]:
    """The ``stratdistill`` modules that ``name`` imports anywhere in its source (submodules named in a
    ``from package import x`` included)."""
    found: set[str] = set()
    base = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                root = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{root}.{node.module}" if node.module else root
            else:
                module = node.module or ""
            if module.split(".")[0] != PACKAGE:
                continue
            found.add(module)
            package = _module_file(module)
            if package is None or not _is_package(package):
                continue
            for alias in node.names:  # `from stratdistill.teachers import reference` names a module
                if _module_file(f"{module}.{alias.name}") is not None:
                    found.add(f"{module}.{alias.name}")
    return found


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            first = body[0].value if body and isinstance(body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@functools.cache
def _read(name: str, path: Path, mtime_ns: int) -> tuple[frozenset[str], str]:
    """One module's ``stratdistill`` imports and its code without comments and docstrings: each file is
    parsed once per process (per modification time), however many stages' versions include it."""
    del mtime_ns  # part of the cache key only
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports = frozenset(_imports(name, tree, _is_package(path)))
    return imports, ast.unparse(_strip_docstrings(tree))


def module_closure(entries: Iterable[str], exclude: Iterable[str] = ()) -> dict[str, Path]:
    """Every ``stratdistill`` module reachable from ``entries`` by imports, minus the excluded ones."""
    skip = set(NEVER_IN_CODE_VERSION) | set(exclude)
    todo, seen = list(entries), {}
    while todo:
        name = todo.pop()
        if name in seen or name in skip:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_read(name, path, path.stat().st_mtime_ns)[0])
        parent = name.rpartition(".")[0]
        if parent.startswith(PACKAGE):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            todo.append(parent)
    return seen


def code_version(entries: Iterable[str], exclude: Iterable[str] = (), data_files: Iterable[Path] = ()) -> str:
    """A short hash of the code (and data files) a stage runs; see the module docstring."""
    digest = hashlib.sha256()
    for name, path in sorted(module_closure(entries, exclude).items()):
        code = _read(name, path, path.stat().st_mtime_ns)[1]
        digest.update(f"{name}\n{code}\n".encode())
    for f in sorted(Path(p) for p in data_files):
        digest.update(f"{f.name}\n".encode() + f.read_bytes())
    return digest.hexdigest()[:16]


def package_data(*parts: str, pattern: str = "*") -> list[Path]:
    """Files of a data folder inside the package (e.g. the stand-in's calibration counts)."""
    package = _module_file(PACKAGE)
    if package is None:
        return []
    root = package.parent.joinpath(*parts)
    return sorted(p for p in root.rglob(pattern) if p.is_file()) if root.is_dir() else []
