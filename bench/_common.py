"""Helpers shared by the benchmarks: config, child processes, peak memory, machine facts, JSON output.

Each route of a benchmark runs in its own freshly spawned process, so that its peak resident memory
(``getrusage(RUSAGE_SELF).ru_maxrss``, read by the child itself just before it exits) is its own and
never mixed with another route's or with the parent's.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def default_cache_dir() -> str:
    """The test suite's model cache (the converted student lives there): nothing is converted twice."""
    return os.environ.get("STRATDISTILL_TEST_CACHE", str(ROOT / ".cache" / "test-models"))


def compose_cfg(overrides: list[str]) -> dict[str, Any]:
    """The project's composed Hydra config, resolved to plain containers (picklable for the children)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import stratdistill.config  # noqa: F401  (registers the schema)

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def as_cfg(container: dict[str, Any]):
    from omegaconf import OmegaConf

    return OmegaConf.create(container)


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MiB (Linux reports ru_maxrss in KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def quiet_libraries() -> None:
    """Silence progress bars and advisory warnings in a child; errors still surface."""
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")  # read by tqdm when first imported (stratdistill's bars)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (None where there is none)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def cpus_busy(seconds: float = 2.0) -> float | None:
    """How many CPUs are busy on average over ``seconds`` (this process idles meanwhile)."""
    a = _cpu_jiffies()
    time.sleep(seconds)
    b = _cpu_jiffies()
    if a is None or b is None or b[1] == a[1]:
        return None
    return (b[0] - a[0]) / (b[1] - a[1]) * (os.cpu_count() or 1)


def _own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(fn: Callable[..., dict[str, Any]], args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    quiet_libraries()
    rss_start = peak_rss_mb()
    result = fn(*args, **kwargs)
    result["peak_rss_mb"] = peak_rss_mb()
    result["rss_at_start_mb"] = rss_start
    result["process_cpu_seconds"] = _own_cpu_seconds()
    return result


def run_in_child(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run ``fn`` in a fresh spawned process and return its result dict, with that process's peak RSS.

    Also ``other_load_cpus``: the CPUs that other processes kept busy on average while it ran (all the
    machine's busy time minus the child's own CPU time, over the wall time), a measure of contention.
    """
    before, t0 = _cpu_jiffies(), time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        result = pool.submit(_child, fn, args, kwargs).result()
    after, wall = _cpu_jiffies(), time.perf_counter() - t0
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    result["wall_seconds_total"] = wall
    result["other_load_cpus"] = (
        None
        if before is None or after is None
        else max(0.0, ((after[0] - before[0]) / hz - result["process_cpu_seconds"]) / wall)
    )
    return result


def machine_facts() -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus_busy_before_start": cpus_busy(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    for pkg in ("transformers", "peft", "trl"):
        try:
            facts[pkg] = __import__(pkg).__version__
        except ImportError:
            facts[pkg] = None
    return facts


def describe_machine(facts: dict[str, Any]) -> str:
    device = "CUDA GPU present (unused: CPU benchmark)" if facts["cuda"] else "no GPU"
    busy = facts["cpus_busy_before_start"]
    return (
        f"{facts['date']}: {facts['cpus']} CPUs, torch threads {facts['torch_threads']}, {device}, "
        f"{'?' if busy is None else f'{busy:.2f}'} CPUs busy before the start; torch {facts['torch']}, "
        f"transformers {facts['transformers']}, peft {facts['peft']}, trl {facts['trl']}"
    )


def busy_warning(facts: dict[str, Any]) -> None:
    """Say so when other processes load the CPUs before we start."""
    busy = facts.get("cpus_busy_before_start")
    if busy is not None and busy > 0.25:
        print(
            f"[bench] WARNING: {busy:.2f} of {facts['cpus']} CPUs busy with other processes at the start: "
            "absolute timings will be inflated (see each route's 'other load')",
            flush=True,
        )


def write_result(result: dict[str, Any], out: str | None, name: str) -> Path:
    """Write the JSON next to the printed table: to ``out``, else to a fresh temp dir."""
    path = Path(out) if out else Path(tempfile.mkdtemp(prefix="stratdistill-bench-")) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return path


def other_load(result: dict[str, Any]) -> str:
    load = result.get("other_load_cpus")
    return "?" if load is None else f"{load:.2f}"


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
