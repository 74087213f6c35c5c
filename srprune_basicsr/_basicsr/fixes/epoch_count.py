"""``epoch_count``: epochs are counted as the train loader runs them (it drops the last incomplete batch).

BasicSR counts ``ceil(len / batch)`` iterations per epoch, so a small (e.g. pruned) set stopped
short of ``total_iter`` without a word, and a set smaller than one batch trained 0 iterations.
"""

from __future__ import annotations

import math

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.fixes.base import Fix
from srprune_basicsr._basicsr.hooks import TrainLoaders


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


def apply() -> None:
    """Register the train-loader callback (before every other)."""
    hooks.register('train_loaders', count_epochs, order=0)


FIX = Fix('epoch_count', 'semantics', 'training stops short of `total_iter` when the loader drops the last batch',
          ('basicsr.train:create_train_val_dataloader',), apply)
