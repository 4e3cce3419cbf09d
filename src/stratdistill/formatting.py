"""Numbers and Markdown tables as every report and comparison prints them: undefined is "n/a"."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

UNDEFINED = "n/a"


def fmt(x: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals; None and NaN as n/a (never as 0); no "-0.00"."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return UNDEFINED
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if isinstance(x, int):
        return str(x)
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def md_table(df: pd.DataFrame, digits: int = 2) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(fmt(r[c], digits) for c in cols) + " |")
    return "\n".join(lines)
