"""The score histogram of a pruned training set, in the run's TensorBoard log.

BasicSR builds the TensorBoard logger before the datasets and does not hand it to them, so this
is a train-loader callback of ``_basicsr.hooks``: once the train set exists, and if it is a
PrunedPairedImageDataset chosen by scores, histograms of all and of the kept scores are written
(tags ``prune/scores_all`` and ``prune/scores_kept``) into ``tb_logger/<name>``, beside BasicSR's own.
"""

from __future__ import annotations

from os import path as osp
from typing import Any


def write_prune_histograms(opt: dict, dataset: Any) -> bool:
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


def log_prune_histograms(loaders: Any) -> None:
    """Train-loader callback (``hooks.TrainLoaders``): log the histograms when the train set is built."""
    if write_prune_histograms(loaders.opt, loaders.train_loader.dataset):
        loaders.logger.info('srprune: score histograms of the pruned train set written to TensorBoard (prune/*)')
