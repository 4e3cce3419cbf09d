"""The per-scenario results table: teacher, base and tuned student side by side, with the paper's
figures where the scenario is published, the gap metrics, the estimator's coverage and, where the
students were sampled, the tests. An undefined value (no parsed answer, no gap) stays undefined: None
or NaN, shown as n/a, never 0.

The report writes it as ``results.csv`` (:data:`RESULTS_CSV`); the sweep comparison reads it back with
:func:`read_results`. Its columns are what users read, so the metric is named as the report names it:
``gap_closed`` (and ``paper_gap_closed``, ``gap_closed_low`` / ``gap_closed_high`` from the report).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from stratdistill.metrics import bridging, gap_closed, js_divergence, two_proportion_ztest
from stratdistill.reference import paper_values
from stratdistill.scenarios import PublicGoodsGame, Scenario

RESULTS_CSV = "results.csv"  # the per-scenario table in a run's output folder (not evaluate's results.jsonl)
# results.csv before the metric's code name became "gap_closed" (issue 11): an older run or sweep folder
# still loads, its columns renamed on reading.
LEGACY_COLUMNS = {
    "improvement": "gap_closed",
    "improvement_low": "gap_closed_low",
    "improvement_high": "gap_closed_high",
    "paper_improvement": "paper_gap_closed",
}


def read_results(path: Path) -> pd.DataFrame:
    """A run's results.csv, old column names (``improvement``...) read as the current ones."""
    df = pd.read_csv(path)
    return df.rename(columns={old: new for old, new in LEGACY_COLUMNS.items() if old in df and new not in df})


def two_by_two(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of 2x2 scenarios (a share of C, C/D counts, a context x game grid), without the public
    goods games (a mean donation): what the heatmaps, the intervals and the ANOVA are computed on."""
    return results[results["kind"] == "2x2"]


def _value(entry: dict[str, Any]) -> float | None:
    """A model's behaviour on one scenario: P(C) or the mean donation; None when undefined."""
    if "p_c" in entry:
        return entry["p_c"]
    return entry.get("mean_donation")


def _distribution(entry: dict[str, Any]) -> dict[str, float]:
    """A model's answer distribution on one scenario: {"C": p, "D": 1 - p} or {dollars: share}; empty
    when undefined."""
    if "p_c" in entry:
        return {} if entry["p_c"] is None else {"C": entry["p_c"], "D": 1 - entry["p_c"]}
    dist = entry.get("distribution") or {}
    total = sum(dist.values())
    return {str(k): v / total for k, v in dist.items()} if total else {}


def _tests(teacher: dict[str, Any], base: dict[str, Any], tuned: dict[str, Any]) -> dict[str, float | None]:
    """Jensen-Shannon divergence to the teacher for both students, and, where the students were sampled
    (so that they have counts), z-tests base vs tuned and tuned vs teacher. None where a distribution is
    undefined (no parsed answer)."""
    td, bd, ud = _distribution(teacher), _distribution(base), _distribution(tuned)
    keys = sorted(set(td) | set(bd) | set(ud))

    def js(a: dict[str, float]) -> float | None:
        return js_divergence([a.get(k, 0) for k in keys], [td.get(k, 0) for k in keys]) if a and td else None

    out: dict[str, float | None] = {
        "js_base_teacher": js(bd),
        "js_tuned_teacher": js(ud),
        "z_base_tuned": None,
        "p_base_tuned": None,
        "z_tuned_teacher": None,
        "p_tuned_teacher": None,
    }
    counted = [e.get("c") is not None and e.get("n_ok") for e in (base, tuned, teacher)]
    if all(counted):
        out["z_base_tuned"], out["p_base_tuned"] = two_proportion_ztest(
            base["c"], base["n_ok"], tuned["c"], tuned["n_ok"]
        )
        out["z_tuned_teacher"], out["p_tuned_teacher"] = two_proportion_ztest(
            tuned["c"], tuned["n_ok"], teacher["c"], teacher["n_ok"]
        )
    return out


def _gap(fn: Any, base: float | None, tuned: float | None, teacher: float | None) -> float:
    """A gap metric, NaN (shown as n/a) when a value is undefined or base equals the teacher."""
    if base is None or tuned is None or teacher is None:
        return float("nan")
    return fn(base, tuned, teacher)


def _estimator_columns(entry: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Estimator-specific figures: the raw (temperature 1) mass and P(C) of a forced choice; each form
    family's P(C) under eval=forms."""
    out: dict[str, Any] = {}
    if entry.get("estimator") == "forced_choice":
        out[f"{prefix}_raw_valid_mass"] = entry.get("raw_valid_mass")
        out[f"{prefix}_raw"] = _value(entry.get("raw") or {})
    for fam, fig in (entry.get("form_families") or {}).items():
        out[f"{prefix}_form_{fam}"] = _value(fig)
        out[f"{prefix}_form_{fam}_mass"] = fig.get("valid_mass")
    return out


def assemble(
    eval_splits: dict[str, list[Scenario]],
    teacher_rates: dict[str, dict[str, Any]],
    base: dict[str, dict[str, Any]],
    tuned: dict[str, dict[str, Any]],
    training_shares: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    rows = []
    shares = training_shares or {}
    for split, scenarios in eval_splits.items():
        for sc in scenarios:
            t, b, u = _value(teacher_rates[sc.key]), _value(base[sc.key]), _value(tuned[sc.key])
            paper = paper_values(sc.key, public_goods=isinstance(sc.game, PublicGoodsGame))
            rows.append(
                {
                    "split": split,
                    "scenario": sc.key,
                    "context": sc.context_key or "-",
                    "game": sc.game.key,
                    "kind": sc.game.kind,
                    "teacher": t,
                    "base": b,
                    "tuned": u,
                    "gap_closed": _gap(gap_closed, b, u, t),
                    "bridging": _gap(bridging, b, u, t),
                    "teacher_n": teacher_rates[sc.key]["n"],
                    "teacher_c": teacher_rates[sc.key].get("c"),
                    "teacher_n_ok": teacher_rates[sc.key]["n_ok"],
                    "base_c": base[sc.key].get("c"),
                    "base_n": base[sc.key].get("n_ok"),
                    "tuned_c": tuned[sc.key].get("c"),
                    "tuned_n": tuned[sc.key].get("n_ok"),
                    "teacher_failed": teacher_rates[sc.key]["n_failed"],
                    "base_valid_mass": base[sc.key]["valid_mass"],
                    "tuned_valid_mass": tuned[sc.key]["valid_mass"],
                    **_estimator_columns(base[sc.key], "base"),
                    **_estimator_columns(tuned[sc.key], "tuned"),
                    "trained_share": (shares.get(sc.key) or {}).get("trained_p_c"),
                    "paper_teacher": paper["teacher"],
                    "paper_base": paper["base"],
                    "paper_tuned": paper["tuned"],
                    "paper_gap_closed": _gap(gap_closed, paper["base"], paper["tuned"], paper["teacher"]),
                    **_tests(teacher_rates[sc.key], base[sc.key], tuned[sc.key]),
                    "distributions": json.dumps(
                        {
                            "teacher": _distribution(teacher_rates[sc.key]),
                            "base": _distribution(base[sc.key]),
                            "tuned": _distribution(tuned[sc.key]),
                        }
                    )
                    if isinstance(sc.game, PublicGoodsGame)
                    else None,
                }
            )
    return pd.DataFrame(rows)
