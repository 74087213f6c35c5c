"""BasicSR's ``meta_info.txt``: one ``<key>.png (h,w,c) <compress_level>`` line per LMDB value.

BasicSR takes the text before the first dot as the key, so keys must not contain dots.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from srprune_basicsr.formats.text import utf8_text

META_INFO = 'meta_info.txt'


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


def read_meta_info(lmdb_dir: str | os.PathLike) -> list[MetaEntry]:
    """The entries of an LMDB's meta_info.txt in file order; a malformed line is an error naming it."""
    path = Path(lmdb_dir) / META_INFO
    if not path.is_file():
        raise LmdbError(f'{lmdb_dir}: no {META_INFO}, so not a BasicSR LMDB')
    entries = []
    text = utf8_text(path, path.read_bytes(), LmdbError, f'{META_INFO} (expected "<key>.png (h,w,c) <level>" lines)')
    for line_no, line in enumerate(io.StringIO(text, newline=None), 1):  # the line ends BasicSR's open() reads
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
