"""The scorers ``srprune score`` knows: importing a scorer module registers it (one line per scorer)."""

from srprune_basicsr.scoring import bicubic_psnr, dynamic_uncertainty, loss_value, random, sobel  # noqa: F401
from srprune_basicsr.scoring.base import SCORERS

__all__ = ['SCORERS']
