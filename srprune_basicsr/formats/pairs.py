"""Paired data roots: every LQ image must be its GT divided by the scale.

BasicSR's validation and test crop the GT to ``LQ size x scale`` without a word, so an LQ set of
another scale (the X4 LMDB under ``scale: 2``) scores and evaluates against a corner of each GT.
This check compares the stored sizes before any image is decoded: LMDB sizes from
``meta_info.txt``, folder images from their file headers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from srprune_basicsr.formats.keys import key_of_path
from srprune_basicsr.formats.meta_info import read_meta_info

FOLDER_PAIRS_CHECKED = 2000  # folder datasets: at most this many pairs, spread evenly, have their headers read


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(height, width) from an image file's header, without decoding the pixels; None where PIL cannot tell."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]
    except Exception:  # noqa: BLE001  (formats PIL lacks, e.g. EXR, and huge images: left to BasicSR's reader)
        return None


def _sizes(paths: Sequence[str], root: str, lmdb: bool) -> list[tuple[int, int] | None]:
    if lmdb:
        shapes = {e.key: e.shape[:2] for e in read_meta_info(root)}
        return [shapes.get(p) for p in paths]
    return [image_size(p) for p in paths]


def check_scale(pairs: Sequence[dict], dataroot_gt: str, dataroot_lq: str, scale: int, lmdb: bool,
                where: str) -> None:
    """Refuse pairs whose GT is not the LQ times ``scale`` (up to scale - 1 pixels of GT left over)."""
    if not lmdb and len(pairs) > FOLDER_PAIRS_CHECKED:
        step = len(pairs) / FOLDER_PAIRS_CHECKED
        pairs = [pairs[int(i * step)] for i in range(FOLDER_PAIRS_CHECKED)]
    gt_sizes = _sizes([p['gt_path'] for p in pairs], dataroot_gt, lmdb)
    lq_sizes = _sizes([p['lq_path'] for p in pairs], dataroot_lq, lmdb)
    for pair, gt, lq in zip(pairs, gt_sizes, lq_sizes, strict=True):
        if gt is None or lq is None:
            continue  # a size this check cannot read: BasicSR's own reader will report the file
        if not all(0 <= g - q * scale < scale for g, q in zip(gt, lq, strict=True)):
            key = key_of_path(pair['gt_path'], lmdb, dataroot_gt)
            ratio = f'{gt[0] / lq[0]:.3g}' if lq[0] else '?'
            raise ValueError(f'{where}: sample {key!r}: GT {gt[0]}x{gt[1]} (in {dataroot_gt}) is not {scale} x its LQ '
                             f'{lq[0]}x{lq[1]} (in {dataroot_lq}; GT/LQ = {ratio}): is dataroot_lq of another scale?')


def check_dataset_scale(dataset: object, dataset_opt: dict) -> object:
    """Dataset callback: a paired BasicSR dataset (``paths`` of gt_path/lq_path) must match its ``scale``."""
    paths = getattr(dataset, 'paths', None)
    scale = dataset_opt.get('scale')
    if not paths or not isinstance(paths[0], dict) or 'lq_path' not in paths[0] or not scale:
        return dataset
    if not (dataset_opt.get('dataroot_gt') and dataset_opt.get('dataroot_lq')):
        return dataset
    lmdb = (dataset_opt.get('io_backend') or {}).get('type') == 'lmdb'
    where = f"datasets:{dataset_opt.get('name', '?')}"
    check_scale(paths, str(Path(dataset_opt['dataroot_gt'])), str(Path(dataset_opt['dataroot_lq'])), int(scale),
                lmdb, where)
    return dataset
