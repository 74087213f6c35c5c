"""The deterministic pass over a training set that scorers and the PSNR tracker share.

Each sample is read whole (or as a fixed centre crop), with no random crop, flip or degradation,
in fixed batches of consecutive indices. Under ``--launcher pytorch`` or ``slurm`` rank r takes
batches r, r + W, ...: every batch has the same content as in a single-process run, so values
do not depend on the number of ranks, and a finished batch never needs scoring again.

What is read depends on the dataset's kind (``formats.keys.dataset_samples``): a paired set is
read by its own class in validation phase (the stored LR); a GT-only set (RealESRGANDataset,
FFHQDataset: LR made on the fly during training) is read from its files, and its LR is the
package's MATLAB bicubic of the GT at the option's scale, rounded to 8 bits as ``srprune prepare``
stores LR images; an LQ-only set (SingleImageDataset) gives its one image as ``gt`` and no LR.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import torch

from srprune_basicsr.bicubic import imresize_uint8
from srprune_basicsr.formats.keys import Samples, dataset_samples

Group = tuple[np.ndarray, torch.Tensor | None, torch.Tensor]  # positions in the batch, LQ stack (None: no LR), GT
LR_SOURCES = {'paired': 'stored', 'gt_only': 'bicubic', 'lq_only': 'none'}


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


class StoredImages(torch.utils.data.Dataset):
    """Deterministic items of a set without stored LR: each image read whole, its LR made by bicubic.

    Reads through the dataset's own file client when this process already opened it (an LMDB may
    be open only once per process); otherwise opens its own on first use (in loader workers, in
    each worker), so it pickles as paths.
    """

    def __init__(self, samples: Samples, scale: int, base: Any = None, make_lr: bool = True) -> None:
        self.samples, self.scale = samples, int(scale)
        self.make_lr = make_lr and samples.kind == 'gt_only'
        self.base = base
        self.client: Any = None
        self.client_key = 'img'
        self.own_client = False

    def __len__(self) -> int:
        return len(self.samples)

    def __getstate__(self) -> dict:
        return dict(self.__dict__, client=None, base=None, own_client=False)

    def _shared_client(self) -> tuple[Any, str] | None:
        """The base dataset's open LMDB client of this root, and its client key."""
        backend = getattr(getattr(self.base, 'file_client', None), 'client', None)
        for key, path in zip(getattr(backend, '_client', {}), getattr(backend, 'db_paths', []), strict=False):
            if os.path.realpath(path) == os.path.realpath(self.samples.root):
                return self.base.file_client, key
        return None

    def _read(self, index: int) -> np.ndarray:
        from basicsr.utils import FileClient, imfrombytes

        if self.client is None:
            shared = self._shared_client() if self.samples.backend == 'lmdb' else None
            if shared:
                self.client, self.client_key = shared
            else:
                lmdb = self.samples.backend == 'lmdb'
                self.client = FileClient('lmdb', db_paths=[self.samples.root], client_keys=['img']) if lmdb \
                    else FileClient('disk')
                self.client_key, self.own_client = 'img', True
        return imfrombytes(self.client.get(self.samples.paths[index], self.client_key), float32=False)
    def __getitem__(self, index: int) -> dict:
        from basicsr.utils import img2tensor

        img = self._read(index)
        if not self.make_lr:
            return {'gt': img2tensor(img.astype(np.float32) / 255.0, bgr2rgb=True, float32=True)}
        h, w = img.shape[:2]
        gt = img[:h - h % self.scale, :w - w % self.scale]
        lq = imresize_uint8(gt, 1 / self.scale)
        gt_t, lq_t = img2tensor([gt.astype(np.float32) / 255.0, lq.astype(np.float32) / 255.0], bgr2rgb=True,
                                float32=True)
        return {'gt': gt_t, 'lq': lq_t}

    def close(self) -> None:
        """Close an LMDB this reader opened (an environment may be open only once per process)."""
        if self.client is not None and self.own_client:
            for env in getattr(self.client.client, '_client', {}).values():
                env.close()
        self.client = None


def _base_and_samples(dataset: Any, where: str) -> tuple[Any, Samples]:
    """The BasicSR dataset under a pruned view (``data.pruned_dataset``) or the dataset itself, and its samples."""
    if hasattr(dataset, 'sample_keys'):
        return dataset.dataset, dataset.samples
    return dataset, dataset_samples(dataset, where)


def lr_source(dataset: Any, where: str = 'dataset') -> str:
    """Where a deterministic pass over ``dataset`` gets its LR: ``stored``, ``bicubic`` (of the GT) or ``none``."""
    return LR_SOURCES[_base_and_samples(dataset, where)[1].kind]


def reading_view(dataset: Any, scale: int, where: str = 'dataset', need_lr: bool = True) -> tuple[Any, str]:
    """What a deterministic pass over ``dataset`` reads, and where its LR comes from (``LR_SOURCES``).

    A pruned view (``data.pruned_dataset``) is read through its kept indices. ``need_lr=False``
    skips making the bicubic LR of a GT-only set (scorers that read only the GT).
    """
    view = hasattr(dataset, 'sample_keys')
    base, samples = _base_and_samples(dataset, where)
    reader = validation_view(base) if samples.kind == 'paired' else StoredImages(samples, scale, base, need_lr)
    if view:
        reader = torch.utils.data.Subset(reader, dataset.indices)
    return reader, LR_SOURCES[samples.kind]


@contextmanager
def fixed_view(dataset: Any, scale: int, where: str = 'dataset', need_lr: bool = True) -> Iterator[Any]:
    """The dataset as a deterministic pass reads it (``reading_view``), for one pass in this process.

    A paired set's validation copy shares the training set's file client when this process already
    opened it (num_worker 0); otherwise it opens its own, and any LMDB it opened is closed
    afterwards: an LMDB environment may be open only once per process, and forked loader workers
    inherit it.
    """
    reader, _ = reading_view(dataset, scale, where, need_lr)
    try:
        yield reader
    finally:
        inner = reader.dataset if isinstance(reader, torch.utils.data.Subset) else reader
        base = dataset.dataset if hasattr(dataset, 'sample_keys') else dataset
        if isinstance(inner, StoredImages):
            inner.close()
        else:
            client = getattr(inner, 'file_client', None)
            if client is not None and client is not getattr(base, 'file_client', None):
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
    with_lq = 'lq' in items[0]
    groups: dict[tuple, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault((tuple(item['lq'].shape) if with_lq else (), tuple(item['gt'].shape)), []).append(i)
    return [(np.asarray(group),
             torch.stack([center_crop(items[i]['lq'], crop // scale if crop else None, option) for i in group])
             if with_lq else None,
             torch.stack([center_crop(items[i]['gt'], crop, option) for i in group])) for group in groups.values()]


def load_batch(dataset: Any, indices: np.ndarray, crop: int | None, scale: int,
               option: str = 'score:center_crop') -> list[Group]:
    """Read one batch in this process (the scorers' path: no loader workers to start)."""
    return collate_by_shape([dataset[int(i)] for i in indices], crop, scale, option)


def loader(dataset: Any, batches: list[np.ndarray], crop: int | None, scale: int, option: str, workers: int,
           pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A persistent DataLoader over fixed batches, read by ``workers`` processes (the tracker's path)."""
    return torch.utils.data.DataLoader(
        reading_view(dataset, scale)[0], batch_sampler=[b.tolist() for b in batches], num_workers=workers,
        collate_fn=partial(collate_by_shape, crop=crop, scale=scale, option=option),
        persistent_workers=workers > 0, pin_memory=pin_memory)
