"""Paired data roots: every LQ image must be its GT divided by the scale, named as ``filename_tmpl`` says.

BasicSR's validation and test crop the GT to ``LQ size x scale`` without a word, so an LQ set of
another scale (the X4 LMDB under ``scale: 2``) scores and evaluates against a corner of each GT.
This check compares the stored sizes before any image is decoded: LMDB sizes from
``meta_info.txt``, folder images from their file headers. Before training, the same stored sizes
say whether ``gt_size`` fits every GT image, and the folder listings whether each GT file has the
LQ file ``filename_tmpl`` names (BasicSR finds out mid-run, or with a bare assertion).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from srprune_basicsr.formats.keys import image_files, key_of_path
from srprune_basicsr.formats.meta_info import LmdbError, read_meta_info
from srprune_basicsr.formats.text import utf8_text

FOLDER_PAIRS_CHECKED = 2000  # folder datasets: at most this many pairs, spread evenly, have their headers read
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def png_size(head: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG's first 24 bytes (its IHDR chunk); None for anything else."""
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b'IHDR':
        return None
    return int.from_bytes(head[20:24], 'big'), int.from_bytes(head[16:20], 'big')


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(height, width) from an image file's header, without decoding the pixels; None where PIL cannot tell.

    A PNG's size is read from its first 24 bytes (3x faster than PIL: a folder of 30,000 sub-images
    is read in seconds); other formats go through PIL.
    """
    from PIL import Image

    try:
        with open(path, 'rb') as f:
            size = png_size(f.read(24))
        if size is not None:
            return size
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


# ----------------------------------------------------------------------------- before training
PAIRED_CROPS = ('PairedImageDataset', 'RealESRGANPairedDataset')  # BasicSR classes that pair two folders and crop
PAIRED_FACTORIES = ('PrunedPairedImageDataset',)  # registered functions that build a PairedImageDataset


def pairs_folders(dataset_type: object, registry: object) -> bool:
    """Whether a registered dataset type pairs GT and LQ roots and crops both with BasicSR's ``paired_random_crop``.

    Its class (or a base class) is one of BasicSR's paired classes, by name: Real-ESRGAN's own
    ``RealESRGANPairedDataset`` is not a subclass of basicsr's copy. Other types are left alone.
    """
    if not isinstance(dataset_type, str):
        return False
    names = registry._obj_map  # noqa: SLF001  (BasicSR's Registry has no public lookup without KeyError)
    obj = names.get(dataset_type, names.get(f'{dataset_type}_basicsr'))
    if dataset_type in PAIRED_FACTORIES or obj is None:
        return dataset_type in PAIRED_FACTORIES
    return isinstance(obj, type) and any(c.__name__ in PAIRED_CROPS for c in obj.__mro__)


def meta_file(dataset_opt: dict) -> str | None:
    """The file listing a folder dataset's images: ``meta_info_file``, or Real-ESRGAN's ``meta_info``."""
    return dataset_opt.get('meta_info_file') or dataset_opt.get('meta_info')


def gt_sizes(dataset_opt: dict) -> list[tuple[str, tuple[int, int]]]:
    """(name, (height, width)) of every GT image whose size is stored: LMDB meta_info.txt, else file headers.

    A folder dataset with a meta file reads the files it lists (the first field of each line);
    an image whose size cannot be read is left out (BasicSR's reader reports it).
    """
    root = Path(str(dataset_opt['dataroot_gt']))
    if (dataset_opt.get('io_backend') or {}).get('type') == 'lmdb':
        try:
            return [(e.key, e.shape[:2]) for e in read_meta_info(root)]
        except LmdbError:
            return []  # no meta_info.txt: BasicSR refuses the LMDB itself
    listed = meta_file(dataset_opt)
    if listed:
        listing = Path(str(listed))
        expected = 'meta_info_file (expected one file per line)'
        lines = utf8_text(listing, listing.read_bytes(), ValueError, expected).splitlines()
        files = [root / re.split(r'[,\s]+', line.strip())[0] for line in lines if line.strip()]
    else:
        files = image_files(root)
    sizes = [(str(f.relative_to(root)) if f.is_relative_to(root) else str(f), image_size(f)) for f in files]
    return [(name, size) for name, size in sizes if size is not None]


def check_gt_size(dataset_opt: dict, scale: int, where: str) -> None:
    """``gt_size`` must be a multiple of ``scale`` and fit in every GT image (``where`` names the file and dataset).

    BasicSR's ``paired_random_crop`` cuts LQ patches of ``gt_size // scale`` pixels: with a
    remainder the GT patches do not match them (or each other, near the border) and the run fails
    when a batch is stacked or the loss is taken; a GT image smaller than ``gt_size`` fails with a
    ValueError when a batch first draws it, possibly hours into the run.
    """
    gt_size = dataset_opt.get('gt_size')
    if not isinstance(gt_size, int) or isinstance(gt_size, bool) or gt_size <= 0 or scale < 1:
        return
    if gt_size % scale:
        lower, upper = gt_size - gt_size % scale, gt_size - gt_size % scale + scale
        raise ValueError(f'{where}:gt_size {gt_size} is not a multiple of scale {scale}: BasicSR crops LQ patches '
                         f'of gt_size // scale = {gt_size // scale} px and GT patches of {gt_size} px, not {scale} x '
                         f'{gt_size // scale}, and the run fails mid-way; use gt_size: {lower or upper}' +
                         (f' or {upper}' if lower else ''))
    sizes = gt_sizes(dataset_opt)
    small = [(name, size) for name, size in sizes if min(size) < gt_size]
    if small:
        name, (h, w) = min(small, key=lambda item: min(item[1]))
        others = f' (and {len(small) - 1} more of {len(sizes)})' if len(small) > 1 else ''
        raise ValueError(f"{where}:gt_size {gt_size} is larger than the GT image {name!r} ({h}x{w} px, in "
                         f"{dataset_opt['dataroot_gt']}){others}: BasicSR cannot crop a {gt_size} px patch from it "
                         f'and stops when a batch draws it; use gt_size <= {min(h, w) - min(h, w) % scale} or leave '
                         'the smaller images out')


def folder_files(folder: str | os.PathLike) -> list[str]:
    """The file names BasicSR's ``paired_paths_from_folder`` lists: every file of the folder but hidden ones."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if not e.name.startswith('.') and e.is_file())


def lq_name(gt_file: str, tmpl: str) -> str:
    """The LQ file BasicSR pairs with ``gt_file``: the template filled with the GT stem, then the GT extension."""
    stem, ext = os.path.splitext(gt_file)
    return f'{tmpl.format(stem)}{ext}'


def fitting_template(gt_files: Sequence[str], lq_files: set[str], gt_file: str) -> str | None:
    """A ``filename_tmpl`` naming an LQ file for every GT file, read off an LQ name around ``gt_file``'s stem."""
    stem, ext = os.path.splitext(gt_file)
    for lq in sorted(lq_files):
        lq_stem, lq_ext = os.path.splitext(lq)
        if lq_ext != ext or stem not in lq_stem:
            continue
        before, after = (part.replace('{', '{{').replace('}', '}}') for part in lq_stem.split(stem, 1))
        tmpl = f'{before}{{}}{after}'
        if all(lq_name(g, tmpl) in lq_files for g in gt_files):
            return tmpl
    return None


def check_lq_names(dataset_opt: dict, where: str) -> None:
    """Each GT file of a folder pair must have the LQ file ``filename_tmpl`` names, and the counts must agree.

    BasicSR's ``paired_paths_from_folder`` names the LQ file ``filename_tmpl.format(<GT stem>) + <GT
    extension>`` and fails with a bare AssertionError (no folder, no template) when it is not
    there: GT ``baby.png`` with LQ ``babyx2.png`` needs ``filename_tmpl: '{}x2'``, and the reverse
    ``'{}'``. Datasets listed in a meta file, and LMDBs, are paired otherwise and left alone.
    """
    if (dataset_opt.get('io_backend') or {}).get('type') == 'lmdb' or meta_file(dataset_opt):
        return
    tmpl = dataset_opt.get('filename_tmpl', '{}')
    if not isinstance(tmpl, str):
        raise ValueError(f"{where}:filename_tmpl is {tmpl!r}, not text: YAML reads an unquoted {{}} as an empty "
                         "mapping; quote it: filename_tmpl: '{}'")
    gt_root, lq_root = dataset_opt['dataroot_gt'], dataset_opt['dataroot_lq']
    gt_files, lq_files = folder_files(gt_root), set(folder_files(lq_root))
    for gt_file in gt_files:
        try:
            expected = lq_name(gt_file, tmpl)
        except (IndexError, KeyError, ValueError) as err:
            raise ValueError(f'{where}:filename_tmpl {tmpl!r} is not a template of one {{}} ({err!r})') from None
        if expected not in lq_files:
            raise ValueError(missing_lq(where, tmpl, gt_file, expected, gt_files, lq_files, gt_root, lq_root))
    if len(lq_files) != len(gt_files):
        extra = sorted(lq_files - {lq_name(g, tmpl) for g in gt_files})
        raise ValueError(f'{where}: dataroot_lq {lq_root} holds {len(lq_files)} files, dataroot_gt {gt_root} '
                         f'{len(gt_files)}, and BasicSR pairs the folders file for file; LQ files no GT file names '
                         f'(filename_tmpl {tmpl!r}): e.g. {extra[:3]}')


def missing_lq(where: str, tmpl: str, gt_file: str, expected: str, gt_files: Sequence[str], lq_files: set[str],
               gt_root: str, lq_root: str) -> str:
    """The refusal of a GT file whose LQ file is not there: both folders, the file, the template and a fitting one."""
    near = difflib.get_close_matches(expected, sorted(lq_files), n=1, cutoff=0.0)
    example = f'it holds e.g. {near[0]!r}' if near else 'it holds no file'
    fit = fitting_template(gt_files, lq_files, gt_file)
    hint = f"; filename_tmpl: '{fit}' pairs every file" if fit else ''
    return (f"{where}: GT file {gt_file!r} in dataroot_gt {gt_root} has no LQ file {expected!r} in dataroot_lq "
            f'{lq_root} ({example}): filename_tmpl {tmpl!r} names the LQ file after the GT stem{hint}')
