"""The training loader's sampler draws each epoch from the online subset (a train-loader hook callback).

BasicSR's ``train_pipeline`` calls ``train_sampler.set_epoch(epoch)`` before each epoch and then
iterates the loader, whose length follows the sampler's; the sampler's class is swapped for a
subclass that asks the run's ``OnlinePruner`` for the epoch's subset and deals it as
EnlargedSampler deals the whole set (same generator, enlarge ratio and rank slicing), cut to the
planned steps. With nothing pruned it yields exactly EnlargedSampler's order.
"""

from __future__ import annotations

import functools
from typing import Any

from srprune_basicsr._basicsr.hooks import TrainLoaders
from srprune_basicsr._basicsr.semantics import shuffle_generator
from srprune_basicsr.online.options import BLOCK, check_combination, online_options
from srprune_basicsr.online.plan import RunShape
from srprune_basicsr.online.pruner import OnlinePruner
from srprune_basicsr.scoring.columns import SampleColumns


@functools.cache
def online_sampler_class(cls: type) -> type:
    """``cls`` drawing from the run's OnlinePruner (a direct subclass: a mixin in front of a Generic
    sampler class would change the instance layout, and the class of a built sampler is swapped)."""

    class OnlineSampler(cls):  # type: ignore[valid-type, misc]
        online_pruner: OnlinePruner

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch
            self.online_pruner.start_epoch(epoch)

        def __iter__(self) -> Any:  # runs as the loader fetches the epoch's first batch
            self.online_pruner.restore_random_state()
            return iter(self.online_pruner.epoch_order(shuffle_generator(self)))

        def __len__(self) -> int:
            pruner = self.online_pruner
            if pruner.plan is None:  # before the first epoch: the whole set, as BasicSR sized it
                return super().__len__()
            return (pruner.plan.steps - pruner.first_step) * pruner.shape.batch

    OnlineSampler.__name__ = OnlineSampler.__qualname__ = f'{cls.__name__}WithPruneOnline'
    return OnlineSampler


def _dist() -> tuple[int, int]:
    from basicsr.utils.dist_util import get_dist_info

    return get_dist_info()


def attach_sampler(loaders: TrainLoaders) -> None:
    """Train-loader callback: with ``prune_online:``, the train sampler draws from the run's OnlinePruner."""
    from basicsr.data.data_sampler import EnlargedSampler

    from srprune_basicsr._basicsr import hooks

    opt = loaders.opt
    if not opt.get(BLOCK):
        return
    source = hooks.option_file() or 'option file'
    options = online_options(opt[BLOCK], source)
    check_combination(opt, source)
    sampler = loaders.train_sampler
    if not isinstance(sampler, EnlargedSampler):
        raise ValueError(f'{source}: {BLOCK}: the train loader has no EnlargedSampler (got '
                         f'{type(sampler).__name__}); it works with BasicSR\'s train_pipeline loaders')
    dataset_opt = opt['datasets']['train']
    where = f"{source}: {BLOCK}: datasets:train ({dataset_opt.get('name', 'train')})"
    rank, world = _dist()
    shape = RunShape(per_epoch=len(loaders.train_loader), total_iter=int(loaders.total_iters),
                     total_epochs=int(loaders.total_epochs), batch=int(dataset_opt['batch_size_per_gpu']),
                     world=world, enlarge=int(dataset_opt.get('dataset_enlarge_ratio') or 1))
    pruner = OnlinePruner(options, SampleColumns(loaders.train_loader.dataset, where, BLOCK), shape, opt, rank, world,
                          source)
    sampler.__class__ = online_sampler_class(type(sampler))
    sampler.online_pruner = pruner
    what = (f'ratio {options.ratio:g} of the below-mean samples left out' if options.criterion == 'loss'
            else f'the {options.keep:g} most uncertain kept after {options.window} epochs')
    loaders.logger.info(f'{BLOCK}: criterion {options.criterion}, {what}, {pruned_epochs(options, shape)}; '
                        f'{len(pruner.columns)} samples, '
                        f'{shape.per_epoch} steps per full epoch; the LR schedule follows the full run\'s '
                        f'{shape.total_iter} iterations over the steps taken')


def pruned_epochs(options: object, shape: RunShape) -> str:
    """Which epochs may prune, in words for the log: the first ones have no records yet, the last ``1 - anneal`` none.

    Counted as the refusal counts them (from 0), so a run of few epochs is described as it runs, e.g.
    every epoch after the first may prune and none at the end trains on all data.
    """
    first = options.window if options.criterion == 'uncertainty' else 1
    epochs = [e for e in range(first, shape.total_epochs) if shape.pruning(e, options.anneal)]
    if not epochs:
        return 'no epoch pruned'
    span = f'epoch {epochs[0]}' if len(epochs) == 1 else f'epochs {epochs[0]}-{epochs[-1]}'
    after = shape.total_epochs - 1 - epochs[-1]
    tail = (f'the last {after} on all data' if after else 'none at the end on all data (anneal '
            f'{options.anneal:g} of {shape.total_epochs} epochs)')
    return f'{span} of {shape.total_epochs} (counted from 0) may prune, the first {epochs[0]} and {tail}'
