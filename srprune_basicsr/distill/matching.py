"""The gradient-matching distance of Dataset Condensation (Zhao et al. 2021), as used for SR.

For each layer's weight gradient, reshaped to [output channels, everything else], the distance is
the sum over output channels of 1 - cosine similarity between the real and the synthetic
gradient; layers are summed. Biases (1-D gradients) are skipped, as in the reference. The
distance is 0 for identical gradients (up to the small epsilon that keeps zero gradients finite)
and at most 2 per output channel.

``gradient_distances`` takes the gradients of G groups stacked along a leading dimension (as
``torch.func.vmap`` returns them) and gives the G distances in one pass; ``gradient_distance`` is
the one-group case of it, so the looped and the batched matching share one formula.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

EPS = 1e-6


def layer_distances(real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
    """[G]: per group, the sum over output channels of (1 - cos) between two stacked gradients [G, out, ...]."""
    if real.dim() <= 2:  # a bias: [G, out]
        return syn.new_zeros(syn.shape[0])
    real, syn = real.flatten(2), syn.flatten(2)
    cosine = (real * syn).sum(-1) / (real.norm(dim=-1) * syn.norm(dim=-1) + EPS)
    return (1 - cosine).sum(-1)


def gradient_distances(real: Sequence[torch.Tensor], syn: Sequence[torch.Tensor]) -> torch.Tensor:
    """[G] matching losses of G groups, from every parameter's gradients stacked as [G, *shape]."""
    if len(real) != len(syn):
        raise ValueError(f'{len(real)} real gradients but {len(syn)} synthetic ones')
    total = syn[0].new_zeros(syn[0].shape[0])
    for r, s in zip(real, syn, strict=True):
        total = total + layer_distances(r, s)
    return total


def gradient_distance(real: Sequence[torch.Tensor], syn: Sequence[torch.Tensor]) -> torch.Tensor:
    """Matching loss between the real and the synthetic gradients of every parameter of a network."""
    return gradient_distances([r.unsqueeze(0) for r in real], [s.unsqueeze(0) for s in syn])[0]
