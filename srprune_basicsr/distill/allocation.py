"""How many synthetic patches each source image gets: ``ratio`` of the whole set, shared out by size.

Instance-level condensation learns ``n_i`` synthetic patches for source image i. The total is
``round(ratio * N)`` (N real sub-images), shared out in proportion to each source's sub-images by
largest remainder, so the set has exactly the asked size whatever the rounding per source. On a
small pool (T91 cut into five or six sub-images per photo, say) a small ratio leaves some sources
without any patch; that is refused by default with the numbers, because a user who asked for
"10% of every image" would otherwise silently lose whole photos. ``min_per_source: 1`` gives each
source at least one patch (the set grows to hold them); ``min_per_source: 0`` accepts sources
without a patch and keeps the size exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def share_out(sizes: Sequence[int], ratio: float, seed: int = 0) -> np.ndarray:
    """Patches per source: ``round(ratio * sum(sizes))`` (at least 1) split by largest remainder.

    Ties between equal remainders are broken by a draw seeded with ``seed``, so which sources get
    the last patches does not depend on the order the sources are listed in beyond that draw.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    total = max(1, int(round(ratio * int(sizes.sum()))))
    quota = sizes * (total / sizes.sum())
    counts = np.floor(quota).astype(np.int64)
    remainder = quota - counts
    tie_break = np.random.default_rng([seed, 7]).random(len(sizes))
    order = np.lexsort((tie_break, -remainder))  # largest remainder first
    counts[order[:total - int(counts.sum())]] += 1
    return np.minimum(counts, sizes)


def patch_counts(sizes: Sequence[int], ratio: float, min_per_source: int | None, seed: int = 0,
                 where: str = 'distill') -> np.ndarray:
    """Patches per source for ``ratio`` (see the module docstring); refuses empty sources unless told.

    ``min_per_source`` None refuses a share that leaves a source without a patch, 0 accepts it,
    k >= 1 raises every source to at least k patches (at most its sub-images).
    """
    if not 0 < ratio <= 1:
        raise ValueError(f'{where}:ratio must be in (0, 1] (a share of each source image\'s sub-images), '
                         f'got {ratio!r}')
    counts = share_out(sizes, ratio, seed)
    empty = int((counts == 0).sum())
    if empty and min_per_source is None:
        total, raised = int(counts.sum()), int(np.maximum(counts, 1).sum())
        smallest = 1 / min(sizes) if len(sizes) else 1
        raise ValueError(
            f'{where}:ratio {ratio:g} gives {total} synthetic patches for {len(sizes)} source images, so {empty} '
            f'of them get none. Set {where}:min_per_source: 1 to give every source at least one ({raised} '
            f'patches, {raised / sum(sizes):.1%} of the {sum(sizes)} sub-images), or 0 to accept sources without '
            f'a patch; a ratio of about {smallest:.3g} or more gives each source one by itself')
    if min_per_source:
        counts = np.maximum(counts, np.minimum(int(min_per_source), np.asarray(sizes)))
    return counts
