"""How stable is the teacher signal? The same teacher at several temperatures and seeds, teacher only.

For every (temperature, seed) this runs the pipeline's teacher-generation stage alone
(:func:`stratdistill.pipeline.generate_stage`, content-addressed, so a rerun or a later
``python launch.py`` with the same settings reuses the answers) and then reports, per training
scenario and temperature:

* the teacher's share of C answers, P(C) (mean donation for a public goods game), averaged over the
  seeds, its standard deviation across seeds (ddof=1), min and max;
* the standard error expected from sampling n answers alone (binomial: sqrt(p (1 - p) / n)), and the
  seed sd that implies for k seeds (``expected_sd`` = c4(k) x SE, c4 being the small-sample bias of an
  sd), so that seed noise can be told from real instability; a chi-square test of whether the seeds
  vary more than sampling explains ((k - 1) sd^2 / SE^2 ~ chi2(k - 1)), per scenario and pooled;
* the parse rate (parsed answers / answers over all seeds);

per temperature the mean over scenarios of the seed sd, and per scenario the between-temperature
spread (max - min over temperatures of the seed mean).

Writes ``teacher_spread.md`` (a plain-language summary on top), ``teacher_spread.csv`` (one row per
scenario x temperature) and ``teacher_spread.png`` (P(C) against temperature per scenario, with seed
error bars)::

    python -m stratdistill.teacher_spread --temperatures 0.4 0.8 1.2 --seeds 0 1 2 [--out DIR] \\
        [--conf conf] [Hydra overrides, e.g. teacher=smollm2_hf data.teacher_samples=20 split=quick]

Bad input fails before anything is generated with one line ``stratdistill: error: ...`` and exit 2.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import open_dict

from stratdistill.errors import ConfigError, TeacherStopped

MD_FILE, CSV_FILE, PNG_FILE = "teacher_spread.md", "teacher_spread.csv", "teacher_spread.png"
SET_BY_OPTIONS = {"temperature.teacher": "--temperatures", "seed": "--seeds"}
ALPHA = 0.05  # level of the "more spread than sampling explains" tests


@dataclass
class Point:
    """One (temperature, seed) of the grid and its generate artifact."""

    temperature: float
    seed: int
    cfg: Any
    artifact: Any = None  # stratdistill.artifacts.Artifact once generated


@dataclass
class SpreadResult:
    table: pd.DataFrame  # one row per scenario x temperature
    by_temperature: pd.DataFrame  # one row per temperature
    points: list[Point]
    summary: list[str]
    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------------
# Configs


def find_conf(explicit: str | None) -> Path:
    """The Hydra config folder: ``--conf``, else ./conf, else the repository's conf/ next to src/."""
    if explicit:
        path = Path(explicit).expanduser()
        if not (path / "config.yaml").is_file():
            raise ConfigError("--conf", explicit, "a folder holding the repository's config.yaml (conf/)")
        return path.resolve()
    for cand in (Path.cwd() / "conf", Path(__file__).resolve().parents[2] / "conf"):
        if (cand / "config.yaml").is_file():
            return cand.resolve()
    raise ConfigError(
        "--conf", None, "the repository's conf/ folder (run from the repository root or pass --conf)"
    )


def compose_base(conf_dir: Path, overrides: list[str]) -> Any:
    """The config with the user's overrides, composed once (Hydra's strict types and keys apply)."""
    from hydra import compose, initialize_config_dir

    import stratdistill.config  # noqa: F401  (registers the schema)

    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def at_point(base: Any, temperature: float, seed: int) -> Any:
    """``base`` with ``temperature.teacher`` and ``seed`` set, as the overrides would set them (nothing in
    conf/ interpolates either, and the typed nodes check the assigned values)."""
    cfg = copy.deepcopy(base)
    with open_dict(cfg):
        cfg.temperature.teacher = float(temperature)
        cfg.seed = int(seed)
    return cfg


