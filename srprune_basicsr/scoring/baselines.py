"""Cheap difficulty scores that need no proxy network.

``random``: a seeded uniform draw per sample (a score file for the random arm of a study).
``sobel``: mean Sobel gradient magnitude of the GT's luma, the texture heuristic the pruning paper
compares against. ``bicubic_psnr``: how badly MATLAB-style bicubic upsampling reconstructs the
GT (negated PSNR over the interior); the proxy's ranking correlated 0.996 with it in our pilots.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from srprune_basicsr.bicubic import imresize_tensor
from srprune_basicsr.scoring.base import interior, per_sample_error

LUMA = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64) / 255.0  # ITU-R BT.601, as BasicSR's Y


class RandomScorer:
    """Uniform [0, 1) per sample, a function of (seed, dataset index) only."""

    name = 'random'
    needs_network = False

    def __init__(self, seed: int = 0, total: int = 0) -> None:
        self.values = np.random.default_rng(seed).random(total)

    def score_batch(self, lq: torch.Tensor, gt: torch.Tensor, indices: np.ndarray) -> np.ndarray:
        return self.values[indices]


class SobelScorer:
    """Mean gradient magnitude of the GT luma (texture = assumed difficulty)."""

    name = 'sobel'
    needs_network = False

    def __init__(self) -> None:
        kx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64)
        self.kernels = torch.stack([kx, kx.t()])[:, None]

    def score_batch(self, lq: torch.Tensor, gt: torch.Tensor, indices: np.ndarray) -> np.ndarray:
        y = torch.einsum('nchw,c->nhw', gt.double(), LUMA)[:, None]
        grad = F.conv2d(y, self.kernels)
        return grad.pow(2).sum(1).sqrt().flatten(1).mean(1).numpy()


class BicubicPsnrScorer:
    """Negated PSNR of bicubic upsampling (larger = bicubic does worse = harder)."""

    name = 'bicubic_psnr'
    needs_network = False

    def __init__(self, scale: int, border: int | str = 'auto') -> None:
        self.scale = scale
        self.border = scale if border == 'auto' else int(border)

    def score_batch(self, lq: torch.Tensor, gt: torch.Tensor, indices: np.ndarray) -> np.ndarray:
        up = imresize_tensor(lq.double(), self.scale).clamp(0, 1)
        return per_sample_error(interior(up, self.border), interior(gt, self.border), 'psnr')
