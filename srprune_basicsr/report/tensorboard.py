"""The score histogram of a pruned training set, in the run's TensorBoard log.

BasicSR builds the TensorBoard logger before the datasets and does not hand it to them, so the
plugin wraps ``basicsr.train.create_train_val_dataloader``: once the train set exists, and if it is
a PrunedPairedImageDataset chosen by scores, histograms of all and of the kept scores are written
(tags ``prune/scores_all`` and ``prune/scores_kept``) into ``tb_logger/<name>``, beside BasicSR's own.
"""

from __future__ import annotations

from collections.abc import Callable
from os import path as osp
from typing import Any


def log_prune_histograms(opt: dict, dataset: Any) -> bool:
    """Write the histograms if the run logs to TensorBoard and the set was pruned by scores."""
    if getattr(dataset, 'all_scores', None) is None or opt.get('rank', 0) != 0:
        return False
    if not opt['logger'].get('use_tb_logger') or 'debug' in opt['name']:
        return False
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=osp.join(opt['root_path'], 'tb_logger', opt['name'])) as writer:
        writer.add_histogram('prune/scores_all', dataset.all_scores, 0)
        writer.add_histogram('prune/scores_kept', dataset.kept_scores, 0)
    return True


def with_prune_histograms(original: Callable) -> Callable:
    """Wrap create_train_val_dataloader so the histograms are logged when the train set is built."""

    def create_train_val_dataloader(opt: dict, logger: Any) -> tuple:
        result = original(opt, logger)
        if result[0] is not None and log_prune_histograms(opt, result[0].dataset):
            logger.info('srprune: score histograms of the pruned train set written to TensorBoard (prune/*)')
        return result

    create_train_val_dataloader.__wrapped__ = original  # type: ignore[attr-defined]
    return create_train_val_dataloader


def install() -> None:
    """Wrap BasicSR's train loader builder once."""
    import basicsr.train

    if not getattr(basicsr.train.create_train_val_dataloader, '_srprune_histograms', False):
        wrapped = with_prune_histograms(basicsr.train.create_train_val_dataloader)
        wrapped._srprune_histograms = True  # type: ignore[attr-defined]
        basicsr.train.create_train_val_dataloader = wrapped
