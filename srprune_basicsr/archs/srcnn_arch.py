"""SRCNN (Dong et al., ECCV 2014 / TPAMI 2016): the proxy network of loss-value pruning."""

from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn
from torch.nn import functional as F

from srprune_basicsr.bicubic import imresize_tensor


@ARCH_REGISTRY.register()
class SRCNN(nn.Module):
    """SRCNN 9-5-5: patch extraction, non-linear mapping, reconstruction.

    SRCNN works on the bicubic-upsampled image. BasicSR feeds the LR image, so the network first
    upsamples it by ``upscale`` with MATLAB-style bicubic (``upsampler='matlab'``, exactly the
    interpolation of the paper) or PyTorch's faster bicubic (``upsampler='torch'``, a=-0.75).
    Convolutions are padded to keep the size (the paper's valid convolutions would shrink the
    output); ``padding_mode`` chooses how, and ``receptive_radius`` tells scorers how wide the
    border affected by padding is.

    Args:
        num_in_ch: Input channels (3 for RGB, 1 for Y as in the paper).
        num_out_ch: Output channels.
        upscale: Scale factor (2, 3 or 4).
        num_feat: Filters of the first layer (n1 = 64).
        num_feat_mapping: Filters of the second layer (n2 = 32).
        kernel_sizes: (f1, f2, f3); (9, 5, 5) is the paper's best setting.
        upsampler: 'matlab' or 'torch'.
        padding_mode: 'zeros', 'replicate' or 'reflect'.
        init: 'default' (PyTorch's) or 'identity': the network starts as exactly the bicubic
            upsampling and learns to improve on it, so short proxy trainings (CPU, the demo)
            beat bicubic within hundreds of iterations instead of tens of thousands.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, num_feat: int = 64,
                 num_feat_mapping: int = 32, kernel_sizes: tuple[int, int, int] | list[int] = (9, 5, 5),
                 upsampler: str = 'matlab', padding_mode: str = 'zeros', init: str = 'default') -> None:
        super().__init__()
        if upscale not in (1, 2, 3, 4, 8):
            raise ValueError(f'SRCNN: upscale must be 1, 2, 3, 4 or 8, got {upscale}')
        if upsampler not in ('matlab', 'torch'):
            raise ValueError(f"SRCNN: upsampler must be 'matlab' or 'torch', got {upsampler!r}")
        f1, f2, f3 = kernel_sizes
        self.upscale = upscale
        self.upsampler = upsampler
        # HR pixels whose value depends on padding (the scorers leave this border out)
        self.receptive_radius = f1 // 2 + f2 // 2 + f3 // 2
        self.conv1 = nn.Conv2d(num_in_ch, num_feat, f1, padding=f1 // 2, padding_mode=padding_mode)
        self.conv2 = nn.Conv2d(num_feat, num_feat_mapping, f2, padding=f2 // 2, padding_mode=padding_mode)
        self.conv3 = nn.Conv2d(num_feat_mapping, num_out_ch, f3, padding=f3 // 2, padding_mode=padding_mode)
        self.relu = nn.ReLU(inplace=True)
        if init == 'identity':
            self._init_identity(num_in_ch, num_out_ch)
        elif init != 'default':
            raise ValueError(f"SRCNN: init must be 'default' or 'identity', got {init!r}")

    @torch.no_grad()
    def _init_identity(self, num_in_ch: int, num_out_ch: int) -> None:
        """Route each input channel through one filter per layer as a centred delta.

        Images are non-negative, so the ReLUs pass the routed channels unchanged and the output
        equals the upsampled input; the other filters keep their random init, and the last
        layer's weights on them start small so that training departs from bicubic gently.
        """
        channels = min(num_in_ch, num_out_ch)
        if self.conv1.out_channels < channels or self.conv2.out_channels < channels:
            raise ValueError('SRCNN: identity init needs at least as many filters as image channels')
        for conv in (self.conv1, self.conv2):
            k = conv.kernel_size[0] // 2
            conv.weight[:channels] = 0
            conv.bias[:channels] = 0
            for c in range(channels):
                conv.weight[c, c, k, k] = 1
        k = self.conv3.kernel_size[0] // 2
        nn.init.normal_(self.conv3.weight, std=1e-4)
        self.conv3.weight[:, :channels] = 0
        nn.init.zeros_(self.conv3.bias)
        for c in range(channels):
            self.conv3.weight[c, c, k, k] = 1

    def upsample(self, x: Tensor) -> Tensor:
        """The bicubic-upsampled input the convolutions refine."""
        if self.upscale == 1:
            return x
        if self.upsampler == 'matlab':
            return imresize_tensor(x, self.upscale)
        return F.interpolate(x, scale_factor=self.upscale, mode='bicubic', align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.conv1(self.upsample(x)))
        out = self.relu(self.conv2(out))
        return self.conv3(out)
