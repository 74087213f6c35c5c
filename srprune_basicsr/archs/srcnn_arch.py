"""SRCNN (Dong et al., ECCV 2014 / TPAMI 2016): the proxy network of loss-value pruning."""

from __future__ import annotations

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
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, num_feat: int = 64,
                 num_feat_mapping: int = 32, kernel_sizes: tuple[int, int, int] | list[int] = (9, 5, 5),
                 upsampler: str = 'matlab', padding_mode: str = 'zeros') -> None:
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
