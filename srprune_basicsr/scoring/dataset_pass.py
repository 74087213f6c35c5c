"""The deterministic pass over a training set that scorers and the PSNR tracker share.

The dataset is read in its validation form (whole sub-images or a fixed centre crop, no random
crop, no flip), in fixed batches of consecutive indices. Under ``--launcher pytorch`` rank r takes
batches r, r + W, ...: every batch has the same content as in a single-process run, so values
do not depend on the number of ranks, and a finished batch never needs scoring again.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import torch

Group = tuple[np.ndarray, torch.Tensor, torch.Tensor]  # positions in the batch, LQ stack, GT stack


def build_validation_dataset(opt: dict) -> Any:
    """The option file's ``dataset`` built by BasicSR in validation phase (its ``prune:`` left out)."""
    from basicsr.data import build_dataset

    dataset_opt = dict(opt['dataset'], phase='val', scale=opt['scale'])
    dataset_opt.setdefault('name', 'score')
    dataset_opt.pop('prune', None)
    return build_dataset(dataset_opt)


def validation_view(dataset: Any) -> Any:
    """A shallow copy of a BasicSR dataset in validation phase (its own backend options: BasicSR pops them)."""
    view = copy.copy(dataset)
    view.opt = dict(dataset.opt, phase='val')
    view.io_backend_opt = dict(dataset.io_backend_opt)
    return view


@contextmanager
def fixed_view(dataset: Any) -> Iterator[Any]:
    """The training dataset in its validation form, for one pass in this process.

    A shallow copy shares the training set's file client when this process already opened it
    (num_worker 0); otherwise it opens its own, and any LMDB it opened is closed afterwards: an
    LMDB environment may be open only once per process, and forked loader workers inherit it.
    """
    view = validation_view(dataset)
    try:
        yield view
    finally:
        client = getattr(view, 'file_client', None)
        if client is not None and client is not getattr(dataset, 'file_client', None):
            for env in getattr(client.client, '_client', {}).values():
                env.close()


def rank_batches(total: int, batch_size: int, rank: int = 0, world: int = 1) -> list[np.ndarray]:
    """Batches of consecutive indices; this rank's share is every world-th batch."""
    starts = range(0, total, batch_size)
    return [np.arange(start, min(start + batch_size, total)) for number, start in enumerate(starts)
            if number % world == rank]


def center_crop(img: torch.Tensor, size: int | None, option: str = 'score:center_crop') -> torch.Tensor:
    """The central ``size`` x ``size`` crop (``None``: the whole image); ``option`` names the setting in errors."""
    if not size:
        return img
    h, w = img.shape[-2:]
    if size > min(h, w):
        raise ValueError(f'{option} {size} is larger than a {h}x{w} sample')
    top, left = (h - size) // 2, (w - size) // 2
    return img[..., top:top + size, left:left + size]


def collate_by_shape(items: list[dict], crop: int | None, scale: int, option: str) -> list[Group]:
    """One batch as (positions, LQ stack, GT stack) per sample shape, centre-cropped if asked.

    Whole sub-images of different sizes are batched by shape. Runs in loader workers when there are any.
    """
    if 'lq' not in items[0]:
        raise ValueError(f'{option.split(":")[0]}: the dataset gives no LQ images; a fixed-view pass needs stored '
                         'LR images (for prune_tracking, use view: train_crop with datasets that degrade on the fly)')
    groups: dict[tuple, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault((tuple(item['lq'].shape), tuple(item['gt'].shape)), []).append(i)
    return [(np.asarray(group),
             torch.stack([center_crop(items[i]['lq'], crop // scale if crop else None, option) for i in group]),
             torch.stack([center_crop(items[i]['gt'], crop, option) for i in group])) for group in groups.values()]


def load_batch(dataset: Any, indices: np.ndarray, crop: int | None, scale: int,
               option: str = 'score:center_crop') -> list[Group]:
    """Read one batch in this process (the scorers' path: no loader workers to start)."""
    return collate_by_shape([dataset[int(i)] for i in indices], crop, scale, option)


def loader(dataset: Any, batches: list[np.ndarray], crop: int | None, scale: int, option: str, workers: int,
           pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A persistent DataLoader over fixed batches, read by ``workers`` processes (the tracker's path)."""
    return torch.utils.data.DataLoader(
        validation_view(dataset), batch_sampler=[b.tolist() for b in batches], num_workers=workers,
        collate_fn=partial(collate_by_shape, crop=crop, scale=scale, option=option),
        persistent_workers=workers > 0, pin_memory=pin_memory)
