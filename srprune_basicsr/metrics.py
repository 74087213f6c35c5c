"""Per-sample reconstruction error, shared by the scorers and the PSNR tracker.

Values are computed per sample of a batch (N, C, H, W) in [0, 1]. ``psnr_per_sample`` stays a
tensor on the batch's device, so recording it during training adds no host synchronisation;
``per_sample_error`` is the float64 numpy form a scorer returns (larger = harder).
"""

from __future__ import annotations

import numpy as np
import torch

MSE_FLOOR = 1e-12  # scorers: a perfect reconstruction gets an error of -120 dB, not -infinity
PSNR_FLOOR = 1e-10  # tracker: PSNR is capped at 100 dB, as recorded histories have always been
ERRORS = ('mse', 'l1', 'psnr')


def checked_border(border: object, default: int, option: str = 'score:border') -> int:
    """``'auto'`` (``default``) or a non-negative number of pixels; anything else names the option."""
    if border == 'auto':
        return default
    if not isinstance(border, int) or isinstance(border, bool) or border < 0:
        raise ValueError(f"{option} must be 'auto' or a non-negative integer, got {border!r}")
    return border


def interior(img: torch.Tensor, border: int, option: str = 'score:border') -> torch.Tensor:
    """Leave out ``border`` pixels on every side (where padding, not content, shapes the output)."""
    if border <= 0:
        return img
    if 2 * border >= min(img.shape[-2:]):
        raise ValueError(f'border {border} leaves nothing of a {tuple(img.shape[-2:])} image; lower {option}')
    return img[..., border:-border, border:-border]


def mse_per_sample(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each sample, in float64 (small errors of float32 images stay exact)."""
    return (pred.double() - gt.double()).flatten(1).pow(2).mean(1)


def psnr_per_sample(pred: torch.Tensor, gt: torch.Tensor, border: int = 0) -> torch.Tensor:
    """PSNR (dB, [0, 1] range) of each sample after clamping ``pred`` to [0, 1], ``border`` pixels shaved."""
    pred = interior(pred.detach().clamp(0, 1), border, 'prune_tracking border')
    gt = interior(gt.detach(), border, 'prune_tracking border')
    return -10 * torch.log10(mse_per_sample(pred, gt).clamp_min(PSNR_FLOOR))


def per_sample_error(pred: torch.Tensor, gt: torch.Tensor, loss: str) -> np.ndarray:
    """mse / l1 per sample, or negated PSNR (10 log10 mse), in float64: larger = harder."""
    if loss == 'l1':
        return (pred.double() - gt.double()).flatten(1).abs().mean(1).cpu().numpy()
    if loss not in ERRORS:
        raise ValueError(f"score:loss must be one of {ERRORS}, got {loss!r}")
    mse = mse_per_sample(pred, gt).clamp_min(MSE_FLOOR)
    return (mse if loss == 'mse' else 10 * torch.log10(mse)).cpu().numpy()
