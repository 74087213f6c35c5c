"""LMDBs in BasicSR's exact layout: ``data.mdb``, ``lock.mdb`` and ``meta_info.txt``.

Each ``meta_info.txt`` line is ``<key>.png (h,w,c) <compress_level>``; BasicSR takes the text
before the first dot as the key, so keys must not contain dots. Values are encoded image bytes,
which BasicSR decodes with ``cv2.imdecode``. We never re-encode what a source already holds: a
folder's files and a source LMDB's values are stored byte for byte.

Sources are opened read-only without a lock file, so they are never changed; outputs are built
under a temporary name, verified, synced and only then renamed into place (``atomic``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import lmdb
import numpy as np
from tqdm import tqdm

from srprune_basicsr.data.atomic import atomic_output_dir
from srprune_basicsr.version import __version__

META_INFO = 'meta_info.txt'
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


class LmdbError(ValueError):
    """A source or keep list that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class MetaEntry:
    """One line of meta_info.txt: the key, the decoded shape (h, w, c) and the PNG level."""

    key: str
    shape: tuple[int, int, int]
    compress_level: int = 1

    def line(self) -> str:
        h, w, c = self.shape
        return f'{self.key}.png ({h},{w},{c}) {self.compress_level}\n'


def map_size_for(total_bytes: int, count: int) -> int:
    """LMDB map size for ``total_bytes`` of values: payload, B-tree pages per entry, headroom."""
    page = 4096
    return int(total_bytes * 1.1 + count * page // 8 + 16 * 1024 * 1024)


class LmdbWriter:
    """Write (key, bytes, shape) into a new LMDB and its meta_info.txt, growing the map if needed.

    Puts are batched into transactions; a batch that does not fit is replayed after doubling the
    map size (``MapFullError`` leaves the database as of the last commit), so a size estimate that
    is too small costs time, never data.
    """

    def __init__(self, path: Path, map_size: int, compress_level: int = 1, batch: int = 2000) -> None:
        self.path = Path(path)
        self.compress_level = compress_level
        self.batch = batch
        # commits are not synced one by one; close() syncs once, before the output is renamed
        self.env = lmdb.open(str(self.path), map_size=max(map_size, 1 << 20), subdir=True, readahead=False,
                             meminit=False, sync=False)
        self.meta = open(self.path / META_INFO, 'w')
        self.pending: list[tuple[bytes, bytes | memoryview]] = []
        self.keys: set[str] = set()
        self.count = 0
        self.closed = False
        self.last_key: bytes | None = None

    def put(self, key: str, data: bytes | memoryview, shape: Sequence[int], compress_level: int | None = None) -> None:
        if '.' in key or not key:
            raise LmdbError(f'{self.path}: key {key!r} is empty or contains a dot (BasicSR cuts keys at the dot)')
        if key in self.keys:
            raise LmdbError(f'{self.path}: duplicate key {key!r}')
        self.keys.add(key)
        self.pending.append((key.encode('ascii'), data))
        level = self.compress_level if compress_level is None else compress_level
        self.meta.write(MetaEntry(key, tuple(shape), level).line())
        self.count += 1
        if len(self.pending) >= self.batch:
            self.flush()

    def put_many(self, entries: Sequence[MetaEntry], values: Sequence[bytes | memoryview]) -> None:
        """Queue many values at once (the caller guarantees unique, dot-free keys, e.g. from a
        verified source); they are committed together by the next flush or close."""
        keys = [e.key for e in entries]
        if not self.keys.isdisjoint(keys) or len(set(keys)) != len(keys):
            raise LmdbError(f'{self.path}: duplicate keys in a bulk write')
        self.keys.update(keys)
        self.pending.extend(zip((k.encode('ascii') for k in keys), values, strict=True))
        self.meta.write(''.join(e.line() for e in entries))
        self.count += len(entries)

    def flush(self) -> None:
        """Commit the pending batch in key order, appending when it follows all stored keys.

        LMDB keeps keys sorted; a sorted batch beyond the last stored key can be appended without
        B-tree searches or page splits (3x faster). meta_info.txt keeps the caller's order.
        """
        if not self.pending:
            return
        self.pending.sort(key=lambda kv: kv[0])
        append = self.last_key is None or self.pending[0][0] > self.last_key
        while True:
            try:
                with self.env.begin(write=True) as txn, txn.cursor() as cursor:
                    cursor.putmulti(self.pending, append=append)
                break
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()['map_size'] * 2)
        if self.last_key is None or self.pending[-1][0] > self.last_key:
            self.last_key = self.pending[-1][0]
        self.pending.clear()

    def close(self) -> None:
        """Commit what is pending, sync to disk and close; closing twice is harmless."""
        if self.closed:
            return
        self.flush()
        self.meta.close()
        self.env.sync(True)
        self.env.close()
        self.closed = True

    def abort(self) -> None:
        """Close without committing the pending batch (the output is about to be removed)."""
        if not self.closed:
            self.meta.close()
            self.env.close()
            self.closed = True

    def __enter__(self) -> LmdbWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_meta_info(lmdb_dir: str | os.PathLike) -> list[MetaEntry]:
    """The entries of an LMDB's meta_info.txt in file order; a malformed line is an error naming it."""
    path = Path(lmdb_dir) / META_INFO
    if not path.is_file():
        raise LmdbError(f'{lmdb_dir}: no {META_INFO}, so not a BasicSR LMDB')
    entries = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                shape = tuple(map(int, parts[1][1:-1].split(',')))
                level = int(parts[2]) if len(parts) > 2 else 1
                if len(shape) != 3 or parts[1][0] != '(':
                    raise ValueError
            except (IndexError, ValueError):
                raise LmdbError(f'{path}:{line_no}: malformed line {line.rstrip()!r}; expected '
                                "'<key>.png (h,w,c) <level>'") from None
            entries.append(MetaEntry(parts[0].split('.')[0], shape, level))
    return entries


