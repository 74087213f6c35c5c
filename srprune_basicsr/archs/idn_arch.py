"""IDN (Hui et al., CVPR 2018): information distillation network, fast and compact."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from srprune_basicsr.bicubic import imresize_tensor


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.05)


class _DistillationBlock(nn.Module):
    """Enhancement unit (two 3-conv stacks; 1/s of the first stack's output is kept and concatenated
    with the block input) followed by a 1x1 compression unit."""

    def __init__(self, num_feat: int, d: int, s: int) -> None:
        super().__init__()
        self.keep = num_feat // s
        self.up = nn.ModuleList([nn.Conv2d(num_feat, num_feat - d, 3, padding=1),
                                 nn.Conv2d(num_feat - d, num_feat - 2 * d, 3, padding=1, groups=4),
                                 nn.Conv2d(num_feat - 2 * d, num_feat, 3, padding=1)])
        self.down = nn.ModuleList([nn.Conv2d(num_feat - self.keep, num_feat, 3, padding=1),
                                   nn.Conv2d(num_feat, num_feat - d, 3, padding=1, groups=4),
                                   nn.Conv2d(num_feat - d, num_feat + d, 3, padding=1)])
        self.compress = nn.Conv2d(num_feat + d, num_feat, 1)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for conv in self.up:
            out = _lrelu(conv(out))
        kept, rest = out[:, :self.keep], out[:, self.keep:]
        for conv in self.down:
            rest = _lrelu(conv(rest))
        return self.compress(rest + torch.cat([x, kept], 1))


@ARCH_REGISTRY.register()
class IDN(nn.Module):
    """IDN: feature extraction (two 3x3 convs), ``num_block`` distillation blocks, a 17x17 transposed
    convolution to HR, plus the bicubic upsampled input. The paper: 64 features, d = 16, s = 4,
    4 blocks (about 553K parameters at x3)."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, num_feat: int = 64,
                 num_block: int = 4, d: int = 16, s: int = 4) -> None:
        super().__init__()
        self.upscale = upscale
        self.features = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, padding=1),
                                       nn.Conv2d(num_feat, num_feat, 3, padding=1)])
        self.blocks = nn.Sequential(*[_DistillationBlock(num_feat, d, s) for _ in range(num_block)])
        self.upsample = nn.ConvTranspose2d(num_feat, num_out_ch, 17, stride=upscale, padding=8,
                                           output_padding=upscale - 1)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for conv in self.features:
            out = _lrelu(conv(out))
        return self.upsample(self.blocks(out)) + imresize_tensor(x, self.upscale)
