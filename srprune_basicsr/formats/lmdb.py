"""LMDBs in BasicSR's exact layout: ``data.mdb``, ``lock.mdb`` and ``meta_info.txt``.

Each ``meta_info.txt`` line is ``<key>.png (h,w,c) <compress_level>``; BasicSR takes the text
before the first dot as the key, so keys must not contain dots. Values are encoded image bytes,
which BasicSR decodes with ``cv2.imdecode``. We never re-encode what a source already holds: a
folder's files and a source LMDB's values are stored byte for byte.

Sources are opened read-only without a lock file, so they are never changed; outputs are built
under a temporary name, verified, synced and only then renamed into place (``atomic``).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import lmdb
import numpy as np
from tqdm import tqdm

from srprune_basicsr.formats.atomic import OutputWriteError, atomic_output_dir
from srprune_basicsr.formats.keys import duplicates, is_image, key_bytes, valid_key
from srprune_basicsr.formats.meta_info import META_INFO, LmdbError, MetaEntry, read_meta_info

MIN_PAGE = 4096  # LMDB's page size is at least the OS page


def map_size_for(total_bytes: int, count: int) -> int:
    """LMDB map size for ``total_bytes`` of values: payload, B-tree pages per entry, headroom."""
    page = 4096
    return int(total_bytes * 1.1 + count * page // 8 + 16 * 1024 * 1024)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
GLIBC_DEFAULT_THRESHOLD = 128 << 10  # both thresholds' defaults
_heap_depth = 0


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, 'mallopt') and hasattr(libc, 'malloc_trim') else None
    except OSError:
        return None


@contextmanager
def retained_heap(mmap_threshold: int = 32 << 20, trim_threshold: int = 64 << 20) -> Iterator[None]:
    """Let the next LMDB write transaction reuse the memory the last one freed.

    LMDB copies every value into pages it mallocs and frees at commit. glibc serves blocks of
    over 128 KiB (a 480 px PNG is 100-500 KiB) with a fresh mmap and unmaps them at free, so each
    transaction faulted all of its memory in again: 100,000 page faults for 400 MB of values,
    half of a rebuild's time. Inside this context such blocks come from the heap and freed memory
    stays there (6,000 faults). 32 MiB is the largest mmap threshold every 64-bit glibc accepts;
    the trim threshold must exceed one transaction. On leaving, glibc's default thresholds are
    restored and the heap is trimmed. Re-entrant; a no-op where the C library is not glibc.
    """
    global _heap_depth
    libc = _glibc()
    if libc is None:
        yield
        return
    if _heap_depth == 0:
        libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
        libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)
    _heap_depth += 1
    try:
        yield
    finally:
        _heap_depth -= 1
        if _heap_depth == 0:
            libc.mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)
            libc.mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)
            libc.malloc_trim(0)


@contextmanager
def lmdb_writes(path: Path) -> Iterator[None]:
    """An LMDB error while writing ``path`` becomes an ``OutputWriteError`` (a full disk reads as an I/O error).

    LMDB reports a failed page write as ``lmdb.Error('mdb_txn_commit: Input/output error')`` (or
    ``No space left on device``), which is neither an OSError nor names the output; the output that
    holds ``path`` then removes its partial files and says which output failed.
    """
    try:
        yield
    except lmdb.Error as err:
        hint = ' (is the disk full?)' if 'Input/output error' in str(err) else ''
        raise OutputWriteError(f'LMDB {path.name}: {err}{hint}') from err


class LmdbWriter:
    """Write (key, bytes, shape) into a new LMDB and its meta_info.txt, growing the map if needed.

    Puts are batched into transactions of at most ``batch`` values and ``batch_bytes`` bytes (so
    memory stays flat with 480 px sub-images too); a batch that does not fit is replayed after doubling the
    map size (``MapFullError`` leaves the database as of the last commit), so a size estimate that
    is too small costs time, never data.
    """

    def __init__(self, path: Path, map_size: int, compress_level: int = 1, batch: int = 2000,
                 batch_bytes: int = 16 << 20) -> None:
        self.path = Path(path)
        self.compress_level = compress_level
        self.batch = batch
        self.batch_bytes = batch_bytes
        self.pending_bytes = 0
        # commits are not synced one by one; close() syncs once, before the output is renamed
        with lmdb_writes(self.path):
            self.env = lmdb.open(str(self.path), map_size=max(map_size, 1 << 20), subdir=True, readahead=False,
                                 meminit=False, sync=False)
        self.meta = open(self.path / META_INFO, 'w', encoding='utf-8')
        self.pending: list[tuple[bytes, bytes | memoryview]] = []
        self.keys: set[str] = set()
        self.count = 0
        self.closed = False
        self.last_key: bytes | None = None

    def put(self, key: str, data: bytes | memoryview, shape: Sequence[int], compress_level: int | None = None) -> None:
        if not valid_key(key):
            raise LmdbError(f'{self.path}: key {key!r} is empty or holds a dot or white space (BasicSR cuts '
                            'keys at the first dot and meta_info.txt fields at spaces)')
        if key in self.keys:
            raise LmdbError(f'{self.path}: duplicate key {key!r}')
        self.keys.add(key)
        self.pending.append((key_bytes(key), data))
        self.pending_bytes += len(data)
        level = self.compress_level if compress_level is None else compress_level
        self.meta.write(MetaEntry(key, tuple(shape), level).line())
        self.count += 1
        if len(self.pending) >= self.batch or self.pending_bytes >= self.batch_bytes:
            self.flush()

    def put_many(self, entries: Sequence[MetaEntry], values: Sequence[bytes | memoryview],
                 meta: bool = True) -> None:
        """Queue many values at once (the caller guarantees unique, dot-free keys, e.g. from a
        verified source); they are committed together by the next flush or close. With ``meta``
        False their meta_info lines are the caller's to write (``write_meta``), in its own order."""
        keys = [e.key for e in entries]
        if not self.keys.isdisjoint(keys) or len(set(keys)) != len(keys):
            raise LmdbError(f'{self.path}: duplicate keys in a bulk write')
        self.keys.update(keys)
        self.pending.extend(zip((key_bytes(k) for k in keys), values, strict=True))
        self.pending_bytes += sum(len(v) for v in values)
        if meta:
            self.write_meta(entries)
        self.count += len(entries)

    def write_meta(self, entries: Sequence[MetaEntry]) -> None:
        """Append meta_info.txt lines (for values queued with ``put_many(..., meta=False)``)."""
        self.meta.write(''.join(e.line() for e in entries))

    def flush(self) -> None:
        """Commit the pending batch in key order, appending when it follows all stored keys.

        LMDB keeps keys sorted; a sorted batch beyond the last stored key can be appended without
        B-tree searches or page splits (3x faster). meta_info.txt keeps the caller's order.
        """
        if not self.pending:
            return
        self.pending.sort(key=lambda kv: kv[0])
        append = self.last_key is None or self.pending[0][0] > self.last_key
        with lmdb_writes(self.path):  # a map too small grows; any other LMDB error is a failed write
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
        self.pending_bytes = 0

    def close(self) -> None:
        """Commit what is pending, sync to disk and close; closing twice is harmless."""
        if self.closed:
            return
        self.flush()
        self.meta.close()
        with lmdb_writes(self.path):
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