def open_source(path: str | os.PathLike) -> lmdb.Environment:
    """Open an existing BasicSR LMDB strictly read-only (no lock file written, nothing changed)."""
    path = Path(path)
    if not path.exists():
        raise LmdbError(f'{path}: no such LMDB')
    if not (path / 'data.mdb').is_file():
        raise LmdbError(f'{path}: not an LMDB (no data.mdb)')
    return lmdb.open(str(path), readonly=True, lock=False, subdir=True)


def check_unique(keys: Sequence[str], source: str) -> None:
    dupes = [k for k, n in Counter(keys).items() if n > 1]
    if dupes:
        raise LmdbError(f'{source}: {len(dupes)} duplicate key(s), e.g. {dupes[:5]}')


# --------------------------------------------------------------------------------------- verify
@dataclass
class VerifyReport:
    """What ``verify_lmdb`` found; ``ok`` when there are no problems."""

    path: Path
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_lmdb(path: str | os.PathLike, decode: bool = False, progress: bool = False,
                max_listed: int = 20) -> VerifyReport:
    """Check that meta_info.txt and the database agree, and optionally that every image decodes."""
    path = Path(path)
    report = VerifyReport(path)
    try:
        entries = read_meta_info(path)
        env = open_source(path)
    except LmdbError as err:
        report.problems.append(str(err))
        return report
    report.entries = len(entries)
    keys = [e.key for e in entries]
    try:
        check_unique(keys, str(path / META_INFO))
    except LmdbError as err:
        report.problems.append(str(err))
    with env, env.begin(buffers=True) as txn:
        db_keys = {bytes(k).decode('ascii', 'replace') for k in txn.cursor().iternext(keys=True, values=False)}
        missing = [k for k in keys if k not in db_keys]
        extra = sorted(db_keys - set(keys))
        if missing:
            report.problems.append(f'{path}: {len(missing)} key(s) in {META_INFO} are not in the database, '
                                   f'e.g. {missing[:5]}')
        if extra:
            report.problems.append(f'{path}: {len(extra)} key(s) in the database are not in {META_INFO}, '
                                   f'e.g. {extra[:5]}')
        if decode:
            for entry in tqdm(entries, desc=f'decode {path.name}', unit='img', disable=not progress):
                if entry.key not in db_keys:
                    continue
                img = cv2.imdecode(np.frombuffer(txn.get(entry.key.encode('ascii')), np.uint8), cv2.IMREAD_UNCHANGED)
                if img is None:
                    report.problems.append(f'{path}: key {entry.key!r} does not decode as an image')
                    continue
                shape = (img.shape[0], img.shape[1], 1 if img.ndim == 2 else img.shape[2])
                if shape != entry.shape:
                    report.problems.append(f'{path}: key {entry.key!r} decodes to {shape}, '
                                           f'{META_INFO} says {entry.shape}')
    if len(report.problems) > max_listed:
        report.problems[max_listed:] = [f'... and {len(report.problems) - max_listed} more']
    return report


