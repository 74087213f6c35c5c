"""MATLAB-style bicubic resizing as matrix products: fast, batched and differentiable.

BasicSR's ``basicsr.utils.matlab_functions.imresize`` is the reference the SR literature uses
(it mirrors MATLAB's ``imresize``: cubic kernel a=-0.5, antialiasing when downscaling, symmetric
padding). It loops in Python over every output row and column, which makes it slow for data
preparation and unusable inside a training graph. A separable resize is linear, so the same
result is ``R_h @ img @ R_w.T`` with dense matrices built once from BasicSR's own weights and
indices. One implementation serves data preparation, the SRCNN input upsampling and the
differentiable LR synthesis of dataset distillation.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from basicsr.utils.matlab_functions import calculate_weights_indices


def _reflect_index(aug_index: int, in_length: int, sym_start: int) -> int:
    """Map an index of BasicSR's symmetrically padded signal back to the unpadded signal."""
    i = aug_index - sym_start
    if i < 0:
        return -i - 1
    if i >= in_length:
        return 2 * in_length - i - 1
    return i


@lru_cache(maxsize=256)
def _resize_matrix_np(in_length: int, scale: float, antialiasing: bool) -> np.ndarray:
    out_length = math.ceil(in_length * scale)
    weights, indices, sym_start, _ = calculate_weights_indices(in_length, out_length, scale, 'cubic', 4,
                                                               antialiasing)
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    for row in range(out_length):
        for w, aug_index in zip(weights[row].tolist(), indices[row].tolist(), strict=True):
            matrix[row, _reflect_index(int(aug_index), in_length, sym_start)] += w
    return matrix


def resize_matrix(in_length: int, scale: float, antialiasing: bool = True, device: torch.device | str = 'cpu',
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The [out_length, in_length] matrix that resizes a 1-D signal like MATLAB's imresize."""
    return torch.from_numpy(_resize_matrix_np(in_length, float(scale), antialiasing)).to(device=device, dtype=dtype)


def imresize_tensor(img: torch.Tensor, scale: float, antialiasing: bool = True) -> torch.Tensor:
    """Resize a (..., H, W) float tensor by ``scale``; differentiable with respect to ``img``."""
    h, w = img.shape[-2:]
    r_h = resize_matrix(h, scale, antialiasing, img.device, img.dtype)
    r_w = resize_matrix(w, scale, antialiasing, img.device, img.dtype)
    return r_h @ img @ r_w.transpose(0, 1)


def imresize_np(img: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """Resize an (H, W[, C]) float image in [0, 1]; same result as BasicSR's ``imresize``."""
    squeeze = img.ndim == 2
    chw = torch.from_numpy(np.ascontiguousarray(img if not squeeze else img[:, :, None]).transpose(2, 0, 1))
    out = imresize_tensor(chw.double(), scale, antialiasing).numpy().transpose(1, 2, 0)
    return out[:, :, 0] if squeeze else out


def imresize_uint8(img: np.ndarray, scale: float) -> np.ndarray:
    """Resize a uint8 image and round back to uint8, as BasicSR's data scripts make LR images."""
    out = imresize_np(img.astype(np.float64) / 255.0, scale)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


class MatlabBicubic(torch.nn.Module):
    """A differentiable MATLAB-style bicubic resize layer for (N, C, H, W) batches."""

    def __init__(self, scale: float, antialiasing: bool = True) -> None:
        super().__init__()
        self.scale = float(scale)
        self.antialiasing = antialiasing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize_tensor(x, self.scale, self.antialiasing)

    def extra_repr(self) -> str:
        return f'scale={self.scale}, antialiasing={self.antialiasing}'
