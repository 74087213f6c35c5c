"""HR images -> overlapping sub-images (GT) and their bicubic LR versions (LQ), optionally LMDBs.

This follows BasicSR's ``scripts/data_preparation/extract_subimages.py`` so keys and crops are
the ones BasicSR users know: key ``<stem>_s<index:03d>`` counting from 1, rows outer, columns
inner; positions ``0, step, 2*step, ...`` plus one last crop flush with the border when more than
``thresh`` pixels would be left over. Unlike BasicSR (which needs the LR images made beforehand),
the LR images are made here, the way DIV2K's are: the whole HR image is mod-cropped (to a multiple
of every scale, so one GT set serves all scales), downscaled with MATLAB-style bicubic, and the LR
sub-images are cut at the HR positions divided by the scale.

Output layout under ``out``: ``HR_sub.lmdb`` and ``LR_bicubic_X{s}_sub.lmdb`` (BasicSR LMDBs,
same keys) and/or the PNG folders ``HR_sub/`` and ``LR_bicubic_X{s}_sub/``.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.pool
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from srprune_basicsr.bicubic import imresize_uint8
from srprune_basicsr.formats.atomic import atomic_output_dir
from srprune_basicsr.formats.keys import sub_image_key
from srprune_basicsr.formats.lmdb import LmdbWriter, check_unique, ensure_verified, folder_images, map_size_for
from srprune_basicsr.worker_env import DATA_WORKER_ENV, data_worker

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
        if any(not isinstance(s, int) or s < 1 for s in self.scales):
            raise ValueError(f'--scales must be positive integers (2 3 4), got {list(self.scales)}')
        if not 0 <= self.compress_level <= 9:
            raise ValueError(f'--compress-level must be a PNG level from 0 to 9, got {self.compress_level}')
        for s in self.scales:
            if self.crop % s or self.step % s:
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


def _encode_png(img: np.ndarray, compress_level: int, what: str) -> bytes:
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    if not ok:
        raise OSError(f'{what}: PNG encoding failed')
    return buf.tobytes()


def _write_png(path: Path, img: np.ndarray, compress_level: int) -> None:
    path.write_bytes(_encode_png(img, compress_level, str(path)))


SubImages = list[tuple[str, dict[str, bytes]]]


def cut_image(path: Path, cfg: PrepareConfig, compress_level: int, folder_root: Path | None,
              return_bytes: bool) -> tuple[str, int, SubImages]:
    """Cut one HR image into GT and LR sub-images, encoded as PNG.

    The LR images are made once from the whole mod-cropped HR image (as DIV2K's are) and cut at
    the HR positions divided by the scale. Sub-images are written under ``folder_root`` when given
    and returned as bytes when ``return_bytes``. Returns (stem, count, [(key, {output: png})]).
    """
    hr = mod_crop(read_hr(path), cfg.modulus)
    rows = crop_positions(hr.shape[0], cfg.crop, cfg.step, cfg.thresh)
    cols = crop_positions(hr.shape[1], cfg.crop, cfg.step, cfg.thresh)
    sources = {GT_FOLDER: (hr, 1)} if rows and cols else {}
    if sources:
        sources.update({lq_folder(s): (imresize_uint8(hr, 1 / s), s) for s in cfg.scales})
    subs: SubImages = []
    index = 0
    for y in rows:
        for x in cols:
            index += 1
            key = sub_image_key(path.stem, index)
            encoded = {}
            for name, (img, s) in sources.items():
                c = cfg.crop // s
                png = _encode_png(img[y // s:y // s + c, x // s:x // s + c], compress_level, f'{path}:{key}')
                if folder_root is not None:
                    (folder_root / name / f'{key}.png').write_bytes(png)
                encoded[name] = png
            if return_bytes:
                subs.append((key, encoded))
    return path.stem, index, subs


def output_names(cfg: PrepareConfig) -> list[str]:
    """GT first, then the LR outputs by scale."""
    return [GT_FOLDER] + [lq_folder(s) for s in cfg.scales]


def prepare(hr_dir: str | os.PathLike, out: str | os.PathLike, cfg: PrepareConfig = PrepareConfig(),
            lmdb: bool = False, folders: bool | None = None, workers: int | None = None,
            compress_level: int | None = None, overwrite: bool = False, progress: bool = True) -> PrepareResult:
    """Make sub-image LMDBs and/or PNG folders from a folder of HR images (see the module docstring).

    Workers cut and encode; with ``lmdb`` the main process streams their bytes straight into
    the LMDBs, no intermediate files. ``folders`` defaults to ``not lmdb``. ``compress_level``
    defaults to BasicSR's: 1 for LMDB values, 3 for sub-image files. The output appears under
    ``out`` only when complete and verified; the HR folder is only read.
    """
    if data_worker():
        raise RuntimeError('prepare() was called inside one of its own worker processes: spawned workers '
                           're-run the calling script, so call prepare() under an '
                           "`if __name__ == '__main__':` guard")
    hr_dir, out = Path(hr_dir), Path(out)
    files = folder_images(hr_dir, lmdb_keys=lmdb)
    if not files:
        raise ValueError(f'{hr_dir}: no images found')
    check_unique([p.stem for p in files], f'{hr_dir} (file stems)')
    folders = not lmdb if folders is None else folders
    if not (lmdb or folders):
        raise ValueError('nothing to write: ask for LMDBs, folders or both')
    level = compress_level if compress_level is not None else (1 if lmdb else 3)
    if not 0 <= level <= 9:
        raise ValueError(f'--compress-level must be a PNG level from 0 to 9, got {level}')
    names = output_names(cfg)
    result = PrepareResult(out=out, images=len(files))
    workers = min(workers or os.cpu_count() or 1, len(files))
    with atomic_output_dir(out, overwrite, inputs=[hr_dir], kind='prepare') as tmp, ExitStack() as stack:
        if folders:
            for name in names:
                (tmp / name).mkdir()
        writers = {}
        if lmdb:
            estimate = _estimated_bytes(files, cfg)
            writers = {name: stack.enter_context(LmdbWriter(tmp / f'{name}.lmdb', map_size_for(
                estimate // (s * s), len(files) * 64), level)) for name, s in zip(names, (1, *cfg.scales),
                                                                                    strict=True)}
        job = partial(cut_image, cfg=cfg, compress_level=level, folder_root=tmp if folders else None,
                      return_bytes=lmdb)
        with data_workers(workers) as pool, \
                tqdm(total=len(files), desc='prepare', unit='img', disable=not progress) as bar:
            for stem, count, subs in pool.imap(job, files):
                result.sub_images += count
                if count == 0:
                    result.skipped_small.append(stem)
                for key, encoded in subs:
                    for name, png in encoded.items():
                        writers[name].put(key, png, _sub_shape(name, cfg))
                bar.update()
        if result.sub_images == 0:
            raise ValueError(f'{hr_dir}: no image is at least {cfg.crop}x{cfg.crop} after mod-crop; lower --crop')
        for writer in writers.values():
            writer.close()
            ensure_verified(writer.path)
    for name in names:
        if folders:
            result.folders[name] = out / name
        if lmdb:
            result.lmdbs[name] = out / f'{name}.lmdb'
    return result


@contextmanager
def data_workers(workers: int) -> Iterator[multiprocessing.pool.Pool]:
    """A pool of spawned workers that start without the plugin (no torch, no basicsr: 0.3 s, not 7 s each).

    Spawn, not fork: a child forked from a parent whose OpenCV/OpenMP thread pools are running can
    deadlock (seen: the demo hung after cv2.cvtColor on large photos in the parent). Spawned
    children inherit the environment at start, so the marker is set only while the pool starts.
    """
    before = os.environ.get(DATA_WORKER_ENV)
    os.environ[DATA_WORKER_ENV] = '1'
    try:
        pool = multiprocessing.get_context('spawn').Pool(workers, initializer=_worker_init)
    finally:
        if before is None:
            del os.environ[DATA_WORKER_ENV]
        else:
            os.environ[DATA_WORKER_ENV] = before
    with pool:
        yield pool


def _worker_init() -> None:
    """One OpenCV thread per worker: the pool already uses every core.

    The bicubic resize pins its own BLAS products to one thread (``bicubic.imresize_np``); N
    workers x N threads had made prepare 2x slower on 2 cores than one thread each.
    """
    cv2.setNumThreads(1)


def _sub_shape(name: str, cfg: PrepareConfig) -> tuple[int, int, int]:
    size = cfg.crop if name == GT_FOLDER else cfg.crop // int(name.split('_X')[1].split('_')[0])
    return (size, size, 3)


def _estimated_bytes(files: list[Path], cfg: PrepareConfig) -> int:
    """GT LMDB size estimate: the raw bytes of every sub-image (PNG rarely exceeds raw)."""
    total = 0
    for path in files:
        w, h = _image_size(path)
        m = cfg.modulus
        n = len(crop_positions(h - h % m, cfg.crop, cfg.step, cfg.thresh)) * len(
            crop_positions(w - w % m, cfg.crop, cfg.step, cfg.thresh))
        total += n * cfg.crop * cfg.crop * 3
    return total


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except Exception as err:  # noqa: BLE001  (PIL raises many types for bad files)
        raise ValueError(f'{path}: cannot be read as an image ({err})') from None


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
    with atomic_output_dir(out, overwrite, inputs=[hr_dir], kind='benchmark') as tmp:
        for name in names:
            (tmp / name).mkdir()
        for path in files:
            hr = read_hr(path)
            if min(hr.shape[:2]) < modulus:
                raise ValueError(f'{path}: {hr.shape[0]}x{hr.shape[1]} px is smaller than the {modulus} px a benchmark '
                                 f'image is cropped to a multiple of; leave it out of {hr_dir}')
            hr = mod_crop(hr, modulus)
            _write_png(tmp / gt_name / f'{path.stem}.png', hr, 3)
            for s in scales:
                _write_png(tmp / benchmark_folders(s, modulus)[1] / f'{path.stem}.png', imresize_uint8(hr, 1 / s), 3)
    return {name: out / name for name in names}