def open_source(path: str | os.PathLike) -> lmdb.Environment:
    """Open an existing BasicSR LMDB strictly read-only (no lock file written, nothing changed).

    A truncated ``data.mdb`` is refused before any page past its end is touched: reading such a
    page through the memory map would kill the process with SIGBUS and no message.
    """
    path = Path(path)
    if not path.exists():
        raise LmdbError(f'{path}: no such LMDB')
    data = path / 'data.mdb'
    if not data.is_file():
        raise LmdbError(f'{path}: not an LMDB (no data.mdb)')
    size = data.stat().st_size
    if size < 2 * MIN_PAGE:
        raise LmdbError(f'{data}: {size} bytes, too short to hold the two LMDB meta pages: the file is truncated')
    try:
        env = lmdb.open(str(path), readonly=True, lock=False, subdir=True)
    except lmdb.Error as err:
        raise LmdbError(f'{data}: not a readable LMDB ({err})') from None
    pages, page_size = env.info()['last_pgno'] + 1, env.stat()['psize']  # both read from the meta pages
    if size < pages * page_size:
        env.close()
        raise LmdbError(f'{data}: {size} bytes, but the database spans {pages} pages of {page_size} bytes '
                        f'({pages * page_size} bytes): the file is truncated')
    return env


def listed_keys(dataroot: str | os.PathLike) -> list[str]:
    """The keys of meta_info.txt as BasicSR's ``paths_from_lmdb`` reads them: each line up to its first dot.

    Read as leniently as BasicSR does (no shape needed), so a presence check refuses no LMDB that
    BasicSR itself would train on.
    """
    with open(Path(dataroot) / META_INFO, encoding='utf-8') as f:
        return [line.split('.')[0] for line in f if line.strip()]


def check_keys_stored(env: lmdb.Environment, dataroot: Path) -> None:
    """Every key meta_info.txt lists is in data.mdb (one read-only transaction; values are not read).

    BasicSR's reader gets None for a listed key that was never stored and fails only when a batch
    reaches it, possibly after checkpoints, with ``TypeError: a bytes-like object is required``.
    """
    keys = listed_keys(dataroot)
    with env.begin(buffers=True) as txn:
        missing = [k for k in keys if txn.get(key_bytes(k)) is None]
    if missing:
        raise LmdbError(f'{dataroot / META_INFO} lists {len(missing)} key(s) that {dataroot / "data.mdb"} does not '
                        f'hold, e.g. {missing[:5]} (of {len(keys)}): the LMDB is damaged or was written '
                        f'incompletely; run `srprune lmdb verify {dataroot}` and rebuild it')


