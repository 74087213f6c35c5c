"""``random``: a seeded uniform draw per sample, a score file for the random arm of a study."""

from __future__ import annotations

import numpy as np

from srprune_basicsr.scoring.base import Scorer, ScorerContext, register_scorer


@register_scorer('random')
class RandomScorer(Scorer):
    """Uniform [0, 1) per sample, a function of (seed, dataset index) only: it reads no image."""

    reads_images = False
    options = frozenset({'seed'})

    def __init__(self, seed: int = 0, total: int = 0) -> None:
        self.values = np.random.default_rng(seed).random(total)

    @classmethod
    def from_options(cls, context: ScorerContext) -> RandomScorer:
        return cls(context.score.get('seed', 0), len(context.keys))

    def score_batch(self, lq: None, gt: None, indices: np.ndarray) -> np.ndarray:
        return self.values[indices]
