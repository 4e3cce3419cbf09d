"""The statistics of the teacher's spread: per scenario and temperature, across seeds.

Per training scenario and temperature:

* the teacher's share of C answers, P(C) (mean donation for a public goods game), averaged over the
  seeds, its standard deviation across seeds (ddof=1), min and max;
* the standard error expected from sampling n answers alone (binomial: sqrt(p (1 - p) / n)), and the
  seed sd that implies for k seeds (``expected_sd`` = c4(k) x SE, c4 being the small-sample bias of an
  sd), so that seed noise can be told from real instability; a chi-square test of whether the seeds
  vary more than sampling explains ((k - 1) sd^2 / SE^2 ~ chi2(k - 1)), per scenario and pooled;
* the parse rate (parsed answers / answers over all seeds);

per temperature the mean over scenarios of the seed sd, and per scenario the between-temperature
spread (max - min over temperatures of the seed mean).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from stratdistill.teacher_spread.sweep import Point

ALPHA = 0.05  # level of the "more spread than sampling explains" tests


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
    """One row per (temperature, seed, scenario), read from the points' teacher datasets."""
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
