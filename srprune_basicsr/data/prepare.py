"""HR images -> overlapping sub-images (GT) and their bicubic LR versions (LQ), optionally LMDBs.

This follows BasicSR's ``scripts/data_preparation/extract_subimages.py`` so keys and crops are
the ones BasicSR users know: key ``<stem>_s<index:03d>`` counting from 1, rows outer, columns
inner; positions ``0, step, 2*step, ...`` plus one last crop flush with the border when more than
``thresh`` pixels would be left over. Unlike BasicSR (which needs the LR images made beforehand),
the LR images are made here, the way DIV2K's are: the whole HR image is mod-cropped (to a multiple
of every scale, so one GT set serves all scales), downscaled with MATLAB-style bicubic, and the LR
sub-images are cut at the HR positions divided by the scale.

Output layout under ``out``:  ``HR_sub/``, ``LR_bicubic_X{s}_sub/`` (PNG folders, same keys) and
with ``lmdb=True`` also ``HR_sub.lmdb`` and ``LR_bicubic_X{s}_sub.lmdb``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from srprune_basicsr.bicubic import imresize_uint8
from srprune_basicsr.data.atomic import atomic_output_dir
from srprune_basicsr.data.lmdb_tools import build_lmdb_from_folder, folder_images

GT_FOLDER = 'HR_sub'


def lq_folder(scale: int) -> str:
    """Folder name of the LR sub-images for ``scale``."""
    return f'LR_bicubic_X{scale}_sub'


@dataclass(frozen=True)
class PrepareConfig:
    """How sub-images are cut: BasicSR's DIV2K defaults (480 / 240 / 48, PNG level 3)."""

    crop: int = 480
    step: int = 240
    thresh: int = 48
    scales: tuple[int, ...] = (2, 3, 4)
    compress_level: int = 3

    def __post_init__(self) -> None:
        for s in self.scales:
            if s < 1 or self.crop % s or self.step % s:
                raise ValueError(f'crop ({self.crop}) and step ({self.step}) must be multiples of every scale '
                                 f'{list(self.scales)}; scale {s} does not divide them')
        if self.step <= 0 or self.crop <= 0 or self.thresh < 0:
            raise ValueError('crop and step must be positive and thresh non-negative')

    @property
    def modulus(self) -> int:
        """HR images are cropped to a multiple of this: the lcm of the scales."""
        return math.lcm(*self.scales) if self.scales else 1


@dataclass
class PrepareResult:
    """What ``prepare`` produced: counts and the folders/LMDBs written."""

    out: Path
    images: int = 0
    sub_images: int = 0
    skipped_small: list[str] = field(default_factory=list)
    folders: dict[str, Path] = field(default_factory=dict)
    lmdbs: dict[str, Path] = field(default_factory=dict)


def crop_positions(length: int, crop: int, step: int, thresh: int) -> list[int]:
    """Top/left offsets of the crops along one axis (BasicSR's rule); empty if length < crop."""
    if length < crop:
        return []
    positions = list(range(0, length - crop + 1, step))
    if length - (positions[-1] + crop) > thresh:
        positions.append(length - crop)
    return positions


def mod_crop(img: np.ndarray, modulus: int) -> np.ndarray:
    """Crop the bottom/right so height and width are multiples of ``modulus``."""
    h, w = img.shape[:2]
    return img[:h - h % modulus, :w - w % modulus]


