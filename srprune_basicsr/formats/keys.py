"""Sample identity: the one key every file format (scores, keep lists, histories, LMDBs) shares.

A sample's key is its LMDB key, or for folder datasets the path of its file relative to the data
root, without the extension (``0001_s001`` in a flat folder, ``DF2K_HR_sub/0001_s001`` in a
``meta_info`` set that lists sub-folders), so samples of two folders never share a key. Sub-images
cut by ``srprune prepare`` (and BasicSR's ``extract_subimages.py``) are keyed ``<source>_s<NNN>``,
so the source image of a key, used to group sub-images for distillation, is read back from it.
Whether a data root is an LMDB, which files count as images, and how the samples of a built
BasicSR dataset (any class that lists them in ``paths`` or ``keys``) are keyed is decided here, once.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


def key_of_path(path: str, lmdb: bool, root: str | os.PathLike | None = None) -> str:
    """A sample's key from the path BasicSR's dataset holds: the LMDB key itself, or the path below ``root``.

    Without a ``root`` (or for a file outside it) the key is the file's stem.
    """
    if lmdb:
        return path
    if root is not None:
        relative = os.path.relpath(path, root)
        if not relative.startswith(os.pardir + os.sep) and relative != os.pardir:
            return os.path.splitext(relative)[0].replace(os.sep, '/')
    return os.path.splitext(os.path.basename(path))[0]


def keys_of_paths(paths: Sequence[str], lmdb: bool, root: str | os.PathLike) -> list[str]:
    """``key_of_path`` of many paths of one root (a path under the root is cut by prefix, not resolved)."""
    if lmdb:
        return list(paths)
    prefix = os.path.join(str(root), '')
    keys = []
    for path in paths:
        if path.startswith(prefix) and os.pardir + os.sep not in path and os.curdir + os.sep not in path:
            keys.append(os.path.splitext(path[len(prefix):])[0].replace(os.sep, '/'))
        else:
            keys.append(key_of_path(path, False, root))
    return keys


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


@dataclass(frozen=True)
class Samples:
    """The samples of a built BasicSR dataset, in index order.

    ``paths`` are the entries as the dataset holds them (GT path, or LQ path for an LQ-only set;
    LMDB keys for LMDBs); ``kind`` is ``paired`` (stored LQ beside each GT), ``gt_only`` (LQ made on
    the fly, as in Real-ESRGAN and FFHQ sets) or ``lq_only`` (SingleImageDataset); ``root`` is the
    data root the paths are in, ``backend`` its BasicSR io backend.
    """

    keys: list[str]
    paths: list[str]
    kind: str
    root: str
    backend: str

    def __len__(self) -> int:
        return len(self.keys)


def _entry_path(entry: Any) -> tuple[str, bool]:
    """(path, paired) of one entry of a dataset's ``paths``: a dict of GT/LQ paths, or one path."""
    if isinstance(entry, dict):
        path = entry.get('gt_path', entry.get('lq_path'))
        if path is None:
            raise TypeError(f'an entry without gt_path or lq_path: {sorted(entry)}')
        return str(path), 'gt_path' in entry and 'lq_path' in entry
    if isinstance(entry, (str, os.PathLike)):
        return str(entry), False
    raise TypeError(f'an entry of type {type(entry).__name__}')


def dataset_samples(dataset: Any, where: str = 'dataset') -> Samples:
    """Key every sample of a built BasicSR dataset; errors name ``where`` (the option file and key).

    Works for datasets that list their samples in ``paths`` (PairedImageDataset, RealESRGANDataset,
    RealESRGANPairedDataset, SingleImageDataset, FFHQDataset and third-party classes written like
    them) or in ``keys``. Video datasets (a ``num_frame`` option: a sample is a clip of frames read
    around a key) and classes with neither list cannot be keyed: that is an error, never a guess.
    Two samples with one key are refused, naming both paths.
    """
    cls = type(dataset).__name__
    opt = getattr(dataset, 'opt', None) or {}
    entries = getattr(dataset, 'paths', None)
    listed_keys = entries is None and isinstance(getattr(dataset, 'keys', None), list)
    if listed_keys:
        entries = dataset.keys
    if 'num_frame' in opt or not isinstance(entries, Sequence) or isinstance(entries, str):
        reason = ('its samples are video clips (num_frame)' if 'num_frame' in opt
                  else 'it lists its samples in neither a paths nor a keys list')
        raise ValueError(f'{where}: cannot key the samples of {cls}: {reason}; pruning, scoring and tracking need '
                         'one key per sample')
    root = opt.get('dataroot_gt') or opt.get('dataroot_lq')
    if not root:
        raise ValueError(f'{where}: cannot key the samples of {cls}: its options name no dataroot_gt or dataroot_lq')
    paths, paired = [], []
    for position, entry in enumerate(entries):
        try:
            path, with_lq = _entry_path(entry)
        except TypeError as err:
            raise ValueError(f'{where}: cannot key the samples of {cls}: sample {position} is {err}') from None
        paths.append(path)
        paired.append(with_lq)
    backend = (opt.get('io_backend') or {}).get('type') or backend_of(root)
    keys = list(paths) if listed_keys else keys_of_paths(paths, backend == 'lmdb', root)
    _refuse_duplicates(keys, paths, where)
    kind = 'paired' if paths and all(paired) else ('gt_only' if opt.get('dataroot_gt') else 'lq_only')
    return Samples(keys, paths, kind, str(root), backend)


def _refuse_duplicates(keys: list[str], paths: list[str], where: str) -> None:
    first: dict[str, int] = {}
    for position, key in enumerate(keys):
        if key in first:
            raise ValueError(f'{where}: two samples have the key {key!r}: {paths[first[key]]} and {paths[position]}; '
                             'keys must tell samples apart (rename one, or keep them in separate data roots)')
        first[key] = position


def dataset_keys(dataset: Any, where: str = 'dataset') -> list[str]:
    """Keys of a built BasicSR dataset, in index order: its own ``sample_keys`` if it has them (a pruned view)."""
    own = getattr(dataset, 'sample_keys', None)
    return list(own) if own is not None else dataset_samples(dataset, where).keys


def group_by_source(keys: Sequence[str]) -> dict[str, list[int]]:
    """Source image -> indices of its sub-images, in key order."""
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(source_of(key), []).append(index)
    return groups


def _normal_form(key: str) -> str:
    import unicodedata

    return next((form for form in ('NFC', 'NFD') if unicodedata.normalize(form, key) == key), 'mixed')


def normalisation_note(missing: Iterable[str], present: Iterable[str]) -> str:
    """A note for a key mismatch where keys differ only in Unicode normalisation ('' when none do).

    macOS file systems give decomposed names (NFD: ``e`` + combining accent), most others composed
    ones (NFC: ``é``): a score file or keep list made on one and a dataset prepared on the other
    then name the same images with different bytes.
    """
    import unicodedata

    present_nfc = {unicodedata.normalize('NFC', k): k for k in present}
    pairs = [(k, present_nfc[unicodedata.normalize('NFC', k)]) for k in missing
             if unicodedata.normalize('NFC', k) in present_nfc]
    if not pairs:
        return ''
    key, other = pairs[0]
    forms = [_normal_form(k) for k in (key, other)]
    return (f'; {len(pairs)} of them differ only in Unicode normalisation (e.g. {key!r} is {forms[0]}, the '
            f"other side's {other!r} is {forms[1]}: names from macOS are NFD); normalise both to NFC, e.g. "
            "unicodedata.normalize('NFC', key)")