def check_intact(dataroot: str | os.PathLike, where: str = '') -> None:
    """A data root that is an LMDB must not be truncated (BasicSR's reader would die of SIGBUS on it)
    nor lack a key its meta_info.txt lists (BasicSR would fail mid-run on it). ``where`` (the option
    file and key that name the root) prefixes a refusal."""
    root = Path(dataroot)
    if not (root / 'data.mdb').is_file():
        return
    try:
        with open_source(root) as env:
            if (root / META_INFO).is_file():  # without it BasicSR refuses the LMDB itself
                check_keys_stored(env, root)
    except LmdbError as err:
        raise LmdbError(f'{where}: {err}' if where else str(err)) from None


def check_unique(keys: Sequence[str], source: str) -> None:
    dupes = duplicates(keys)
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
        db_keys = {bytes(k).decode('utf-8', 'replace') for k in txn.cursor().iternext(keys=True, values=False)}
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
                img = cv2.imdecode(np.frombuffer(txn.get(key_bytes(entry.key)), np.uint8), cv2.IMREAD_UNCHANGED)
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


PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_END = b'IEND\xaeB`\x82'  # the IEND chunk's type and CRC close every complete PNG
JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'


def stored_image_problem(value: bytes | memoryview, shape: tuple[int, int, int]) -> str | None:
    """Why a stored value cannot be the image meta_info.txt lists (None when its framing fits), without decoding.

    Reads only the first 24 and the last 8 bytes: a PNG's signature, its IHDR size and its closing
    IEND chunk (a value cut short has none), or a JPEG's start and end markers. A value damaged
    inside its pixel data passes; ``lmdb verify --decode`` decodes every image.
    """
    head, tail = bytes(value[:24]), bytes(value[-8:])
    if head.startswith(PNG_SIGNATURE):
        if len(head) < 24 or head[12:16] != b'IHDR':
            return 'a PNG without its header'
        width, height = int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')
        if (height, width) != tuple(shape[:2]):
            return f'a PNG of {height}x{width} px where {META_INFO} says {shape[0]}x{shape[1]}'
        return None if tail == PNG_END else 'a PNG cut short (no IEND chunk at its end)'
    if head.startswith(JPEG_START):
        return None if tail.endswith(JPEG_END) else 'a JPEG cut short (no end marker)'
    return f'not a PNG or JPEG image ({len(value)} bytes starting {head[:8]!r})'


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


def folder_images(folder: Path, lmdb_keys: bool = False) -> list[Path]:
    """Image files of a folder, sorted; any other file, an empty one or a broken symlink is an error naming it.

    With ``lmdb_keys`` the file stems must also be usable as LMDB keys (checked before any work).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder}: no such folder')
    entries = sorted(folder.iterdir())
    dangling = [p.name for p in entries if p.is_symlink() and not p.exists()]
    if dangling:
        raise LmdbError(f'{folder}: {len(dangling)} symlink(s) point at nothing, e.g. {dangling[:5]}')
    files = [p for p in entries if p.is_file()]
    others = [p.name for p in files if not is_image(p)]
    if others:
        raise LmdbError(f'{folder}: {len(others)} non-image file(s), e.g. {others[:5]}')
    empty = [p.name for p in files if p.stat().st_size == 0]
    if empty:
        raise LmdbError(f'{folder}: {len(empty)} empty (0-byte) image file(s), e.g. {empty[:5]}')
    unusable = [p.name for p in files if lmdb_keys and not valid_key(p.stem)]
    if unusable:
        raise LmdbError(f'{folder}: {len(unusable)} file name(s) that BasicSR\'s meta_info.txt cannot hold as '
                        f'keys (a space, a dot or a line break in the stem), e.g. {unusable[:5]}; rename them')
    return files


def build_lmdb_from_folder(folder: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False,
                           compress_level: int = 1, progress: bool = True) -> int:
    """Folder of images -> BasicSR LMDB keyed by file stem, storing each file's bytes unchanged.

    The map size is computed from the file sizes; images are decoded only to record their shape.
    """
    folder, out = Path(folder), Path(out)
    files = folder_images(folder, lmdb_keys=True)
    if not files:
        raise LmdbError(f'{folder}: no images')
    check_unique([p.stem for p in files], str(folder))
    total = sum(p.stat().st_size for p in files)
    with atomic_output_dir(out, overwrite, inputs=[folder], kind='lmdb') as tmp:
        with LmdbWriter(tmp, map_size_for(total, len(files)), compress_level) as writer:
            for path in tqdm(files, desc=f'lmdb {out.name}', unit='img', disable=not progress):
                data = path.read_bytes()
                writer.put(path.stem, data, image_shape(data, str(path)))
        ensure_verified(tmp)
        return writer.count


def iter_values(path: str | os.PathLike) -> Iterator[tuple[str, bytes]]:
    """(key, stored bytes) of an LMDB in meta_info order: for tests and comparisons."""
    entries = read_meta_info(path)
    with open_source(path) as env, env.begin() as txn:
        for entry in entries:
            yield entry.key, txn.get(key_bytes(entry.key))
