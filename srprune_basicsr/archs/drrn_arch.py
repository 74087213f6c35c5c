"""DRRN (Tai et al., CVPR 2017): deep recursive residual network, on the bicubic-upsampled LR image."""

from __future__ import annotations

import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from srprune_basicsr.bicubic import imresize_tensor


class _ResidualUnit(nn.Module):
    """Pre-activation unit ReLU-conv-ReLU-conv; one instance is shared by every recursion of a block."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x))))


@ARCH_REGISTRY.register()
class DRRN(nn.Module):
    """DRRN_B{num_block}U{num_unit}: B recursive blocks of U weight-shared residual units.

    Each block starts with its own conv; its U units share weights and each adds the block's entry
    (multi-path local residual learning); a last conv reconstructs the residual to the bicubic
    input (global residual). The paper's DRRN_B1U25 has 128 features and 297K parameters; like
    SRCNN the network runs at HR size, so ``upscale`` only sets the bicubic input scaling (the
    paper trains one model for x2/x3/x4). The paper's batch normalisation is left out (``use_bn``
    adds it back), as in most SR re-implementations.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, num_feat: int = 128,
                 num_block: int = 1, num_unit: int = 25, use_bn: bool = False) -> None:
        super().__init__()
        self.upscale, self.num_unit = upscale, num_unit
        self.entries = nn.ModuleList(nn.Conv2d(num_in_ch if b == 0 else num_feat, num_feat, 3, padding=1)
                                     for b in range(num_block))
        self.units = nn.ModuleList(_ResidualUnit(num_feat) for _ in range(num_block))
        self.norms = nn.ModuleList(nn.BatchNorm2d(num_feat) if use_bn else nn.Identity() for _ in range(num_block))
        self.reconstruct = nn.Conv2d(num_feat, num_out_ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        base = imresize_tensor(x, self.upscale)
        out = base
        for entry, unit, norm in zip(self.entries, self.units, self.norms, strict=True):
            out = entry(out)
            start = out
            for _ in range(self.num_unit):
                out = unit(norm(out)) + start
        return base + self.reconstruct(F.relu(out))
