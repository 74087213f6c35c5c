"""Summaries shared by the benchmarks: our machines are noisy, so rounds are reported as median and spread."""

from __future__ import annotations

import statistics


def spread(values: list[float], fmt: str = '.2f') -> str:
    """Median and [min-max] of a benchmark's rounds, e.g. ``0.90 [0.72-0.97]``."""
    return f'{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]'