def _check_overrides(overrides: list[str]) -> None:
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key in SET_BY_OPTIONS:
            raise ConfigError(key, o.split("=", 1)[-1], f"set with {SET_BY_OPTIONS[key]}, not as an override")


def compose_grid(
    conf_dir: Path, overrides: list[str], temperatures: Sequence[float], seeds: Sequence[int]
) -> list[Point]:
    """Compose and validate every grid point; raise on the first bad one, before anything runs."""
    from stratdistill.config import validate

    _check_overrides(overrides)
    base = compose_base(conf_dir, overrides)
    points = []
    for t in temperatures:
        for s in seeds:
            cfg = at_point(base, t, s)
            validate(cfg)
            points.append(Point(float(t), int(s), cfg))
    return points


# --------------------------------------------------------------------------------------------------
# Statistics


def c4(k: int) -> float:
    """E[sd] / sigma for k normal draws (sd with ddof=1)."""
    if k < 2:
        return math.nan
    return math.sqrt(2 / (k - 1)) * math.exp(math.lgamma(k / 2) - math.lgamma((k - 1) / 2))


def seed_values(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario in one artifact: the value (P(C) or mean donation), n, n_ok and the within-seed
    variance of one answer (p (1 - p) for C/D; the donations' variance, ddof=1)."""
    from stratdistill.dataset import cooperation_rates

    out: dict[str, dict[str, Any]] = {}
    for key, e in cooperation_rates(rows).items():
        r0 = next(r for r in rows if r["scenario"] == key)
        entry: dict[str, Any] = {
            "context": r0.get("context") or "-",
            "game": r0.get("game"),
            "n": e["n"],
            "n_ok": e["n_ok"],
            "metric": "p_c",
            "value": None,
            "unit_var": None,
        }
        if "mean_donation" in e:
            vals = np.repeat([float(k) for k in e["distribution"]], list(e["distribution"].values()))
            entry |= {
                "metric": "mean_donation",
                "value": e["mean_donation"],
                "unit_var": float(np.var(vals, ddof=1)) if vals.size > 1 else 0.0,
            }
        elif "p_c" in e:
            entry |= {"value": e["p_c"], "unit_var": e["p_c"] * (1 - e["p_c"])}
        out[key] = entry
    return out


def per_seed_table(points: list[Point]) -> pd.DataFrame:
    """One row per (temperature, seed, scenario), read from the generated artifacts."""
    from stratdistill.dataset import load_samples

    rows = []
    for p in points:
        for key, e in seed_values(load_samples(p.artifact.path)).items():
            rows.append({"temperature": p.temperature, "seed": p.seed, "scenario": key, **e})
    return pd.DataFrame(rows)


def _chi2_sf(stat: float, df: int) -> float:
    from scipy import stats

    return float(stats.chi2.sf(stat, df))


def _overdispersion_p(sd: float, se: float, k: int) -> float:
    """P(seed sd >= observed | seeds differ only by sampling), chi-square with k - 1 df."""
    if k < 2 or not math.isfinite(sd):
        return math.nan
    if se == 0:
        return math.nan if sd == 0 else 0.0
    return _chi2_sf((k - 1) * sd**2 / se**2, k - 1)


def summarise(seeds: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario x temperature (scenarios in first-seen order, temperatures ascending)."""
    order = list(dict.fromkeys(seeds["scenario"]))
    rows = []
    for (scenario, temperature), g in seeds.groupby(["scenario", "temperature"], sort=False):
        g = g.sort_values("seed")
        ok = g[g["value"].notna()]
        vals = ok["value"].to_numpy(float)
        k = len(vals)
        n_ok = float(ok["n_ok"].mean()) if k else math.nan
        mean = float(vals.mean()) if k else math.nan
        sd = float(np.std(vals, ddof=1)) if k >= 2 else math.nan
        if k and g["metric"].iloc[0] == "p_c":
            unit_var = mean * (1 - mean)
        else:
            unit_var = float(ok["unit_var"].mean()) if k else math.nan
        se = math.sqrt(unit_var / n_ok) if k and n_ok > 0 else math.nan
        rows.append(
            {
                "scenario": scenario,
                "context": g["context"].iloc[0],
                "game": g["game"].iloc[0],
                "metric": g["metric"].iloc[0],
                "temperature": temperature,
                "n_seeds": k,
                "seeds": " ".join(str(s) for s in ok["seed"]),
                "values": " ".join(f"{v:.6g}" for v in vals),
                "mean": mean,
                "seed_sd": sd,
                "min": float(vals.min()) if k else math.nan,
                "max": float(vals.max()) if k else math.nan,
                "n_per_seed": float(g["n"].mean()),
                "n_ok_per_seed": n_ok,
                "sampling_se": se,
                "expected_sd": c4(k) * se,
                "sd_over_expected": sd / (c4(k) * se) if k >= 2 and se > 0 else math.nan,
                "p_overdispersion": _overdispersion_p(sd, se, k),
                "parse_rate": float(g["n_ok"].sum() / g["n"].sum()) if g["n"].sum() else math.nan,
            }
        )
    table = pd.DataFrame(rows)
    rng = table.groupby("scenario")["mean"].agg(lambda m: m.max() - m.min())
    table["between_temperature_range"] = table["scenario"].map(rng)
    table["_o"] = table["scenario"].map({s: i for i, s in enumerate(order)})
    table = table.sort_values(["_o", "temperature"], kind="stable").drop(columns="_o")
    return table.reset_index(drop=True)


def by_temperature(table: pd.DataFrame) -> pd.DataFrame:
    """Per temperature, over the P(C) scenarios: mean seed sd vs the sd sampling alone would give, and a
    pooled chi-square test (sum of (k - 1) sd^2 / SE^2 over scenarios)."""
    rows = []
    for t, g in table[table["metric"] == "p_c"].groupby("temperature", sort=True):
        usable = g[(g["n_seeds"] >= 2) & (g["sampling_se"] > 0)]
        stat = float(((usable["n_seeds"] - 1) * usable["seed_sd"] ** 2 / usable["sampling_se"] ** 2).sum())
        dof = int((usable["n_seeds"] - 1).sum())
        rows.append(
            {
                "temperature": t,
                "scenarios": len(g),
                "mean_p_c": float(g["mean"].mean()),
                "mean_seed_sd": float(g["seed_sd"].mean()),
                "mean_expected_sd": float(g["expected_sd"].mean()),
                "mean_sampling_se": float(g["sampling_se"].mean()),
                "pooled_p_overdispersion": _chi2_sf(stat, dof) if dof else math.nan,
                "scenarios_overdispersed": int((g["p_overdispersion"] < ALPHA).sum()),
                "mean_parse_rate": float(g["parse_rate"].mean()),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# Output


def _t(t: float) -> str:
    return f"{t:g}"


def _fmt(x: float, spec: str = ".3f") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def _fp(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def summary_lines(table: pd.DataFrame, per_t: pd.DataFrame, teacher: str) -> list[str]:
    pc = table[table["metric"] == "p_c"]
    n = round(float(table["n_ok_per_seed"].mean())) if len(table) else 0
    seeds = sorted({s for ss in table["seeds"] for s in ss.split()}, key=int)
    lines = [
        f"Teacher {teacher}: {table['scenario'].nunique()} training scenarios, temperatures "
        f"{', '.join(_t(t) for t in sorted(table['temperature'].unique()))}, seeds {', '.join(seeds)}, "
        f"~{n} parsed answers per scenario and seed."
    ]
    for r in per_t.itertuples():
        verdict = "more than" if r.pooled_p_overdispersion < ALPHA else "consistent with"
        lines.append(
            f"At T={_t(r.temperature)} the teacher's P(C) moves by {_fmt(r.mean_seed_sd)} on average "
            f"between seeds, {_fmt(r.mean_expected_sd)} expected from sampling {n} answers alone: "
            f"{verdict} sampling noise (pooled test p={_fp(r.pooled_p_overdispersion)}; "
            f"{r.scenarios_overdispersed}/{r.scenarios} scenarios at p<{ALPHA}). Mean P(C) "
            f"{_fmt(r.mean_p_c)}, parse rate {_fmt(r.mean_parse_rate * 100, '.1f')}%."
        )
    if pc["temperature"].nunique() >= 2:
        rng = pc.drop_duplicates("scenario").set_index("scenario")["between_temperature_range"]
        lo, hi = pc["temperature"].min(), pc["temperature"].max()
        lines.append(
            f"Between temperatures {_t(lo)} and {_t(hi)} a scenario's seed-mean P(C) moves by "
            f"{_fmt(float(rng.mean()))} on average (most: {rng.idxmax()}, {_fmt(float(rng.max()))}; least: "
            f"{rng.idxmin()}, {_fmt(float(rng.min()))})."
        )
    don = table[table["metric"] == "mean_donation"]
    for scen, g in don.groupby("scenario", sort=False):
        parts = [
            f"T={_t(r.temperature)}: ${_fmt(r.mean, '.2f')} ± {_fmt(r.seed_sd, '.2f')}"
            for r in g.itertuples()
        ]
        lines.append(f"{scen}: mean donation (± seed sd) {'; '.join(parts)}.")
    return lines


def _md_table(df: pd.DataFrame) -> list[str]:
    cols = list(df.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return out


def write_markdown(
    path: Path, summary: list[str], table: pd.DataFrame, per_t: pd.DataFrame, points: list[Point], meta: dict
) -> None:
    temps = sorted(table["temperature"].unique())
    lines = ["# Teacher temperature-variance analysis", "", *(f"- {s}" for s in summary), ""]
    if meta.get("stand_in"):
        lines += [
            "> The teacher is the offline **stand-in** (`teacher=reference`), not a language model: its "
            "seeds differ only by sampling by construction, and temperature rescales its logit by 0.8/T.",
            "",
        ]
    lines += [
        "How to read: *seed sd* is the standard deviation across seeds of a scenario's P(C); *expected sd* "
        "is what it would be on average if the seeds differed only by drawing n answers "
        "(binomial SE sqrt(p(1-p)/n) times c4(k), the small-sample bias of an sd over k seeds). A seed "
        "sd well above the expected one (small *p*) means the teacher signal is less stable than its "
        "sample size suggests. *Range over T* is max - min of the seed mean across temperatures.",
        "",
        "## Per temperature (P(C) scenarios)",
        "",
    ]
    pt = pd.DataFrame(
        {
            "T": [_t(t) for t in per_t["temperature"]],
            "scenarios": per_t["scenarios"],
            "mean P(C)": per_t["mean_p_c"].map(_fmt),
            "mean seed sd": per_t["mean_seed_sd"].map(_fmt),
            "mean expected sd": per_t["mean_expected_sd"].map(_fmt),
            "mean sampling SE": per_t["mean_sampling_se"].map(_fmt),
            "pooled p": per_t["pooled_p_overdispersion"].map(_fp),
            f"scenarios p<{ALPHA}": per_t["scenarios_overdispersed"],
            "parse rate": per_t["mean_parse_rate"].map(lambda x: _fmt(x * 100, ".1f") + "%"),
        }
    )
    lines += [*_md_table(pt), "", "## Per scenario: mean ± seed sd (expected sd from sampling)", ""]
    wide = []
    for scen, g in table.groupby("scenario", sort=False):
        row = {"scenario": scen, "metric": g["metric"].iloc[0]}
        by_t = {r.temperature: r for r in g.itertuples()}
        for t in temps:
            r = by_t.get(t)
            row[f"T={_t(t)}"] = (
                f"{_fmt(r.mean)} ± {_fmt(r.seed_sd)} ({_fmt(r.expected_sd)})" if r is not None else "–"
            )
        row["range over T"] = _fmt(float(g["between_temperature_range"].iloc[0]))
        row["parse rate"] = (
            _fmt(float((g["parse_rate"] * g["n_seeds"]).sum() / g["n_seeds"].sum()) * 100, ".1f") + "%"
        )
        wide.append(row)
    lines += [*_md_table(pd.DataFrame(wide)), "", f"![P(C) against temperature]({PNG_FILE})", ""]
    lines += [
        "## Provenance",
        "",
        f"Teacher: {meta.get('teacher', '?')}. Every (temperature, seed) is one generate artifact, "
        "content-addressed in the cache (a rerun reuses it; so does `python launch.py` with the same "
        "teacher settings). Per-seed values are in the CSV's `values` column.",
        "",
    ]
    prov = pd.DataFrame(
        {
            "T": [_t(p.temperature) for p in points],
            "seed": [p.seed for p in points],
            "artifact": [f"`{p.artifact.path}`" for p in points],
            "reused": ["yes" if p.artifact.reused else "no (generated now)" for p in points],
        }
    )
    lines += [*_md_table(prov), ""]
    from stratdistill.artifacts import atomic_write_text

    atomic_write_text(path, "\n".join(lines))


def write_figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(table["scenario"]))
    ncols = min(5, len(scenarios)) or 1
    nrows = math.ceil(len(scenarios) / ncols) or 1
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.6 * ncols, 2.2 * nrows + 0.6), squeeze=False, constrained_layout=True
    )
    for ax in axes.flat[len(scenarios) :]:
        ax.set_visible(False)
    for ax, scen in zip(axes.flat, scenarios, strict=False):
        g = table[table["scenario"] == scen].sort_values("temperature")
        t = g["temperature"].to_numpy(float)
        mean = g["mean"].to_numpy(float)
        band = np.nan_to_num(g["sampling_se"].to_numpy(float))
        ax.fill_between(t, mean - band, mean + band, color="0.85", lw=0, label="± sampling SE")
        for ti, vals in zip(t, g["values"], strict=True):
            v = [float(x) for x in vals.split()]
            ax.plot([ti] * len(v), v, ".", color="tab:blue", alpha=0.35, ms=4)
        ax.errorbar(
            t, mean, yerr=np.nan_to_num(g["seed_sd"].to_numpy(float)), fmt="o-", ms=4, capsize=3,
            color="tab:blue", label="mean ± seed sd",
        )  # fmt: skip
        donation = g["metric"].iloc[0] == "mean_donation"
        if not donation:
            ax.set_ylim(-0.03, 1.03)
        ax.set_title(scen, fontsize=9)
        ax.set_xticks(t, [_t(x) for x in t], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel("mean donation ($)" if donation else "P(C)", fontsize=8)
    axes.flat[0].legend(fontsize=6, loc="best")
    fig.supxlabel("teacher temperature", fontsize=9)
    fig.suptitle("Teacher P(C) per scenario: seed mean ± sd across seeds (dots: seeds)", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# Running


def run_spread(
    temperatures: Sequence[float],
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    conf: str | None = None,
) -> SpreadResult:
    """Validate every point, generate (or reuse) the teacher's answers for each, write the outputs."""
    started = time.time()
    temperatures = sorted(dict.fromkeys(float(t) for t in temperatures))
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not temperatures:
        raise ConfigError("--temperatures", [], "one or more temperatures")
    if not seeds:
        raise ConfigError("--seeds", [], "one or more seeds")
    points = compose_grid(find_conf(conf), list(overrides), temperatures, seeds)

    from stratdistill.artifacts import ArtifactStore
    from stratdistill.pipeline import generate_stage
    from stratdistill.scenarios import load_library, resolve_split

    cfg0 = points[0].cfg
    library = load_library(list(cfg0.games.library_dirs), cfg0.games.prompt_dir)
    train, _ = resolve_split(library, cfg0.split)  # temperature and seed do not change the split
    for p in points:
        store = ArtifactStore(p.cfg.cache_dir)
        print(f"[teacher_spread] T={_t(p.temperature)} seed={p.seed}", flush=True)
        p.artifact = generate_stage(p.cfg, store, library, train)

    table = summarise(per_seed_table(points))
    per_t = by_temperature(table)
    manifest = points[0].artifact.manifest
    desc = manifest.get("teacher_description", cfg0.teacher.name)
    meta = {
        "teacher": f"`{cfg0.teacher.name}` — {desc}",
        "stand_in": str(desc).startswith("offline STAND-IN"),
    }
    summary = summary_lines(
        table, per_t, f"`{cfg0.teacher.name}`" + (" (offline stand-in)" if meta["stand_in"] else "")
    )

    out_dir = Path(out) if out else Path("outputs") / "teacher_spread" / time.strftime("%Y-%m-%d/%H-%M-%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"md": out_dir / MD_FILE, "csv": out_dir / CSV_FILE, "png": out_dir / PNG_FILE}
    table.to_csv(files["csv"], index=False, float_format="%.6g")
    write_figure(table, files["png"])
    write_markdown(files["md"], summary, table, per_t, points, meta)
    return SpreadResult(table, per_t, points, summary, out_dir, files, time.time() - started)


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(options for argparse, Hydra overrides): ``key=value``, ``+key=value`` and ``~key`` are overrides."""
    opts, overrides = [], []
    for a in argv:
        if (not a.startswith("-") and "=" in a) or a.startswith("~"):
            overrides.append(a)
        else:
            opts.append(a)
    return opts, overrides


def _one_line(exc: BaseException) -> str:
    """A Hydra/OmegaConf error in one line: its first line, and its cause's (which names the key)."""

    def first(e: BaseException) -> str:
        return next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)

    text = first(exc)
    if exc.__cause__ is not None and first(exc.__cause__) not in text:
        text = f"{text.rstrip('.')}: {first(exc.__cause__)}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stratdistill.teacher_spread",
        description=(
            "Teacher-only temperature-variance analysis: generate (or reuse) the teacher's training answers "
            "at every temperature x seed and report the spread of its per-scenario P(C). Any key=value is "
            "a Hydra override (e.g. teacher=smollm2_hf data.teacher_samples=20 split=quick)."
        ),
    )
    parser.add_argument("--temperatures", type=float, nargs="+", required=True, help="teacher temperatures")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    parser.add_argument(
        "--out", default=None, help="output folder (default outputs/teacher_spread/<date>/<time>)"
    )
    parser.add_argument("--conf", default=None, help="Hydra config folder (default ./conf, else the repo's)")
    argv = list(sys.argv[1:] if argv is None else argv)
    opts, overrides = split_argv(argv)
    args = parser.parse_args(opts)

    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        result = run_spread(args.temperatures, args.seeds, overrides, args.out, args.conf)
    except ConfigError as exc:
        print(f"stratdistill: error: {exc}", file=sys.stderr)
        return 2
    except (HydraException, OmegaConfBaseException) as exc:
        print(f"stratdistill: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except TeacherStopped as exc:
        print(
            f"stratdistill: teacher stopped: {exc}. Every finished chunk of answers is kept; "
            "run the same command again to resume.",
            file=sys.stderr,
        )
        return 1
    print()
    print("\n".join(result.summary))
    reused = sum(p.artifact.reused for p in result.points)
    print(
        f"\n{len(result.points)} teacher datasets ({reused} reused), {result.seconds:.1f} s. "
        f"Report: {result.files['md']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
