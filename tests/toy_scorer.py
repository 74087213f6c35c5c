"""A toy scorer, added the way the scoring docs describe: this one file and its registration."""

from __future__ import annotations

import numpy as np
import torch

from srprune_basicsr.scoring.base import Scorer, register_scorer


@register_scorer('toy_brightness')
class BrightnessScorer(Scorer):
    """Mean GT intensity: brighter = "harder" (a toy, not a good difficulty)."""

    def score_batch(self, lq: torch.Tensor, gt: torch.Tensor, indices: np.ndarray) -> np.ndarray:
        return gt.double().flatten(1).mean(1).numpy()
