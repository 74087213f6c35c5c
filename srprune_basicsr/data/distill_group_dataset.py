"""DistillGroupDataset: the groups (source images) of a training set, one item per group.

Distillation runs inside BasicSR's train_pipeline; its loader then deals out which groups are
matched at each iteration (``batch_size_per_gpu`` = groups per iteration, shuffled per epoch by
BasicSR's sampler). The images themselves are read once by the distillation model.
"""

from __future__ import annotations

from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils.data import Dataset

from srprune_basicsr.distill.grouping import group_keys
from srprune_basicsr.formats.keys import root_keys


@DATASET_REGISTRY.register()
class DistillGroupDataset(Dataset):
    """Items are ``{'group': i}`` for each group of ``dataroot_gt`` (optionally only ``groups``)."""

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        backend = opt.get('io_backend', {}).get('type', 'disk')
        self.keys = root_keys(opt['dataroot_gt'], backend)
        self.groups = group_keys(self.keys, opt.get('groups'))

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> dict:
        return {'group': index}
