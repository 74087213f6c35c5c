"""One random draw of flips, a 90-degree rotation and a crop, applied alike to real and synthetic pairs.

Differentiable Siamese augmentation (Zhao & Bilen 2021) matches gradients under the same random
transform on both sides. Crops are taken at the same relative position in both images, aligned
to the scale so that the LR crop is exactly the HR crop's LR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Draw:
    hflip: bool
    vflip: bool
    rot90: int
    u: float  # relative crop position in [0, 1]
    v: float

    @classmethod
    def sample(cls, rng: np.random.Generator, flips: bool = True, rotations: bool = True) -> Draw:
        return cls(bool(flips and rng.random() < 0.5), bool(flips and rng.random() < 0.5),
                   int(rng.integers(4)) if rotations else 0, float(rng.random()), float(rng.random()))


def crop_pair(hr: torch.Tensor, lr: torch.Tensor, draw: Draw, crop: int, scale: int) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
    """HR crop of ``crop`` px and its LR crop, at the draw's relative position (aligned to the scale)."""
    h_lr, w_lr = lr.shape[-2:]
    c_lr = crop // scale
    top, left = round(draw.u * (h_lr - c_lr)), round(draw.v * (w_lr - c_lr))
    return (hr[..., top * scale:(top + c_lr) * scale, left * scale:(left + c_lr) * scale],
            lr[..., top:top + c_lr, left:left + c_lr])


def transform(img: torch.Tensor, draw: Draw) -> torch.Tensor:
    if draw.hflip:
        img = img.flip(-1)
    if draw.vflip:
        img = img.flip(-2)
    return torch.rot90(img, draw.rot90, dims=(-2, -1)) if draw.rot90 else img


def augment_pair(hr: torch.Tensor, lr: torch.Tensor, draw: Draw, crop: int, scale: int) -> tuple[torch.Tensor,
                                                                                                 torch.Tensor]:
    hr, lr = crop_pair(hr, lr, draw, crop, scale)
    return transform(hr, draw), transform(lr, draw)
