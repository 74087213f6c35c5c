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

RESOLUTION = 4  # decimals of a PSNR in study.csv: wins and ties are counted at this resolution


def t_quantile_975(df: float) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (fractional for Welch's test), from scipy."""
    if df < 1:
        raise ValueError(f'degrees of freedom must be >= 1, got {df}')
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


@dataclass(frozen=True)
class Difference:
    """One arm against a reference on one benchmark: paired over the seeds both have."""

    mean: float
    low: float | None  # 95% interval; None with fewer than two seeds
    high: float | None
    wins: int   # seeds where the arm is higher, at the resolution of study.csv
    seeds: int
    unpaired_half_width: float | None  # Welch's 95% half-width of the same difference, for comparison
    ties: int = 0  # seeds where both are equal at that resolution: neither a win nor a loss

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else (self.high - self.low) / 2

    def text(self) -> str:
        """``+0.050 [+0.031, +0.069], 3/3``: mean, interval and wins (the interval left out with one seed).

        Ties are named (``1/3, 1 tie``), so a count of wins never hides them among the wins or losses.
        """
        interval = f' [{self.low:+.3f}, {self.high:+.3f}]' if self.low is not None else ''
        ties = f', {self.ties} tie' + ('s' if self.ties > 1 else '') if self.ties else ''
        return f'{self.mean:+.3f}{interval}, {self.wins}/{self.seeds}{ties}'


def paired_difference(arm: dict[int, float], reference: dict[int, float]) -> Difference | None:
    """``arm - reference`` over the seeds both have (seed -> PSNR); None when they share no seed."""
    seeds = sorted(set(arm) & set(reference))
    if not seeds:
        return None
    diffs = np.array([arm[s] - reference[s] for s in seeds])
    mean, n = float(diffs.mean()), len(diffs)
    wins, ties = _wins_and_ties(arm, reference, seeds)
    if n < 2:
        return Difference(mean, None, None, wins, n, None, ties)
    half = t_quantile_975(n - 1) * float(diffs.std(ddof=1)) / math.sqrt(n)
    return Difference(mean, mean - half, mean + half, wins, n,
                      welch_half_width([arm[s] for s in arm], [reference[s] for s in reference]), ties)


def _wins_and_ties(arm: dict[int, float], reference: dict[int, float], seeds: list[int]) -> tuple[int, int]:
    """Seeds the arm wins and seeds it ties, on PSNRs rounded as study.csv stores them.

    Counting on the stored resolution means a recount from study.csv gives the same numbers, and two
    runs equal to float noise (the same arm and seed trained twice) count as a tie, not a win.
    """
    diffs = [round(round(arm[s], RESOLUTION) - round(reference[s], RESOLUTION), RESOLUTION) for s in seeds]
    return sum(d > 0 for d in diffs), sum(d == 0 for d in diffs)


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


def paired_p_value(arm: dict[int, float], reference: dict[int, float]) -> float | None:
    """Two-sided p-value of the paired t-test of ``arm - reference`` over the shared seeds (None below two seeds).

    The same test as the intervals: an interval that excludes 0 is a p-value below 0.05. A zero spread
    with a non-zero mean gives 0, with a zero mean 1.
    """
    seeds = sorted(set(arm) & set(reference))
    if len(seeds) < 2:
        return None
    diffs = np.array([arm[s] - reference[s] for s in seeds])
    spread = float(diffs.std(ddof=1))
    if spread == 0:
        return 0.0 if diffs.mean() != 0 else 1.0
    from scipy import stats

    t = float(diffs.mean()) / (spread / math.sqrt(len(diffs)))
    return float(2 * stats.t.sf(abs(t), len(diffs) - 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (family-wise error at any level).

    Sorted ascending, the i-th smallest (from 0) is multiplied by ``m - i``, then made non-decreasing
    and capped at 1; a comparison is significant at level a for the whole family when its adjusted
    value is below a.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
