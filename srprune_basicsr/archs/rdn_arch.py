"""RDN (Zhang et al., CVPR 2018): residual dense network."""

from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn


class _ResidualDenseBlock(nn.Module):
    """``num_layer`` densely connected 3x3 conv+ReLU layers of ``growth`` channels, 1x1 local fusion,
    local residual."""

    def __init__(self, num_feat: int, growth: int, num_layer: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(nn.Conv2d(num_feat + i * growth, growth, 3, padding=1),
                                                  nn.ReLU(inplace=True)) for i in range(num_layer))
        self.fuse = nn.Conv2d(num_feat + num_layer * growth, num_feat, 1)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return x + self.fuse(torch.cat(features, 1))


@ARCH_REGISTRY.register()
class RDN(nn.Module):
    """RDN: shallow features (two 3x3 convs), ``num_block`` residual dense blocks, global feature
    fusion (1x1 + 3x3 over all block outputs) with a global residual, sub-pixel upsampling.
    The paper: G0 = ``num_feat`` = 64, D = ``num_block`` = 16, C = ``num_layer`` = 8, G = ``growth`` = 64."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, num_feat: int = 64,
                 num_block: int = 16, num_layer: int = 8, growth: int = 64) -> None:
        super().__init__()
        self.sfe1 = nn.Conv2d(num_in_ch, num_feat, 3, padding=1)
        self.sfe2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.blocks = nn.ModuleList(_ResidualDenseBlock(num_feat, growth, num_layer) for _ in range(num_block))
        self.gff = nn.Sequential(nn.Conv2d(num_block * num_feat, num_feat, 1), nn.Conv2d(num_feat, num_feat, 3,
                                                                                         padding=1))
        if upscale in (2, 3):
            up: list[nn.Module] = [nn.Conv2d(num_feat, num_feat * upscale**2, 3, padding=1), nn.PixelShuffle(upscale)]
        elif upscale == 4:
            up = [nn.Conv2d(num_feat, num_feat * 4, 3, padding=1), nn.PixelShuffle(2),
                  nn.Conv2d(num_feat, num_feat * 4, 3, padding=1), nn.PixelShuffle(2)]
        else:
            raise ValueError(f'RDN: upscale must be 2, 3 or 4, got {upscale}')
        self.upsample = nn.Sequential(*up, nn.Conv2d(num_feat, num_out_ch, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.sfe1(x)
        out = self.sfe2(shallow)
        outputs = []
        for block in self.blocks:
            out = block(out)
            outputs.append(out)
        return self.upsample(self.gff(torch.cat(outputs, 1)) + shallow)
