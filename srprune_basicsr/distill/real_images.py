"""The real training sub-images, held as one uint8 tensor on the distillation device.

Gradient matching draws a real batch from every group at every step; reading and decoding PNGs
for each draw would dominate a GPU step (a group-match takes milliseconds). The sub-images of a
typical training set fit easily (T91 + BSD200 at 96 px: 13,887 images, 384 MB as uint8), so they
are decoded once and indexed on the device. ``limit_gb`` guards against a set that does not fit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import cv2
import numpy as np
import torch
from tqdm import tqdm

from srprune_basicsr.formats.keys import image_files, key_bytes, root_keys
from srprune_basicsr.formats.lmdb import open_source


def _decode(data: bytes | None, where: str) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        raise ValueError(f'{where}: cannot decode the image')
    return img[:, :, ::-1]


def _stored(dataroot_gt: str | os.PathLike, backend: str, keys: list[str]) -> Iterator[tuple[str, bytes]]:
    """(where, stored bytes) of every key: the LMDB value or the file's content."""
    if backend == 'lmdb':
        with open_source(dataroot_gt) as env, env.begin() as txn:
            for k in keys:
                yield f'{dataroot_gt} key {k}', txn.get(key_bytes(k))
        return
    files = {p.stem: p for p in image_files(dataroot_gt)}
    for k in keys:
        yield str(files[k]), files[k].read_bytes()


class RealImages:
    """All GT sub-images as a [N, 3, H, W] uint8 tensor; ``batch`` returns float [0, 1] images."""

    def __init__(self, dataroot_gt: str | os.PathLike, backend: str, device: torch.device,
                 limit_gb: float = 8.0, progress: bool = True) -> None:
        self.keys = root_keys(dataroot_gt, backend)
        if not self.keys:
            raise ValueError(f'{dataroot_gt}: no training images')
        images, self.stored_bytes = [], 0
        for where, data in tqdm(_stored(dataroot_gt, backend, self.keys), total=len(self.keys), unit='img',
                                desc='distill: reading real sub-images', disable=not progress, leave=False):
            images.append(_decode(data, where))
            self.stored_bytes += len(data or b'')
        shapes = {img.shape for img in images}
        if len(shapes) != 1:
            odd = next(k for k, img in zip(self.keys, images, strict=True) if img.shape != images[0].shape)
            raise ValueError(f'{dataroot_gt}: sub-images differ in size ({sorted(shapes)[:3]}, e.g. key {odd}); '
                             'distill from sub-images of one size (srprune prepare --crop N)')
        size_gb = len(images) * images[0].size / 2**30
        if size_gb > limit_gb:
            raise ValueError(f'{dataroot_gt}: {len(images)} sub-images take {size_gb:.1f} GB, over distill:'
                             f'real_limit_gb={limit_gb}; raise it or distill a subset (distill:groups)')
        self.images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(device)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.images.shape[-2:])

    def batch(self, indices: np.ndarray) -> torch.Tensor:
        index = torch.as_tensor(indices, device=self.images.device)
        return self.images.index_select(0, index).float().div_(255)
