"""The per-sample PSNR history of a training run, on disk (recorded by ``prune_tracking:``).

The history is a float32 ``[snapshots x samples]`` array of PSNR values (dB) with a uint8 seen-mask
of the same shape, both memory-mapped raw files, so a million samples x 100 snapshots (400 MB +
100 MB) live on disk, not in RAM. A folder holds::

    history.json   format, sample count, capacity (rows allocated), snapshot iterations, options
    keys.txt       one sample key per line: column j of the arrays is keys[j]
    psnr.f32       float32, row-major [capacity, samples]
    seen.u8        uint8,   row-major [capacity, samples]; 0 = the sample was not measured

Only the first ``len(snapshot_iters)`` rows are valid. ``scoring.dynamic_uncertainty`` turns a
history into scores.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srprune_basicsr.formats.atomic import atomic_write_text
from srprune_basicsr.formats.text import utf8_text

FORMAT = 'srprune-history/1'
HEADER, KEYS, VALUES, SEEN = 'history.json', 'keys.txt', 'psnr.f32', 'seen.u8'


class HistoryError(ValueError):
    """A history folder that is missing, damaged, or from another dataset; the message names the file."""


def keys_digest(keys: list[str]) -> str:
    """Identity of a dataset's sample list (order included): columns only mean something against it."""
    return hashlib.sha256('\n'.join(keys).encode()).hexdigest()


def _map(path: Path, dtype: type, shape: tuple[int, int], mode: str) -> np.memmap:
    return np.memmap(path, dtype=dtype, mode=mode, shape=shape)


def _allocate(path: Path, nbytes: int) -> None:
    """Create or extend a file to ``nbytes`` (sparse where the filesystem allows: no RAM, little disk)."""
    with open(path, 'ab') as f:
        f.truncate(nbytes)


@dataclass
class History:
    """A PSNR history folder opened for reading or appending snapshots (see the module docstring)."""

    root: Path
    keys: list[str]
    capacity: int
    snapshot_iters: list[int]
    meta: dict[str, Any] = field(default_factory=dict)
    writable: bool = False

    def __post_init__(self) -> None:
        mode = 'r+' if self.writable else 'r'
        shape = (self.capacity, len(self.keys))
        self.values = _map(self.root / VALUES, np.float32, shape, mode)
        self.seen = _map(self.root / SEEN, np.uint8, shape, mode)

    # ----------------------------------------------------------------- create / open
    @classmethod
    def create(cls, root: str | os.PathLike, keys: list[str], capacity: int, meta: dict[str, Any]) -> History:
        """A fresh, empty history (an old one in ``root`` is replaced)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        for name in (VALUES, SEEN):
            (root / name).unlink(missing_ok=True)
        capacity = max(1, capacity)
        _allocate(root / VALUES, capacity * len(keys) * 4)
        _allocate(root / SEEN, capacity * len(keys))
        atomic_write_text(root / KEYS, ''.join(f'{k}\n' for k in keys))
        history = cls(root, list(keys), capacity, [], dict(meta), writable=True)
        history.commit()
        return history

    @classmethod
    def open(cls, root: str | os.PathLike, writable: bool = False) -> History:
        """Open and check a history folder: header, key list and file sizes must agree."""
        root = Path(root)
        if (root / 'prune_tracking' / HEADER).is_file():  # an experiment folder was given
            root = root / 'prune_tracking'
        header_path = root / HEADER
        if not header_path.is_file():
            raise HistoryError(f'{header_path}: no such history header (is {root} a prune_tracking folder?)')
        try:
            header = json.loads(header_path.read_text())
        except ValueError as err:
            raise HistoryError(f'{header_path}: not valid JSON ({err})') from None
        if header.get('format') != FORMAT:
            raise HistoryError(f"{header_path}: format {header.get('format')!r}, expected {FORMAT!r}")
        keys_path = root / KEYS
        if not keys_path.is_file():
            raise HistoryError(f'{keys_path}: missing (the column keys of the history)')
        keys = utf8_text(keys_path, keys_path.read_bytes(), HistoryError,
                         'key list (expected one key per line)').splitlines()
        if len(keys) != header['samples'] or keys_digest(keys) != header['keys_sha256']:
            raise HistoryError(f"{keys_path}: {len(keys)} keys do not match the header's {header['samples']} "
                               f"samples / keys_sha256 in {header_path}")
        capacity = int(header['capacity'])
        for name, itemsize in ((VALUES, 4), (SEEN, 1)):
            path = root / name
            expected = capacity * len(keys) * itemsize
            actual = path.stat().st_size if path.is_file() else None
            if actual != expected:
                raise HistoryError(f'{path}: {"missing" if actual is None else f"{actual} bytes"}, expected '
                                   f'{expected} ({capacity} snapshots x {len(keys)} samples): the file is truncated '
                                   'or damaged')
        if len(header['snapshot_iters']) > capacity:
            raise HistoryError(f"{header_path}: {len(header['snapshot_iters'])} snapshots recorded but room "
                               f'for only {capacity}')
        meta = {k: v for k, v in header.items() if k not in ('format', 'samples', 'keys_sha256', 'capacity',
                                                              'snapshot_iters')}
        return cls(root, keys, capacity, list(header['snapshot_iters']), meta, writable=writable)

    # ----------------------------------------------------------------- writing
    @property
    def count(self) -> int:
        """Number of valid snapshots (rows)."""
        return len(self.snapshot_iters)

    def grow(self, capacity: int) -> None:
        """Room for at least ``capacity`` snapshots (a resumed run may train longer than planned)."""
        if capacity <= self.capacity:
            return
        self.values.flush()
        self.seen.flush()
        del self.values, self.seen
        _allocate(self.root / VALUES, capacity * len(self.keys) * 4)
        _allocate(self.root / SEEN, capacity * len(self.keys))
        self.capacity = capacity
        self.__post_init__()
        self.commit()

    def append(self, iteration: int, values: np.ndarray, seen: np.ndarray) -> None:
        """Store one snapshot as the next row and commit it (data flushed before the header names it)."""
        row = self.count
        self.grow(row + 1)
        self.values[row] = np.where(seen, values, 0).astype(np.float32)
        self.seen[row] = seen.astype(np.uint8)
        self.snapshot_iters.append(int(iteration))
        self.commit()

    def forget_after(self, count: int) -> None:
        """Keep only the first ``count`` snapshots (resuming from a checkpoint taken then)."""
        if count < self.count:
            self.seen[count:self.count] = 0
            del self.snapshot_iters[count:]
            self.commit()

    def commit(self) -> None:
        self.values.flush()
        self.seen.flush()
        header = {'format': FORMAT, 'samples': len(self.keys), 'keys_sha256': keys_digest(self.keys),
                  'capacity': self.capacity, 'snapshot_iters': self.snapshot_iters, **self.meta}
        atomic_write_text(self.root / HEADER, json.dumps(header, indent=2) + '\n')

    # ----------------------------------------------------------------- reading
    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Valid snapshots x samples[start:stop] as in-memory arrays (values float64, seen bool)."""
        t = self.count
        return (np.asarray(self.values[:t, start:stop], dtype=np.float64),
                np.asarray(self.seen[:t, start:stop], dtype=bool))
