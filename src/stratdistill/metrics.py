"""How much of the teacher's behaviour the student picked up.

For a scenario s, with x(s) a model's share of C answers (or its mean donation in a public goods game):

    improvement(s) = (x_tuned(s) - x_base(s)) / (x_teacher(s) - x_base(s)) * 100

the share of the base-to-teacher gap that fine-tuning closed: 0 = unchanged, 100 = matches the
teacher, negative = moved away, above 100 = overshot. Signed and unbounded: a tiny gap makes it large.
It is undefined (NaN) when base and teacher agree exactly. The headline is the plain mean over the
scenarios of a split; the median is its robust companion.

    bridging(s) = (|x_base - x_teacher| - |x_tuned - x_teacher|) / |x_base - x_teacher|

counts overshooting as a miss (it is at most 1, and 1 only when the tuned student matches the teacher).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def improvement(base: float, tuned: float, teacher: float) -> float:
    gap = teacher - base
    return math.nan if gap == 0 else (tuned - base) / gap * 100.0


def bridging(base: float, tuned: float, teacher: float) -> float:
    gap = abs(base - teacher)
    return math.nan if gap == 0 else (gap - abs(tuned - teacher)) / gap


def split_summary(values: Iterable[float]) -> dict[str, float]:
    """Mean and median over the finite values, and how many there were."""
    arr = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return {"mean": math.nan, "median": math.nan, "n": 0}
    return {"mean": float(arr.mean()), "median": float(np.median(arr)), "n": int(arr.size)}
