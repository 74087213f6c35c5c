"""Differences between study arms, paired by seed, with 95% intervals and win counts.

The unit of replication is the training run: two arms trained with the same seed start from the
same weights, so their PSNR difference at that seed removes the initialisation's share of the
noise. For each arm and reference (random of the same keep ratio, or full data) the per-seed
differences give a mean, a 95% Student-t interval over seeds and a win count. The per-image view
counts benchmark images whose PSNR improves (averaged over seeds); it describes where a gain
comes from, and is not an interval: images within one run are not independent replications.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# two-sided 95% quantiles of Student's t by degrees of freedom (1-30); larger df use an expansion
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile_975(df: float) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom.

    The table up to 30, interpolated linearly in 1/df between its entries for the fractional df of
    Welch's test (the expansion below is 10% low at df 2, where 3-seed studies live); beyond 30 a
    Cornish-Fisher expansion.
    """
    if df < 1:
        raise ValueError(f'degrees of freedom must be >= 1, got {df}')
    if df <= 30:
        low, high = math.floor(df), math.ceil(df)
        if low == high:
            return _T975[low - 1]
        share = (1 / low - 1 / df) / (1 / low - 1 / high)
        return _T975[low - 1] + share * (_T975[high - 1] - _T975[low - 1])
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Difference:
    """One arm against a reference on one benchmark: paired over the seeds both have."""

    mean: float
    low: float | None  # 95% interval; None with fewer than two seeds
    high: float | None
    wins: int
    seeds: int
    unpaired_half_width: float | None  # Welch's 95% half-width of the same difference, for comparison

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else (self.high - self.low) / 2

    def text(self) -> str:
        """``+0.050 [+0.031, +0.069], 3/3``: mean, interval and wins (the interval left out with one seed)."""
        interval = f' [{self.low:+.3f}, {self.high:+.3f}]' if self.low is not None else ''
        return f'{self.mean:+.3f}{interval}, {self.wins}/{self.seeds}'


def paired_difference(arm: dict[int, float], reference: dict[int, float]) -> Difference | None:
    """``arm - reference`` over the seeds both have (seed -> PSNR); None when they share no seed."""
    seeds = sorted(set(arm) & set(reference))
    if not seeds:
        return None
    diffs = np.array([arm[s] - reference[s] for s in seeds])
    mean, n = float(diffs.mean()), len(diffs)
    if n < 2:
        return Difference(mean, None, None, int((diffs > 0).sum()), n, None)
    half = t_quantile_975(n - 1) * float(diffs.std(ddof=1)) / math.sqrt(n)
    return Difference(mean, mean - half, mean + half, int((diffs > 0).sum()), n,
                      welch_half_width([arm[s] for s in arm], [reference[s] for s in reference]))


def welch_half_width(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The 95% half-width of ``mean(a) - mean(b)`` treating the runs as unpaired (Welch)."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    if va + vb == 0:
        return 0.0
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if va and vb else len(a) + len(b) - 2
    return t_quantile_975(max(df, 1.0)) * math.sqrt(va + vb)


def mean_interval(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean over seeds and its 95% half-width (None with one value): the error bars of the plots."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), None
    return float(values.mean()), t_quantile_975(len(values) - 1) * float(values.std(ddof=1)) / math.sqrt(len(values))


def images_improved(arm: dict[int, dict[str, float]], reference: dict[int, dict[str, float]]) -> tuple[int, int]:
    """(images whose PSNR, averaged over the shared seeds, is higher for ``arm``, images compared)."""
    seeds = sorted(set(arm) & set(reference))
    if not seeds:
        return 0, 0
    images = sorted(set.intersection(*(set(arm[s]) & set(reference[s]) for s in seeds)))
    better = sum(np.mean([arm[s][i] - reference[s][i] for s in seeds]) > 0 for i in images)
    return int(better), len(images)
