"""``type: PrunedPairedImageDataset``: the name option files used before ``prune:`` worked on every dataset type.

It builds BasicSR's PairedImageDataset and applies the options' ``prune:`` block (see
``data.pruned_dataset``), exactly what ``type: PairedImageDataset`` with the same block gives.
Without a block it keeps every sample and still tags items with ``key`` and ``index``.
"""

from __future__ import annotations

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils.registry import DATASET_REGISTRY

from srprune_basicsr.data.pruned_dataset import PrunedDataset, prune_dataset


@DATASET_REGISTRY.register()
def PrunedPairedImageDataset(opt: dict) -> PrunedDataset:  # noqa: N802  (a registry name used by option files)
    """PairedImageDataset over the samples the ``prune:`` block keeps (all of them without one)."""
    return prune_dataset(PairedImageDataset(opt), opt)
