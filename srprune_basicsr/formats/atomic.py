"""Write outputs under a temporary name and rename them into place only when complete.

An interrupted run then leaves no half-written output under the final name, and a rerun can
start over safely: the stale temporary of an earlier run is removed first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputExistsError(FileExistsError):
    """The output exists and the caller did not ask to overwrite it."""


def partial_path(final: Path) -> Path:
    """The temporary name an output is built under, beside its final name."""
    return final.with_name(final.name + '.partial')


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


@contextmanager
def atomic_output_dir(final: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory that becomes ``final`` when the block succeeds.

    Raises OutputExistsError before any work if ``final`` exists and ``overwrite`` is False.
    On an exception the temporary directory is removed and ``final`` is left as it was.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise OutputExistsError(f'{final} already exists; pass --overwrite to replace it')
    tmp = partial_path(final)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
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
    """Write a text file under a temporary name, fsync it, then rename it into place."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f'{path} already exists; pass --overwrite to replace it')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.partial')
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's content, read in 1 MiB chunks (provenance records name inputs by content)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()