def ensure_verified(path: Path) -> None:
    """Raise if a freshly written LMDB fails verification (before it is renamed into place)."""
    report = verify_lmdb(path)
    if not report.ok:
        raise LmdbError('output failed verification: ' + '; '.join(report.problems))


# ---------------------------------------------------------------------------------------- build
def image_shape(data: bytes, source: str) -> tuple[int, int, int]:
    """Decoded (h, w, c) of encoded image bytes, as BasicSR will see them."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise LmdbError(f'{source}: not a readable image')
    return (img.shape[0], img.shape[1], 1 if img.ndim == 2 else img.shape[2])


def folder_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted; any other file is an error naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder}: no such folder')
    files = sorted(p for p in folder.iterdir() if p.is_file())
    others = [p.name for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
    if others:
        raise LmdbError(f'{folder}: {len(others)} non-image file(s), e.g. {others[:5]}')
    return files


def build_lmdb_from_folder(folder: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False,
                           compress_level: int = 1, progress: bool = True) -> int:
    """Folder of images -> BasicSR LMDB keyed by file stem, storing each file's bytes unchanged.

    The map size is computed from the file sizes; images are decoded only to record their shape.
    """
    folder, out = Path(folder), Path(out)
    files = folder_images(folder)
    if not files:
        raise LmdbError(f'{folder}: no images')
    check_unique([p.stem for p in files], str(folder))
    total = sum(p.stat().st_size for p in files)
    with atomic_output_dir(out, overwrite) as tmp:
        with LmdbWriter(tmp, map_size_for(total, len(files)), compress_level) as writer:
            for path in tqdm(files, desc=f'lmdb {out.name}', unit='img', disable=not progress):
                data = path.read_bytes()
                writer.put(path.stem, data, image_shape(data, str(path)))
        ensure_verified(tmp)
        return writer.count


# -------------------------------------------------------------------------------------- rebuild
def read_keep_list(path: str | os.PathLike) -> list[str]:
    """Keys of a keep.txt (one per line; blank lines and '#' comments ignored; '.png' tolerated)."""
    path = Path(path)
    if not path.is_file():
        raise LmdbError(f'{path}: no such keep list')
    keys = []
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            keys.append(line[:-4] if line.endswith('.png') else line)
    if not keys:
        raise LmdbError(f'{path}: the keep list is empty')
    check_unique(keys, str(path))
    return keys


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class RebuildResult:
    """Where the rebuilt LMDBs are and how many samples were kept and dropped."""

    out: Path
    lmdbs: list[Path]
    kept: int
    dropped: int


def _kept_entries(sources: Sequence[Path], keep: Sequence[str], keep_path: Path) -> tuple[list[list[MetaEntry]], int]:
    """Per source, its entries of the kept keys in the source's order, and the source's size.

    All sources must hold the same keys, and every kept key must be among them.
    """
    metas = [read_meta_info(src) for src in sources]
    for src, meta in zip(sources, metas, strict=True):
        check_unique([e.key for e in meta], str(src / META_INFO))
    reference = {e.key for e in metas[0]}
    for src, meta in zip(sources[1:], metas[1:], strict=True):
        other = {e.key for e in meta}
        if other != reference:
            only_first, only_other = sorted(reference - other), sorted(other - reference)
            raise LmdbError(f'{sources[0]} and {src} hold different keys: {len(only_first)} only in the first '
                            f'(e.g. {only_first[:3]}), {len(only_other)} only in the second (e.g. {only_other[:3]})')
    missing = [k for k in keep if k not in reference]
    if missing:
        raise LmdbError(f'{keep_path}: {len(missing)} of {len(keep)} key(s) are not in {sources[0]}, '
                        f'e.g. {missing[:5]}')
    kept = set(keep)
    return [[e for e in meta if e.key in kept] for meta in metas], len(metas[0])


def _copy_values(src: Path, entries: Sequence[MetaEntry], share: float, dst: Path, progress: bool) -> None:
    """Copy the stored bytes of ``entries`` from ``src`` into a new LMDB at ``dst``, in one commit.

    The map size is the source's data size scaled to the kept ``share``; the writer grows it if
    the kept samples happen to be larger than average.
    """
    source_bytes = (src / 'data.mdb').stat().st_size
    with open_source(src) as env, env.begin(buffers=True) as txn, \
            LmdbWriter(dst, map_size_for(int(source_bytes * share), len(entries)), batch=len(entries) + 1) as writer:
        values = []
        for entry in tqdm(entries, desc=f'copy {src.name}', unit='img', disable=not progress, leave=False):
            value = txn.get(entry.key.encode('ascii'))  # a view into the source: no copy until commit
            if value is None:
                raise LmdbError(f'{src}: key {entry.key!r} is in {META_INFO} but not in the database')
            values.append(value)
        writer.put_many(entries, values)
        writer.close()  # commit while the source views are still valid


def rebuild_lmdbs(sources: Sequence[str | os.PathLike], keep_path: str | os.PathLike, out: str | os.PathLike,
                  overwrite: bool = False, progress: bool = True, provenance: dict | None = None) -> RebuildResult:
    """Copy only the kept keys of each source LMDB into ``out/<source name>``, bytes unchanged.

    All sources (e.g. GT and LQ of each scale) must hold the same keys, so the outputs do too.
    ``out/keep.txt`` (the keys, in the source's order) and ``out/keep.json`` (provenance) are
    written beside the LMDBs. ``provenance`` adds fields to keep.json (e.g. the selection rule).
    """
    sources = [Path(s) for s in sources]
    keep_path, out = Path(keep_path), Path(out)
    if not sources:
        raise LmdbError('no --src LMDB given')
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise LmdbError(f'two sources share a folder name, so their outputs would collide: {names}')
    for src in sources:
        open_source(src).close()
    keep = read_keep_list(keep_path)
    per_source, total = _kept_entries(sources, keep, keep_path)
    with atomic_output_dir(out, overwrite) as tmp:
        for src, entries in zip(sources, per_source, strict=True):
            _copy_values(src, entries, len(entries) / total, tmp / src.name, progress)
            ensure_verified(tmp / src.name)
        kept_keys = [e.key for e in per_source[0]]
        (tmp / 'keep.txt').write_text(''.join(f'{k}\n' for k in kept_keys))
        record = {
            'sources': [str(s.resolve()) for s in sources], 'keep_file': str(keep_path.resolve()),
            'keep_sha256': sha256_of(keep_path), 'kept': len(kept_keys), 'dropped': total - len(kept_keys),
            'total': total, 'created': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
            'tool': f'srprune_basicsr {__version__}', **(provenance or {})}
        (tmp / 'keep.json').write_text(json.dumps(record, indent=2) + '\n')
    return RebuildResult(out, [out / n for n in names], len(kept_keys), total - len(kept_keys))


def iter_values(path: str | os.PathLike) -> Iterator[tuple[str, bytes]]:
    """(key, stored bytes) of an LMDB in meta_info order: for tests and comparisons."""
    entries = read_meta_info(path)
    with open_source(path) as env, env.begin() as txn:
        for entry in entries:
            yield entry.key, txn.get(entry.key.encode('ascii'))
