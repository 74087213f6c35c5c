"""Keep lists: ``keep.txt`` (one key per line, in the source's order) and ``keep.json`` beside it.

``keep.json`` records how the list was made (the selection rule or the rebuild's sources), the
sha256 of the file it came from, and the kept/dropped counts, so a subset can be traced back.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path

from srprune_basicsr.formats.atomic import write_with_provenance
from srprune_basicsr.formats.keys import duplicates
from srprune_basicsr.formats.meta_info import LmdbError
from srprune_basicsr.version import __version__


def read_keep_list(path: str | os.PathLike) -> list[str]:
    """Keys of a keep.txt (one per line; blank lines and '#' comments ignored; '.png' tolerated)."""
    path = Path(path)
    if not path.is_file():
        raise LmdbError(f'{path}: no such keep list')
    keys = []
    for line in path.read_text(encoding='utf-8').splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            keys.append(line[:-4] if line.endswith('.png') else line)
    if not keys:
        raise LmdbError(f'{path}: the keep list is empty')
    dupes = duplicates(keys)
    if dupes:
        raise LmdbError(f'{path}: {len(dupes)} duplicate key(s), e.g. {dupes[:5]}')
    return keys


def keep_record(kept: int, total: int, **provenance: object) -> dict:
    """The keep.json content: counts, creation time, tool version and where the list came from."""
    return {**provenance, 'kept': kept, 'dropped': total - kept, 'total': total,
            'created': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
            'tool': f'srprune_basicsr {__version__}'}


def keep_text(keys: Sequence[str]) -> str:
    return ''.join(f'{k}\n' for k in keys)


def write_keep_list(out: str | os.PathLike, kept: Sequence[str], record: dict, overwrite: bool = False,
                    inputs: Sequence = ()) -> Path:
    """Write keep.txt and keep.json (``record``) atomically, apart from ``inputs`` (see ``formats.atomic``)."""
    out = Path(out)
    return write_with_provenance(out, keep_text(kept), out.with_suffix('.json'), record, overwrite, inputs)
