"""Confidence interval of a paired median ratio, shared by bench_engine.py and bench_explainers.py.

A verdict such as "Eigen-CAM / forward <= 1.0" is the median of per-pair ratios; on this host a
single pair moves by several percent, so the median of a few dozen pairs carries an uncertainty
of its own. The percentile bootstrap below (resampling the pairs with replacement, a fixed seed
so reruns print the same interval for the same data) states it next to the verdict.
"""
from __future__ import annotations

import random
import statistics


def median_ci(ratios: list[float], level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of the median of `ratios`; None for fewer than 3 values."""
    if len(ratios) < 3:
        return None
    rng = random.Random(seed)
    n = len(ratios)
    meds = sorted(statistics.median(rng.choices(ratios, k=n)) for _ in range(resamples))
    lo = meds[int((1 - level) / 2 * resamples)]
    hi = meds[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return lo, hi


def ci_text(ci: tuple[float, float] | None, digits: int = 3) -> str:
    return "" if ci is None else f", 95 % CI {ci[0]:.{digits}f}-{ci[1]:.{digits}f}"
