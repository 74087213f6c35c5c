"""``seeded_shuffle``: opt-in per option file (``datasets:train:seeded_shuffle: true``), the data order
follows ``manual_seed`` too, so the seeds of a study also vary the order.
"""

from __future__ import annotations

from typing import Any

import torch

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.fixes.base import Fix
from srprune_basicsr._basicsr.hooks import TrainLoaders


def seed_the_shuffle(loaders: TrainLoaders) -> None:
    """Train-loader callback: ``seeded_shuffle: true`` makes the sampler shuffle with (manual_seed, epoch)."""
    if loaders.opt['datasets']['train'].get('seeded_shuffle') and loaders.train_sampler is not None:
        loaders.train_sampler.shuffle_seed = int(loaders.opt.get('manual_seed') or 0)


def shuffle_generator(sampler: Any) -> torch.Generator:
    """The generator of an EnlargedSampler's epoch order: (manual_seed, epoch) with ``shuffle_seed``, else the epoch."""
    seed = getattr(sampler, 'shuffle_seed', None)
    generator = torch.Generator()
    generator.manual_seed(sampler.epoch if seed is None else seed * 1_000_003 + sampler.epoch)
    return generator


def seeded_sampler_iter(self: Any) -> Any:
    """EnlargedSampler.__iter__, shuffled with (manual_seed, epoch) when ``shuffle_seed`` is set.

    BasicSR seeds the shuffle with the epoch alone, so ``manual_seed`` changes initialisation and
    augmentation but never the data order, and seeds of a study differ less than they should.
    Without ``shuffle_seed`` the order is BasicSR's.
    """
    indices = torch.randperm(self.total_size, generator=shuffle_generator(self)).tolist()
    size = len(self.dataset)
    indices = [v % size for v in indices][self.rank:self.total_size:self.num_replicas]
    return iter(indices)


def apply() -> None:
    """Replace ``EnlargedSampler.__iter__`` and register the train-loader callback that sets the seed."""
    from basicsr.data.data_sampler import EnlargedSampler

    EnlargedSampler.__iter__ = seeded_sampler_iter
    hooks.register('train_loaders', seed_the_shuffle, order=0)


FIX = Fix('seeded_shuffle', 'semantics', 'the data order follows the epoch alone, never `manual_seed`',
          ('basicsr.data.data_sampler:EnlargedSampler',), apply)