def read_hr(path: Path) -> np.ndarray:
    """Read an HR image as 8-bit BGR (gray is expanded, alpha dropped) or fail naming the file."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'{path}: cannot be decoded as an image')
    return img


def _write_png(path: Path, img: np.ndarray, compress_level: int) -> None:
    if not cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level]):
        raise OSError(f'{path}: could not be written')


def process_image(path: Path, out: Path, cfg: PrepareConfig) -> tuple[str, int]:
    """Cut one HR image into GT and LR sub-images under ``out``; return (stem, sub-image count)."""
    hr = mod_crop(read_hr(path), cfg.modulus)
    rows = crop_positions(hr.shape[0], cfg.crop, cfg.step, cfg.thresh)
    cols = crop_positions(hr.shape[1], cfg.crop, cfg.step, cfg.thresh)
    lrs = {s: imresize_uint8(hr, 1 / s) for s in cfg.scales}
    index = 0
    for y in rows:
        for x in cols:
            index += 1
            key = f'{path.stem}_s{index:03d}'
            _write_png(out / GT_FOLDER / f'{key}.png', hr[y:y + cfg.crop, x:x + cfg.crop], cfg.compress_level)
            for s, lr in lrs.items():
                c = cfg.crop // s
                _write_png(out / lq_folder(s) / f'{key}.png', lr[y // s:y // s + c, x // s:x // s + c],
                           cfg.compress_level)
    return path.stem, index


def prepare(hr_dir: str | os.PathLike, out: str | os.PathLike, cfg: PrepareConfig = PrepareConfig(),
            lmdb: bool = False, workers: int | None = None, overwrite: bool = False,
            progress: bool = True) -> PrepareResult:
    """Make sub-image folders (and LMDBs) from a folder of HR images; see the module docstring.

    The output appears under ``out`` only when complete; the HR folder is only read.
    """
    hr_dir, out = Path(hr_dir), Path(out)
    files = folder_images(hr_dir)
    if not files:
        raise ValueError(f'{hr_dir}: no images found')
    stems = [p.stem for p in files]
    if len(set(stems)) != len(stems):
        raise ValueError(f'{hr_dir}: two files share a stem, so their keys would collide')
    result = PrepareResult(out=out, images=len(files))
    workers = workers or os.cpu_count() or 1
    with atomic_output_dir(out, overwrite) as tmp:
        for name in [GT_FOLDER] + [lq_folder(s) for s in cfg.scales]:
            (tmp / name).mkdir()
        job = partial(process_image, out=tmp, cfg=cfg)
        bar = tqdm(total=len(files), desc='prepare', unit='img', disable=not progress)
        # spawn, not fork: a forked child of a process whose torch thread pool is running can deadlock
        with multiprocessing.get_context('spawn').Pool(min(workers, len(files))) as pool:
            for stem, count in pool.imap(job, files):
                result.sub_images += count
                if count == 0:
                    result.skipped_small.append(stem)
                bar.update()
        bar.close()
        if result.sub_images == 0:
            raise ValueError(f'{hr_dir}: no image is at least {cfg.crop}x{cfg.crop} after mod-crop; '
                             'lower --crop')
        names = [GT_FOLDER] + [lq_folder(s) for s in cfg.scales]
        if lmdb:
            for name in names:
                build_lmdb_from_folder(tmp / name, tmp / f'{name}.lmdb', compress_level=cfg.compress_level,
                                       shapes=_square_shapes(tmp / name, _crop_for(name, cfg)))
    for name in names:
        result.folders[name] = out / name
        if lmdb:
            result.lmdbs[name] = out / f'{name}.lmdb'
    return result


def _crop_for(name: str, cfg: PrepareConfig) -> int:
    if name == GT_FOLDER:
        return cfg.crop
    return cfg.crop // int(name.split('_X')[1].split('_')[0])


def _square_shapes(folder: Path, size: int) -> dict[str, tuple[int, int, int]]:
    """Every sub-image of a prepared folder is size x size x 3: no need to decode for the shape."""
    return {p.stem: (size, size, 3) for p in folder.iterdir()}


def benchmark_folders(scale: int, modulus: int = 12) -> tuple[str, str]:
    """(GT, LQ) folder names of a prepared benchmark, BasicSR's ``GTmod12`` / ``LRbicx{s}`` layout."""
    return f'GTmod{modulus}', f'LRbicx{scale}'


def prepare_benchmark(hr_dir: str | os.PathLike, out: str | os.PathLike, scales: Sequence[int] = (2, 3, 4),
                      modulus: int = 12, overwrite: bool = False) -> dict[str, Path]:
    """Whole HR images mod-cropped to ``modulus`` and their bicubic LR images, for validation/test.

    This is the layout of BasicSR's own Set5/Set14 (``GTmod12`` + ``LRbicx2``...), so BasicSR's
    option files read it unchanged. Returns folder name -> final path.
    """
    hr_dir, out = Path(hr_dir), Path(out)
    for s in scales:
        if modulus % s:
            raise ValueError(f'modulus {modulus} is not a multiple of scale {s}')
    files = folder_images(hr_dir)
    gt_name = benchmark_folders(scales[0], modulus)[0]
    names = [gt_name] + [benchmark_folders(s, modulus)[1] for s in scales]
    with atomic_output_dir(out, overwrite) as tmp:
        for name in names:
            (tmp / name).mkdir()
        for path in files:
            hr = mod_crop(read_hr(path), modulus)
            _write_png(tmp / gt_name / f'{path.stem}.png', hr, 3)
            for s in scales:
                _write_png(tmp / benchmark_folders(s, modulus)[1] / f'{path.stem}.png', imresize_uint8(hr, 1 / s), 3)
    return {name: out / name for name in names}
