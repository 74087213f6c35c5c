"""``fork_workers``: where the start method is forkserver, the train loader's workers start by fork.
"""

from __future__ import annotations

from typing import Any

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.fixes.base import Fix


def fork_loader_workers(loaders: Any) -> None:
    """Train-loader callback: workers by fork where the process's default start method is forkserver.

    BasicSR's train loader has no persistent workers, so every epoch starts new ones. Under forkserver
    each new worker unpickles the dataset and imports torch, basicsr and the plugin afresh: seconds per
    epoch, which a pruned set of a few iterations per epoch pays every few iterations (it tripled a
    10% run's time per iteration). Fork hands the worker the imported modules at no cost, and BasicSR's
    ``worker_init_fn`` seeds it as before, so the data are the same. A spawn set on purpose (BasicSR's
    ``--launcher pytorch``) or a context the loader names is left alone.
    """
    import multiprocessing

    loader = loaders.train_loader
    if (loader.num_workers > 0 and loader.multiprocessing_context is None
            and multiprocessing.get_start_method(allow_none=True) == 'forkserver'
            and 'fork' in multiprocessing.get_all_start_methods()):
        loader.multiprocessing_context = 'fork'


def apply() -> None:
    """Register the train-loader callback."""
    hooks.register('train_loaders', fork_loader_workers)


FIX = Fix('fork_workers', 'version', 'under forkserver every epoch\'s new loader workers re-import torch, basicsr '
          'and the plugin', ('basicsr.train:create_train_val_dataloader',), apply)
