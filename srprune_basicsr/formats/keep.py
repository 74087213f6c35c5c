"""Keep lists: ``keep.txt`` (one key per line, in the source's order) and ``keep.json`` beside it.

``keep.json`` records how the list was made (the selection rule or the rebuild's sources), the
sha256 of the file it came from, and the kept/dropped counts, so a subset can be traced back.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path

from srprune_basicsr.formats.atomic import describes, our_record, write_with_provenance
from srprune_basicsr.formats.keys import duplicates
from srprune_basicsr.formats.meta_info import LmdbError
from srprune_basicsr.formats.text import utf8_text
from srprune_basicsr.version import __version__


def read_keep_list(path: str | os.PathLike) -> list[str]:
    """Keys of a keep.txt (one per line; blank lines and '#' comments ignored; '.png' tolerated)."""
    path = Path(path)
    if not path.is_file():
        raise LmdbError(f'{path}: no such keep list')
    data = path.read_bytes()
    keys = []
    for line in utf8_text(path, data, LmdbError, 'keep list (expected one key per line)').splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            keys.append(line[:-4] if line.endswith('.png') else line)
    if not keys:
        raise LmdbError(f'{path}: the keep list is empty')
    dupes = duplicates(keys)
    if dupes:
        raise LmdbError(f'{path}: {len(dupes)} duplicate key(s), e.g. {dupes[:5]}')
    _check_described(path, data, len(keys))
    return keys


def _check_described(path: Path, data: bytes, count: int) -> None:
    """A keep list that is not the one its keep.json describes is refused, naming both files.

    A list srprune wrote carries a record (digest and kept count): an edited or half-replaced list
    would otherwise train on, or rebuild, another subset than the one the record reports. A list
    written by hand (no record of ours beside it) is taken as it is.
    """
    record_path = path.with_suffix('.json')
    record = our_record(path, record_path)
    if not record:
        return
    if not describes(record, path, data):
        raise LmdbError(f'{path}: not the list {record_path} describes (its SHA-256 differs): it was edited, or a '
                        'write stopped between renaming it and its record; select again, or remove the json if '
                        'the edit was on purpose')
    kept = record.get('kept')
    if isinstance(kept, int) and kept != count:
        raise LmdbError(f'{path}: {count} key(s), but {record_path} records {kept} (kept); select again, or remove '
                        'the json if the edit was on purpose')


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
