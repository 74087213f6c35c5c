"""The shape every scorer has: options in, one float64 difficulty per sample out (larger = harder).

A scorer sees batches of whole LR/GT sub-images (no random crop, no flip) with their dataset
indices, so its score depends on the sample only: batches can be split across ranks or resumed
without changing any value. Adding a scorer is a class here-like in its own module plus one line in
``SCORERS`` (runner.py).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class Scorer(Protocol):
    """What ``srprune score`` needs from a method."""

    name: str
    needs_network: bool

    def score_batch(self, lq: torch.Tensor, gt: torch.Tensor, indices: np.ndarray) -> np.ndarray:
        """Difficulties of a batch: lq (N,C,h,w) and gt (N,C,H,W) in [0, 1], RGB."""


def interior(img: torch.Tensor, border: int) -> torch.Tensor:
    """Leave out ``border`` pixels on every side (where padding, not content, shapes the output)."""
    if border <= 0:
        return img
    if 2 * border >= min(img.shape[-2:]):
        raise ValueError(f'border {border} leaves nothing of a {tuple(img.shape[-2:])} image; lower score:border')
    return img[..., border:-border, border:-border]


def per_sample_error(pred: torch.Tensor, gt: torch.Tensor, loss: str) -> np.ndarray:
    """mse / l1 per sample, or negated PSNR (10 log10 mse), in float64: larger = harder."""
    diff = (pred.double() - gt.double()).flatten(1)
    if loss == 'l1':
        return diff.abs().mean(1).cpu().numpy()
    mse = diff.pow(2).mean(1).clamp_min(1e-12)
    if loss == 'mse':
        return mse.cpu().numpy()
    if loss == 'psnr':
        return (10 * torch.log10(mse)).cpu().numpy()
    raise ValueError(f"score:loss must be 'mse', 'l1' or 'psnr', got {loss!r}")
