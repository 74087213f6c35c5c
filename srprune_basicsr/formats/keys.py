"""Sample identity: the one key every file format (scores, keep lists, histories, LMDBs) shares.

A sample's key is its LMDB key, or the stem of its GT file for folder datasets. Sub-images cut by
``srprune prepare`` (and BasicSR's ``extract_subimages.py``) are keyed ``<source stem>_s<NNN>``,
so the source image of a key, used to group sub-images for distillation, is read back from it.
Whether a data root is an LMDB and which files count as images are decided here, once.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from srprune_basicsr.formats.meta_info import read_meta_info

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
_SUB_IMAGE = re.compile(r'^(?P<source>.+)_s(?P<index>\d+)$')


def key_bytes(key: str) -> bytes:
    """A key as stored in an LMDB: UTF-8 (the same bytes as ASCII for ASCII names)."""
    return key.encode('utf-8')


def valid_key(key: str) -> bool:
    """Whether BasicSR can hold ``key``: its meta_info.txt splits fields at white space and keys at the first dot."""
    return bool(key) and '.' not in key and not any(c.isspace() for c in key)


def sub_image_key(source_stem: str, index: int) -> str:
    """Key of the ``index``-th (from 1) sub-image cut from ``source_stem``: ``0001_s001``."""
    return f'{source_stem}_s{index:03d}'


def source_of(key: str) -> str:
    """The source image a sub-image key was cut from (a key without the suffix is its own source)."""
    match = _SUB_IMAGE.match(key)
    return match.group('source') if match else key


def is_image(path: str | os.PathLike) -> bool:
    """Whether a file name has one of the image extensions every verb accepts."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_lmdb(dataroot: str | os.PathLike) -> bool:
    """Whether a data root is an LMDB: BasicSR's naming (``*.lmdb``) or an LMDB file inside."""
    root = Path(dataroot)
    return root.suffix == '.lmdb' or (root / 'data.mdb').is_file()


def backend_of(dataroot: str | os.PathLike) -> str:
    """BasicSR's ``io_backend`` type for a data root: ``lmdb`` or ``disk``."""
    return 'lmdb' if is_lmdb(dataroot) else 'disk'


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder, sorted by name (other files are left out)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder}: no such folder')
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))


def key_of_path(path: str, lmdb: bool) -> str:
    """A sample's key from the path BasicSR's dataset holds: the LMDB key itself, or the file's stem."""
    return path if lmdb else os.path.splitext(os.path.basename(path))[0]


def root_keys(dataroot_gt: str | os.PathLike, backend: str | None = None) -> list[str]:
    """Keys of a GT data root: meta_info order for an LMDB, sorted file stems for a folder."""
    backend = backend or backend_of(dataroot_gt)
    if backend == 'lmdb':
        return [e.key for e in read_meta_info(dataroot_gt)]
    return sorted(p.stem for p in image_files(dataroot_gt))


def duplicates(keys: Sequence[str]) -> list[str]:
    """Keys that occur more than once, in first-seen order."""
    counts = Counter(keys)
    return [k for k, n in counts.items() if n > 1]


def dataset_keys(dataset: Any) -> list[str]:
    """Keys of a built BasicSR dataset, in index order: its ``keys`` if it has them, else from its paths."""
    if getattr(dataset, 'keys', None) is not None:
        return list(dataset.keys)
    paths = getattr(dataset, 'paths', None)
    if paths is None:
        raise ValueError(f'{type(dataset).__name__} has no paths/keys to tell samples apart')
    lmdb = getattr(dataset, 'io_backend_opt', {}).get('type') == 'lmdb'
    return [key_of_path(p['gt_path'] if isinstance(p, dict) else p, lmdb) for p in paths]


def group_by_source(keys: Sequence[str]) -> dict[str, list[int]]:
    """Source image -> indices of its sub-images, in key order."""
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(source_of(key), []).append(index)
    return groups
