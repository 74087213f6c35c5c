"""FSRCNN (Dong et al., ECCV 2016): SRCNN made fast by working in LR space."""

from __future__ import annotations

from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from srprune_basicsr.bicubic import imresize_tensor


def _conv_prelu(in_ch: int, out_ch: int, kernel_size: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2), nn.PReLU(out_ch)]


@ARCH_REGISTRY.register()
class FSRCNN(nn.Module):
    """FSRCNN(d, s, m): feature extraction, shrinking, m mapping layers, expanding, deconvolution.

    The network takes the LR image directly and upsamples at the end with a 9x9 deconvolution
    of stride ``upscale``, so only the last layer depends on the scale (the paper's transfer
    between x2/x3/x4 swaps just that layer). Defaults are the paper's FSRCNN(56, 12, 4).

    Args:
        num_in_ch: Input channels (1 = Y as in the paper, 3 = RGB).
        num_out_ch: Output channels.
        upscale: Scale factor (2, 3 or 4).
        d: LR feature dimension.
        s: Shrinking dimension.
        m: Number of mapping layers.
        bicubic_skip: Add the MATLAB-bicubic upsampled input to the output (not in the paper). The
            network then starts at bicubic quality and learns only the residual, which short
            budgets (a CPU study) need: the plain FSRCNN starts from a near-zero output and is
            still below bicubic after 1,500 iterations.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, d: int = 56, s: int = 12,
                 m: int = 4, bicubic_skip: bool = False) -> None:
        super().__init__()
        if upscale not in (2, 3, 4, 8):
            raise ValueError(f'FSRCNN: upscale must be 2, 3, 4 or 8, got {upscale}')
        self.upscale = upscale
        self.bicubic_skip = bicubic_skip
        # HR pixels whose value depends on padding: LR radius (5x5 + m 3x3) scaled, plus the 9x9 deconv
        self.receptive_radius = (2 + m) * upscale + 4
        layers = _conv_prelu(num_in_ch, d, 5) + _conv_prelu(d, s, 1)
        for _ in range(m):
            layers += _conv_prelu(s, s, 3)
        layers += _conv_prelu(s, d, 1)
        self.body = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(d, num_out_ch, 9, stride=upscale, padding=4, output_padding=upscale - 1)
        self._init_weights()

    def _init_weights(self) -> None:
        """He init for the PReLU layers and N(0, 0.001) for the deconvolution, as in the paper."""
        for module in self.body:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.25, nonlinearity='leaky_relu')
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.deconv.weight, std=0.001)
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.deconv(self.body(x))
        return out + imresize_tensor(x, self.upscale) if self.bicubic_skip else out
