"""Training-semantics fixes: where basicsr 1.4.2 trains something other than what its options say.

- ``epoch_count``: iterations per epoch are counted with ``ceil(len / batch)`` while the train
  loader drops the last incomplete batch, so a small (e.g. pruned) set stopped short of
  ``total_iter`` without a word, and a set smaller than one batch trained zero iterations.
- ``resume_epoch``: a checkpoint taken at the end of epoch e resumed epoch e again.
- ``seeded_shuffle``: opt-in per option file (``datasets:train:seeded_shuffle: true``), the data order
  follows ``manual_seed`` too, so seeds of a study also vary the order.

Unlike the version fixes in ``compat`` these change what is trained, so they are kept apart;
each is a callback on ``hooks`` and can be switched off (``switches``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.hooks import TrainLoaders
from srprune_basicsr._basicsr.switches import enabled


def count_epochs(loaders: TrainLoaders) -> None:
    """Train-loader callback: count epochs as the loader really runs; an empty loader is an error."""
    opt, per_epoch = loaders.opt, len(loaders.train_loader)
    dataset_opt = opt['datasets']['train']
    if per_epoch == 0:
        raise ValueError(
            f"datasets:train ({dataset_opt.get('name')}): {len(loaders.train_loader.dataset)} samples "
            f"x enlarge ratio {dataset_opt.get('dataset_enlarge_ratio', 1)} make less than one batch of "
            f"batch_size_per_gpu={dataset_opt['batch_size_per_gpu']} x world size {opt['world_size']}; "
            'training would run 0 iterations')
    epochs = math.ceil(loaders.total_iters / per_epoch)
    if epochs != loaders.total_epochs:
        loaders.logger.info(f'srprune: {per_epoch} iterations per epoch (incomplete batches dropped), so {epochs} '
                            f'epochs for {loaders.total_iters} iterations (BasicSR counted {loaders.total_epochs}).')
        loaders.total_epochs = epochs


def next_epoch_on_resume(model: Any, resume_state: dict, train_loader: Any) -> None:
    """Resume callback: a checkpoint taken at the end of an epoch resumes at the next one.

    BasicSR stores the epoch the checkpoint's iteration belongs to and restarts that epoch, so a
    run resumed from the end of epoch e replays e's data order (EnlargedSampler seeds it with e)
    where the uninterrupted run goes on with e + 1. train_pipeline reads ``resume_state['epoch']``
    after ``model.resume_training(resume_state)``, so advancing it here makes the resumed run see
    the same data order. (A checkpoint inside an epoch still restarts that epoch, as in BasicSR.)
    """
    per_epoch = len(train_loader) if train_loader is not None else 0
    if per_epoch and resume_state['iter'] % per_epoch == 0:
        resume_state['epoch'] += 1


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
    """Register every enabled semantics fix (the hooks must be installed too)."""
    if enabled('epoch_count'):
        hooks.register('train_loaders', count_epochs, order=0)
    if enabled('resume_epoch'):
        hooks.register('resume', next_epoch_on_resume, order=0)
    if enabled('seeded_shuffle'):
        from basicsr.data.data_sampler import EnlargedSampler

        EnlargedSampler.__iter__ = seeded_sampler_iter
        hooks.register('train_loaders', seed_the_shuffle, order=0)
