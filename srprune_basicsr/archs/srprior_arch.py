"""SRPriorAE: a small convolutional autoencoder, the generator prior for latent-space distillation.

Dietz et al. distill in the latent space of a pretrained StyleGAN-XL; its weights cannot be
fetched everywhere, so this prior is trained on the user's own training sub-images (option file
``options/distill/train_prior_ae.yml``). Any generator can replace it in ``network_prior`` if it
offers the same two methods:

* ``decode(z) -> image``: latent codes to images in [0, 1], differentiable in ``z``;
* ``encode(image) -> z`` (only for ``init: real``), its inverse on real sub-images.

``forward`` is decode(encode(x)), so BasicSR's SRModel trains it as an SR model with scale 1.
"""

from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


def _block(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(channels, channels, 3, padding=1))


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = _block(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@ARCH_REGISTRY.register()
class SRPriorAE(nn.Module):
    """Encoder: ``downscale`` = 2**levels stride-2 stages to ``latent_ch`` channels; decoder mirrors it."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, latent_ch: int = 8, levels: int = 2,
                 num_block: int = 2) -> None:
        super().__init__()
        enc: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(levels):
            enc += [nn.Conv2d(num_feat, num_feat, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        enc += [_Residual(num_feat) for _ in range(num_block)] + [nn.Conv2d(num_feat, latent_ch, 3, padding=1)]
        dec: list[nn.Module] = [nn.Conv2d(latent_ch, num_feat, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        dec += [_Residual(num_feat) for _ in range(num_block)]
        for _ in range(levels):
            dec += [nn.Upsample(scale_factor=2, mode='nearest'), nn.Conv2d(num_feat, num_feat, 3, padding=1),
                    nn.LeakyReLU(0.2, inplace=True)]
        dec += [nn.Conv2d(num_feat, num_in_ch, 3, padding=1)]
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.downscale = 2**levels

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
