"""LMDBs in BasicSR's exact layout: ``data.mdb``, ``lock.mdb`` and ``meta_info.txt``.

Each ``meta_info.txt`` line is ``<key>.png (h,w,c) <compress_level>``; BasicSR takes the text
before the first dot as the key, so keys must not contain dots. Values are the encoded image
bytes. We store the bytes of the source files as they are (no decode, no re-encode): BasicSR
decodes whatever ``cv2.imdecode`` reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import lmdb
import numpy as np
from tqdm import tqdm

from srprune_basicsr.data.atomic import atomic_output_dir

META_INFO = 'meta_info.txt'
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


@dataclass(frozen=True)
class LmdbRecord:
    """One image of an LMDB: its key, encoded bytes and decoded shape (h, w, c)."""

    key: str
    data: bytes
    shape: tuple[int, int, int]


def meta_info_line(key: str, shape: Sequence[int], compress_level: int) -> str:
    h, w, c = shape
    return f'{key}.png ({h},{w},{c}) {compress_level}\n'


def map_size_for(total_bytes: int, count: int) -> int:
    """LMDB map size for ``total_bytes`` of values: payload, per-entry overhead and headroom."""
    page = 4096
    return int(total_bytes * 1.2 + count * 2 * page + 64 * 1024 * 1024)


def write_lmdb(out_dir: Path, records: Iterable[LmdbRecord], total_bytes: int, count: int,
               compress_level: int = 1, commit_every: int = 5000) -> int:
    """Write records into a new LMDB directory ``out_dir`` and its meta_info.txt; return the count."""
    env = lmdb.open(str(out_dir), map_size=map_size_for(total_bytes, count), subdir=True, lock=True)
    written = 0
    try:
        with open(out_dir / META_INFO, 'w') as meta:
            txn = env.begin(write=True)
            for record in records:
                if '.' in record.key:
                    raise ValueError(f'LMDB key {record.key!r} contains a dot; BasicSR would cut it there')
                txn.put(record.key.encode('ascii'), record.data)
                meta.write(meta_info_line(record.key, record.shape, compress_level))
                written += 1
                if written % commit_every == 0:
                    txn.commit()
                    txn = env.begin(write=True)
            txn.commit()
        env.sync(True)
    finally:
        env.close()
    return written


def image_shape(data: bytes, source: str) -> tuple[int, int, int]:
    """Decoded (h, w, c) of encoded image bytes, as BasicSR will see them."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f'{source}: not a readable image')
    return (img.shape[0], img.shape[1], 1 if img.ndim == 2 else img.shape[2])


def folder_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted; any other file is an error naming it."""
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder}: no such folder')
    files = sorted(p for p in folder.iterdir() if p.is_file())
    others = [p.name for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
    if others:
        raise ValueError(f'{folder}: {len(others)} non-image file(s), e.g. {others[:5]}')
    return files


def build_lmdb_from_folder(folder: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False,
                           compress_level: int = 1, shapes: dict[str, tuple[int, int, int]] | None = None) -> int:
    """Folder of images -> BasicSR LMDB, keyed by file stem, storing the file bytes unchanged.

    ``shapes`` (key -> shape) skips decoding when the caller already knows them.
    """
    folder, out = Path(folder), Path(out)
    files = folder_images(folder)
    keys = [p.stem for p in files]
    if len(set(keys)) != len(keys):
        raise ValueError(f'{folder}: duplicate keys (files with the same stem)')
    total = sum(p.stat().st_size for p in files)

    def records() -> Iterable[LmdbRecord]:
        for path in tqdm(files, desc=f'lmdb {out.name}', unit='img', leave=False):
            data = path.read_bytes()
            shape = shapes[path.stem] if shapes and path.stem in shapes else image_shape(data, str(path))
            yield LmdbRecord(path.stem, data, shape)

    with atomic_output_dir(out, overwrite) as tmp:
        return write_lmdb(tmp, records(), total, len(files), compress_level)


def read_meta_info(lmdb_dir: str | os.PathLike) -> list[tuple[str, tuple[int, int, int]]]:
    """(key, shape) per line of an LMDB's meta_info.txt, in file order."""
    path = Path(lmdb_dir) / META_INFO
    entries = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) < 2:
                raise ValueError(f'{path}:{line_no}: malformed meta_info line {line.rstrip()!r}')
            shape = tuple(int(v) for v in parts[1].strip('()').split(','))
            entries.append((parts[0].split('.')[0], shape))
    return entries
