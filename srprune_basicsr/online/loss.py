"""``criterion: loss``: InfoBatch for SR (Qin et al., ICLR 2024).

A sample's score is its latest training loss (the mean pixel loss of its crops in the last epoch
that trained it; unscored samples count as hard). Each pruning epoch leaves out a random share
``ratio`` of the samples scored below the mean, and weights the loss of the kept below-mean samples
by ``1 / (1 - ratio)``, so the expected gradient of the pixel loss is that of the whole set
(``rescale: false`` keeps their weight at 1: the epoch then leans towards the harder samples).
"""

from __future__ import annotations

import numpy as np

NEEDS = 'loss'  # what the model records per sample


class LossCriterion:
    needs = NEEDS

    def __init__(self, ratio: float, size: int, rescale: bool = True) -> None:
        self.ratio, self.rescale = ratio, rescale
        self.scores = np.full(size, np.nan)

    def update(self, means: np.ndarray, seen: np.ndarray) -> None:
        """Fold a finished epoch's merged per-sample means: samples it trained take their new loss."""
        self.scores[seen] = means[seen]

    def ready(self) -> bool:
        return bool(np.isfinite(self.scores).any())

    def select(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
        """(kept mask, loss weight per sample, what to log) for one pruning epoch."""
        scored = np.isfinite(self.scores)
        mean = float(self.scores[scored].mean())
        below = np.flatnonzero(scored & (self.scores < mean))
        keep_below = int((1 - self.ratio) * len(below))
        kept_below = rng.choice(below, keep_below, replace=False) if keep_below else np.empty(0, dtype=np.int64)
        kept = np.ones(len(self.scores), dtype=bool)
        kept[below] = False
        kept[kept_below] = True
        weights = np.ones(len(self.scores))
        if self.rescale:
            weights[kept_below] = 1 / (1 - self.ratio)
        return kept, weights, {'mean_score': mean, 'below_mean': int(len(below))}

    def smallest_kept(self) -> int:
        """The fewest samples an epoch can keep (all but one below the mean)."""
        n = len(self.scores)
        return n - (n - 1) + int((1 - self.ratio) * (n - 1))

    def state(self) -> dict[str, np.ndarray]:
        return {'scores': self.scores}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.scores[:] = state['scores']
