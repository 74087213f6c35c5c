"""Outputs that can never destroy data: apart from the inputs, atomic, locked, replaced only if ours.

Every file or folder the package writes for a user goes through here:

- **Apart from the inputs.** An output equal to, inside, or containing any input is refused,
  whatever the flags (``check_apart``), and so is a provenance file that would land on an input.
- **Atomic.** It is built under a temporary name beside its final name, synced, and renamed into
  place only when complete; an interrupted run leaves no half-written output under the final
  name, and a rerun removes the stale temporary first.
- **Replaced only if ours.** ``--overwrite`` replaces an existing output only when this package
  made it: a folder holds the marker file ``.srprune-output``, a file has a provenance record
  beside it (``scores.json``, ``keep.json``) that names the package. Anything else is refused.
- **Locked.** Two writers of one output take turns (an exclusive lock on its parent folder), so
  the second sees the first's complete output: it then fails (no ``--overwrite``) or replaces it.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

TOOL = 'srprune_basicsr'
MARKER = '.srprune-output'
_held: dict[str, int] = {}  # parent folders this process has locked (a lock may be re-entered)


class OutputExistsError(FileExistsError):
    """The output exists and the caller did not ask to overwrite it."""


class UnsafeOutputError(ValueError):
    """The output would touch an input, or would replace something this package did not make."""


def partial_path(final: Path) -> Path:
    """The temporary name an output is built under, beside its final name."""
    return final.with_name(final.name + '.partial')


def check_apart(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], option: str = '--out') -> None:
    """Refuse an output that is, lies inside, or contains any of ``inputs`` (symlinks resolved)."""
    out = Path(output).resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if out == source:
            relation = 'is'
        elif source in out.parents:
            relation = 'lies inside'
        elif out in source.parents:
            relation = 'contains'
        else:
            continue
        raise UnsafeOutputError(f'{option} {output} {relation} the input {given}: an output never touches its '
                                'inputs; choose another output path')


def _tool_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def made_by_us(path: str | os.PathLike, provenance: str | os.PathLike | None = None) -> bool:
    """Whether an existing output was made by this package (marker inside, or a provenance record naming it)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        return (path / MARKER).is_file()
    record = _tool_record(Path(provenance)) if provenance else {}
    return str(record.get('tool', '')).startswith(TOOL)


def check_replaceable(path: Path, overwrite: bool, provenance: Path | None = None) -> None:
    """An existing output may be replaced only with ``overwrite`` and only if this package made it."""
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        raise OutputExistsError(f'{path} already exists; pass --overwrite to replace it')
    if not made_by_us(path, provenance):
        record = provenance or 'no provenance record'
        mark = f'no {MARKER} inside' if path.is_dir() else f'{record} does not name {TOOL}'
        raise UnsafeOutputError(f'{path} exists and was not made by srprune ({mark}); --overwrite only replaces '
                                'outputs srprune made: move it away yourself or choose another output path')


@contextmanager
def output_lock(final: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``final``'s parent folder (re-entrant within this process)."""
    parent = final.parent.resolve()
    parent.mkdir(parents=True, exist_ok=True)
    key = str(parent)
    if key in _held:
        yield
        return
    fd = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held[key] = fd
        yield
    finally:
        _held.pop(key, None)
        os.close(fd)  # closing releases the lock


def fsync_tree(path: Path) -> None:
    """Flush every file and directory under ``path`` to disk, so a completed output is durable."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_marker(folder: Path, kind: str) -> None:
    record = {'tool': TOOL, 'kind': kind, 'created': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}
    (folder / MARKER).write_text(json.dumps(record) + '\n')


@contextmanager
def atomic_output_dir(final: str | os.PathLike, overwrite: bool = False, inputs: Iterable = (),
                      kind: str = 'output') -> Iterator[Path]:
    """Yield a fresh temporary directory that becomes ``final`` when the block succeeds.

    Checked before any work: ``final`` apart from ``inputs``; an existing ``final`` needs
    ``overwrite`` and our marker. On an exception the temporary directory is removed and ``final``
    is left as it was. The output gets the marker that lets a later ``--overwrite`` replace it.
    """
    final = Path(final)
    check_apart(final, inputs)
    with output_lock(final):
        check_replaceable(final, overwrite)
        tmp = partial_path(final)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            yield tmp
            write_marker(tmp, kind)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_tree(tmp)
        if final.exists():
            old = final.with_name(final.name + '.old')
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old)
        else:
            tmp.rename(final)


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> Path:
    """Write a text file under a temporary name, fsync it, then rename it into place.

    For the package's own bookkeeping files; outputs a user names go through ``write_with_provenance``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f'{path} already exists; pass --overwrite to replace it')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.partial')
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path


def write_with_provenance(path: str | os.PathLike, text: str, provenance: str | os.PathLike, record: dict,
                          overwrite: bool = False, inputs: Iterable = ()) -> Path:
    """Write a user-facing file and its provenance record (``record`` gains the tool's name).

    Both paths must be apart from ``inputs`` (callers list an input's own provenance file too) and
    from each other; existing ones are replaced only with ``overwrite`` and only if ours.
    """
    path, provenance = Path(path), Path(provenance)
    if path.resolve() == provenance.resolve():
        raise UnsafeOutputError(f'{path}: the output and its provenance record would be the same file')
    inputs = list(inputs)
    check_apart(path, inputs)
    check_apart(provenance, inputs, option=f'the provenance record of {path},')
    with output_lock(path):
        for target in (path, provenance):
            check_replaceable(target, overwrite, provenance)
        atomic_write_text(path, text)
        atomic_write_text(provenance, json.dumps({**record, 'tool': record.get('tool', TOOL)}, indent=2,
                                                 default=str) + '\n')
    return path


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's content, read in 1 MiB chunks (provenance records name inputs by content)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()
