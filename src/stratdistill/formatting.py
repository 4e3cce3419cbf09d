"""Numbers and Markdown tables as every report, comparison and command line prints them.

One module so that the same value reads the same everywhere: undefined (None, NaN, inf) is "n/a" and
never 0, a rounded zero never shows as "-0.00", a percentage and an interval have one spelling, and a
p-value below what its digits can show is written as a bound.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

UNDEFINED = "n/a"


def _undefined(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def fmt(x: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals; None and NaN as n/a (never as 0); no "-0.00"."""
    if _undefined(x):
        return UNDEFINED
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if isinstance(x, int):
        return str(x)
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def pct(x: Any, digits: int = 0) -> str:
    """A percentage already in percent (``46.2`` -> "46%"); n/a when undefined."""
    return UNDEFINED if _undefined(x) else f"{fmt(x, digits)}%"


def pvalue(p: Any, digits: int = 3) -> str:
    """A p-value with ``digits`` decimals, or "<0.001" (for 3 digits) when it is smaller than that."""
    if _undefined(p):
        return UNDEFINED
    floor = 10.0**-digits
    return f"<{floor:g}" if p < floor else f"{p:.{digits}f}"


def ci(low: Any, high: Any, digits: int = 1) -> str:
    """An interval as "[low, high]", each end with ``digits`` decimals (n/a where undefined)."""
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def md_table(df: pd.DataFrame, digits: int = 2) -> str:
    """A Markdown table of ``df``: its column names as the header, every cell through :func:`fmt`."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(fmt(r[c], digits) for c in cols) + " |")
    return "\n".join(lines)
