"""The gradient-matching distance of Dataset Condensation (Zhao et al. 2021), as used for SR.

For each layer's weight gradient, reshaped to [output channels, everything else], the distance is
the sum over output channels of 1 - cosine similarity between the real and the synthetic
gradient; layers are summed. Biases (1-D gradients) are skipped, as in the reference. The
distance is 0 for identical gradients (up to the small epsilon that keeps zero gradients finite)
and at most 2 per output channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

EPS = 1e-6


def layer_distance(real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
    """sum over output channels of (1 - cos) between two gradients of one weight tensor."""
    if real.dim() == 1:
        return syn.new_zeros(())
    real, syn = real.reshape(real.shape[0], -1), syn.reshape(syn.shape[0], -1)
    cosine = (real * syn).sum(-1) / (real.norm(dim=-1) * syn.norm(dim=-1) + EPS)
    return (1 - cosine).sum()


def gradient_distance(real: Sequence[torch.Tensor], syn: Sequence[torch.Tensor]) -> torch.Tensor:
    """Matching loss between the real and the synthetic gradients of every parameter of a network."""
    if len(real) != len(syn):
        raise ValueError(f'{len(real)} real gradients but {len(syn)} synthetic ones')
    total = syn[0].new_zeros(())
    for r, s in zip(real, syn, strict=True):
        total = total + layer_distance(r, s)
    return total
