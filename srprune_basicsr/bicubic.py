"""MATLAB-style bicubic resizing as matrix products: fast, batched and differentiable.

BasicSR's ``basicsr.utils.matlab_functions.imresize`` is the reference the SR literature uses
(it mirrors MATLAB's ``imresize``: cubic kernel a=-0.5, antialiasing when downscaling, symmetric
padding). It loops in Python over every output row and column, which makes it slow for data
preparation and unusable inside a training graph. A separable resize is linear, so the same
result is ``R_h @ img @ R_w.T`` with dense matrices built once from BasicSR's own weights and
indices. One implementation serves data preparation, the SRCNN input upsampling and the
differentiable LR synthesis of dataset distillation. torch is imported only by the tensor
functions, so data-preparation workers that resize numpy images start in a fraction of a second.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's bicubic kernel (a = -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


@lru_cache(maxsize=256)
def _resize_matrix_np(in_length: int, scale: float, antialiasing: bool) -> np.ndarray:
    """Dense [out, in] resize matrix: MATLAB's weights, with symmetric padding folded in.

    Same construction as MATLAB's ``imresize`` (and BasicSR's ``calculate_weights_indices``):
    output pixel k sits at ``u = k / scale + 0.5 * (1 - 1 / scale)`` in input coordinates (1-based);
    when downscaling with antialiasing the kernel is stretched by 1/scale; each row is normalised
    to sum to one; taps beyond the border are mirrored back into the image. Pure numpy, so data
    workers never enter torch's thread pool.
    """
    out_length = math.ceil(in_length * scale)
    kernel_width = 4.0
    stretch = scale < 1 and antialiasing
    if stretch:
        kernel_width /= scale
    u = np.arange(1, out_length + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * _cubic(distance * scale) if stretch else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # 1-based input index -> 0-based, mirrored at both borders (MATLAB's 'symmetric' padding)
    zero_based = indices.astype(np.int64) - 1
    period = 2 * in_length
    mirrored = np.mod(zero_based, period)
    mirrored = np.where(mirrored >= in_length, period - 1 - mirrored, mirrored)
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_length), taps), mirrored.ravel()), weights.ravel())
    return matrix


@lru_cache(maxsize=64)
def _cached_matrix(in_length: int, scale: float, antialiasing: bool, device: torch.device,
                   dtype: torch.dtype) -> torch.Tensor:
    import torch

    return torch.from_numpy(_resize_matrix_np(in_length, scale, antialiasing)).to(device=device, dtype=dtype)


def resize_matrix(in_length: int, scale: float, antialiasing: bool = True, device: torch.device | str = 'cpu',
                  dtype: torch.dtype | None = None) -> torch.Tensor:
    """The [out_length, in_length] matrix that resizes a 1-D signal like MATLAB's imresize.

    Cached per (length, scale, device, dtype): distillation resizes thousands of same-size batches.
    Do not modify the returned tensor in place.
    """
    import torch

    return _cached_matrix(in_length, float(scale), antialiasing, torch.device(device), dtype or torch.float32)


def imresize_tensor(img: torch.Tensor, scale: float, antialiasing: bool = True) -> torch.Tensor:
    """Resize a (..., H, W) float tensor by ``scale``; differentiable with respect to ``img``."""
    h, w = img.shape[-2:]
    r_h = resize_matrix(h, scale, antialiasing, img.device, img.dtype)
    r_w = resize_matrix(w, scale, antialiasing, img.device, img.dtype)
    return r_h @ img @ r_w.transpose(0, 1)


@lru_cache(maxsize=1)
def _blas() -> object:
    """numpy's BLAS libraries, to pin to one thread while resizing."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api='blas')


def imresize_np(img: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """Resize an (H, W[, C]) float image in [0, 1]; same result as BasicSR's ``imresize``.

    The products run on one BLAS thread: OpenBLAS's float summation order depends on its thread
    count, and with it the rounding of exact .5 ties in uint8 output (the x2 LR images of the shared
    training photos differed between 1 and 2 threads). Pinned, the bytes are the same in prepare's
    workers, in the main process and on machines with more cores.
    """
    squeeze = img.ndim == 2
    hwc = np.asarray(img[:, :, None] if squeeze else img, dtype=np.float64)
    r_h = _resize_matrix_np(hwc.shape[0], float(scale), antialiasing)
    r_w = _resize_matrix_np(hwc.shape[1], float(scale), antialiasing)
    with _blas().limit(limits=1):
        out = np.tensordot(r_h, hwc, axes=(1, 0))                        # (out_h, w, c)
        out = np.tensordot(r_w, out, axes=(1, 1)).transpose(1, 0, 2)     # (out_h, out_w, c)
    return out[:, :, 0] if squeeze else out


def imresize_uint8(img: np.ndarray, scale: float) -> np.ndarray:
    """Resize a uint8 image and round back to uint8, as BasicSR's data scripts make LR images."""
    out = imresize_np(img.astype(np.float64) / 255.0, scale)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def _layer_class() -> type:
    """MatlabBicubic, defined on first use so that importing this module does not import torch."""
    import torch

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

    return MatlabBicubic


def __getattr__(name: str) -> type:
    if name == 'MatlabBicubic':  # a differentiable MATLAB-style bicubic resize layer for (N, C, H, W) batches
        return _layer_class()
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
