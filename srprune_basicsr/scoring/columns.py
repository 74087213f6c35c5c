"""Which sample of the training set a fed batch's items are: their columns (dataset indices).

A training batch carries ``key`` (a pruned set tags its items) or the GT path (any BasicSR set);
``SampleColumns`` turns either into the sample's index in the training loader's dataset, the column
of every per-sample record (PSNR history, in-run pruning scores). Shared by ``prune_tracking:`` and
``prune_online:`` so both credit a measurement to the same sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from srprune_basicsr.formats.keys import Samples, dataset_keys, dataset_samples


class SampleColumns:
    """Keys and GT paths of a training set, each mapped to its index (column)."""

    def __init__(self, dataset: Any, where: str, block: str) -> None:
        own_view = hasattr(dataset, 'sample_keys')  # a pruned view keys its kept samples itself
        samples = (getattr(dataset, 'samples', None) if own_view else None) or dataset_samples(dataset, where)
        kept = getattr(dataset, 'indices', None) if own_view else None
        self.block = block
        self.samples: Samples = samples
        self.keys = dataset_keys(dataset, where)
        self.column = {k: i for i, k in enumerate(self.keys)}
        paths = samples.paths if kept is None else [samples.paths[i] for i in kept]
        self.path_column = {p: i for i, p in enumerate(paths)}

    def __len__(self) -> int:
        return len(self.keys)

    def of_batch(self, batch_keys: Any) -> np.ndarray:
        """Columns of a fed batch's ``key`` (or ``gt_path``) list; unknown identities are an error."""
        if batch_keys is None:
            raise ValueError(f'{self.block}: the training batch has neither "key" nor "gt_path"; add a prune: block '
                             'to the dataset (it tags items with their key) or return the GT path')
        unknown = [k for k in batch_keys if k not in self.column and k not in self.path_column]
        if unknown:
            raise ValueError(f'{self.block}: batch key(s) {unknown[:5]} are not in the training set')
        return np.asarray([self.column[k] if k in self.column else self.path_column[k] for k in batch_keys],
                          dtype=np.int64)


def batch_identities(data: dict) -> Any:
    """What identifies a fed batch's items: ``key``, else ``gt_path``, else ``lq_path`` (None without any)."""
    return data.get('key', data.get('gt_path', data.get('lq_path')))
