"""The distribution distance of instance-level condensation: mean embeddings plus random local Fourier features.

For one source image, the real patches R and its synthetic patches S pass through the teacher;
at each tapped level l the distance has two terms:

* **mean embedding** (Distribution Matching, Zhao & Bilen 2023): the squared distance between the
  mean feature vectors (over patches and positions) of R and S, relative to the real features' mean
  square so that levels of any width and scale weigh alike;
* **random local Fourier features**: random k x k windows of the feature maps, the magnitudes of
  their 2-D FFT per channel (log-compressed, flattened, L2-normalised) describe local texture and
  high frequencies whatever their position in the window; their distributions are compared with
  the characteristic-function distance at random frequencies t (the random projection):
  mean_t |phi_R(t) - phi_S(t)|^2 with phi(t) = mean_i exp(i t.v_i). That is the maximum mean
  discrepancy of a Gaussian kernel in random-feature form (Rahimi & Recht 2007), the distance
  NCFD builds on; the kernel width is the median distance between the real windows' spectra.

Mean matching alone lets synthetic patches keep the right average while losing detail; the
local spectra are what keep edges and texture. Every random choice comes from a generator the
caller seeds, so an iteration is reproducible (and a resumed run equals an uninterrupted one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

EPS = 1e-8


@dataclass(frozen=True)
class FourierDraw:
    """The random parts of one level's Fourier term: window size, windows per patch, frequency count."""

    window: int
    windows: int
    frequencies: int


def mean_embedding_distance(real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
    """||mean real - mean syn||^2 / E||real||^2 over [N, C, H, W] feature maps (means over patches and positions).

    Relative to the real features' energy (their mean square, not their mean, which residual
    features keep near zero), so levels and archs of any feature scale (``img_range`` 1 or 255)
    weigh alike and the term is comparable with the Fourier term's [0, 4].
    """
    energy = real.detach().pow(2).mean(dim=(0, 2, 3)).sum()
    return (real.mean(dim=(0, 2, 3)) - syn.mean(dim=(0, 2, 3))).pow(2).sum() / (energy + EPS)


def local_spectra(features: torch.Tensor, window: int, windows: int, generator: torch.Generator) -> torch.Tensor:
    """[N * windows, C * window * (window // 2 + 1)]: log FFT magnitudes of random windows, L2-normalised."""
    n, c, h, w = features.shape
    k = min(window, h, w)
    tops = torch.randint(0, h - k + 1, (n, windows), generator=generator).to(features.device)
    lefts = torch.randint(0, w - k + 1, (n, windows), generator=generator).to(features.device)
    rows = (tops[..., None] + torch.arange(k, device=features.device))  # [n, windows, k]
    cols = (lefts[..., None] + torch.arange(k, device=features.device))
    batch = torch.arange(n, device=features.device)[:, None, None, None]
    crops = features.permute(0, 2, 3, 1)[batch, rows[..., :, None], cols[..., None, :]]  # [n, windows, k, k, C]
    spectrum = torch.fft.rfft2(crops.permute(0, 1, 4, 2, 3).float(), norm='ortho').abs()
    vectors = torch.log1p(spectrum).flatten(2).flatten(0, 1)
    return vectors / (vectors.norm(dim=1, keepdim=True) + EPS)


def median_distance(vectors: torch.Tensor, most: int = 256) -> torch.Tensor:
    """The median pairwise distance of (at most ``most`` of) ``vectors``: the kernel width's usual choice."""
    sample = vectors[:most].detach()
    distances = torch.cdist(sample, sample)
    upper = distances[torch.triu_indices(len(sample), len(sample), 1, device=sample.device).unbind()]
    return upper.median().clamp_min(1e-3) if upper.numel() else sample.new_tensor(1.0)


def characteristic_distance(real: torch.Tensor, syn: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
    """mean_t |phi_real(t) - phi_syn(t)|^2 for the rows of ``frequencies`` [M, D] (t already scaled)."""
    real_proj, syn_proj = real @ frequencies.T, syn @ frequencies.T
    cos = real_proj.cos().mean(0) - syn_proj.cos().mean(0)
    sin = real_proj.sin().mean(0) - syn_proj.sin().mean(0)
    return (cos.pow(2) + sin.pow(2)).mean()


def fourier_distance(real: torch.Tensor, syn: torch.Tensor, draw: FourierDraw,
                     generator: torch.Generator) -> torch.Tensor:
    """The random-local-Fourier-feature term between two [N, C, H, W] feature maps."""
    real_vectors = local_spectra(real, draw.window, draw.windows, generator)
    syn_vectors = local_spectra(syn, draw.window, draw.windows, generator)
    width = median_distance(real_vectors)
    frequencies = torch.randn(draw.frequencies, real_vectors.shape[1], generator=generator)
    frequencies = frequencies.to(real_vectors.device) / width
    return characteristic_distance(real_vectors, syn_vectors, frequencies)


def distribution_distance(real: Sequence[torch.Tensor], syn: Sequence[torch.Tensor], draw: FourierDraw,
                          generator: torch.Generator, weight_mean: float = 1.0,
                          weight_fourier: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean-embedding term, Fourier term), each summed over the levels of one source image's features."""
    if len(real) != len(syn):
        raise ValueError(f'{len(real)} real feature levels but {len(syn)} synthetic ones')
    mean = sum(mean_embedding_distance(r, s) for r, s in zip(real, syn, strict=True))
    fourier = (sum(fourier_distance(r, s, draw, generator) for r, s in zip(real, syn, strict=True))
               if weight_fourier else syn[0].new_zeros(()))
    return weight_mean * mean, weight_fourier * fourier
