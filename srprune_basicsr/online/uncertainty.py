"""``criterion: uncertainty``: dynamic-uncertainty pruning (He et al. 2023) inside the run that trains.

Each epoch records every trained sample's mean training PSNR (the crops of that epoch). After
``window`` epochs, a sample's uncertainty is the two-run method's score on the epochs so far: the
mean over sliding windows of ``window`` epochs of the std of its PSNR
(``scoring.dynamic_uncertainty``). Each pruning epoch keeps the ``keep`` most uncertain share;
samples without two measurements in any window (left out too often, or never seen) count as the
most uncertain and are kept. The kept samples' losses are not reweighted.
"""

from __future__ import annotations

import math

import numpy as np

from srprune_basicsr.scoring.dynamic_uncertainty import dynamic_uncertainty

NEEDS = 'psnr'


class UncertaintyCriterion:
    needs = NEEDS

    def __init__(self, keep: float, window: int, size: int) -> None:
        self.keep, self.window, self.size = keep, window, size
        self.values = np.zeros((0, size), dtype=np.float32)
        self.seen = np.zeros((0, size), dtype=bool)

    def update(self, means: np.ndarray, seen: np.ndarray) -> None:
        self.values = np.concatenate([self.values, means[None].astype(np.float32)])
        self.seen = np.concatenate([self.seen, seen[None]])

    def ready(self) -> bool:
        return len(self.values) >= self.window

    def select(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
        scores, counted = dynamic_uncertainty(self.values.astype(np.float64), self.seen, self.window)
        scores = np.where(counted > 0, scores, np.inf)
        order = np.argsort(-scores, kind='stable')  # most uncertain first; ties by index
        kept = np.zeros(self.size, dtype=bool)
        kept[order[:self.smallest_kept()]] = True
        finite = np.isfinite(scores)
        return kept, np.ones(self.size), {'unscored': int((~finite).sum()),
                                          'mean_score': float(scores[finite].mean()) if finite.any() else None}

    def smallest_kept(self) -> int:
        return math.ceil(self.keep * self.size)

    def state(self) -> dict[str, np.ndarray]:
        return {'values': self.values, 'seen': self.seen}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.values, self.seen = state['values'].astype(np.float32), state['seen'].astype(bool)
