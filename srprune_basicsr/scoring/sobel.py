"""``sobel``: mean Sobel gradient magnitude of the GT's luma.

The texture heuristic the pruning paper compares against; it needs no network.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from srprune_basicsr.scoring.base import Scorer, register_scorer

LUMA = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64) / 255.0  # ITU-R BT.601, as BasicSR's Y


@register_scorer('sobel')
class SobelScorer(Scorer):
    """Mean gradient magnitude of the GT luma (texture = assumed difficulty)."""

    needs_lr = False

    def __init__(self) -> None:
        kx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64)
        self.kernels = torch.stack([kx, kx.t()])[:, None]

    def score_batch(self, lq: torch.Tensor, gt: torch.Tensor, indices: np.ndarray) -> np.ndarray:
        y = torch.einsum('nchw,c->nhw', gt.double(), LUMA)[:, None]
        grad = F.conv2d(y, self.kernels)
        return grad.pow(2).sum(1).sqrt().flatten(1).mean(1).numpy()
