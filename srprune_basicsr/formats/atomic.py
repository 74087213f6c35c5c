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
- **Locked.** Two writers of one output take turns (an exclusive lock on a hidden lock file beside
  it), so the second sees the first's complete output: it then fails (no ``--overwrite``) or
  replaces it. Where the filesystem has no locks, the write goes on with a warning. A folder a
  long process works in (a BasicSR run's ``experiments/<name>``) is held instead (``hold_lock``):
  the lock lasts as long as the process, and a second process is refused at once.
- **Atomic files of other writers** (``atomic_file``): torch checkpoints are written to a temporary
  beside the final name, synced, checked and renamed; a failed write leaves the previous file.
"""

from __future__ import annotations

import ctypes
import datetime
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

TOOL = 'srprune_basicsr'
MARKER = '.srprune-output'
_held: set[str] = set()  # outputs this process holds the lock of (a lock may be re-entered)
NO_LOCKS = (errno.ENOLCK, errno.ENOSYS, errno.EBADF, errno.EOPNOTSUPP, errno.EINVAL)


class OutputExistsError(FileExistsError):
    """The output exists and the caller did not ask to overwrite it."""


class UnsafeOutputError(ValueError):
    """The output would touch an input, or would replace something this package did not make."""


class OutputWriteError(OSError):
    """An output could not be written (disk full, quota, file size limit, a failed LMDB write).

    Raised with one line naming the output and the cause once the partial output is removed; an
    output it was to replace is as it was. Like a failed checkpoint save, it is no refusal of inputs.
    """


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, quota exceeded, file size limit


def write_failure(err: BaseException) -> str | None:
    """The cause when ``err`` means the disk took no more (None for any other error, which keeps its traceback)."""
    if isinstance(err, OutputWriteError):
        return str(err)
    if isinstance(err, OSError) and err.errno in DISK_FULL:
        return err.strerror or os.strerror(err.errno)
    return None


def raise_write_failure(err: BaseException, final: Path, what: str) -> None:
    """Re-raise a disk-full error as one ``OutputWriteError`` naming ``final``; any other error is left alone."""
    cause = write_failure(err)
    if cause is not None:
        raise OutputWriteError(f'{final}: writing it failed ({cause}); {what}') from err


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


def made_by_us(path: str | os.PathLike, provenance: str | os.PathLike | None = None, kind: str | None = None) -> bool:
    """Whether an existing output was made by this package, as this kind of output.

    A folder holds our marker (of ``kind``, when given); a file has a provenance record that names
    the package and this very file (two files never share one record).
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        marker = _tool_record(path / MARKER)
        return marker.get('tool') == TOOL and (kind is None or marker.get('kind') == kind)
    return bool(our_record(path, provenance)) if provenance else False


def our_record(path: str | os.PathLike, provenance: str | os.PathLike) -> dict:
    """The provenance record at ``provenance`` if this package wrote it for the file ``path``, else {}.

    A record that is unreadable, names another tool or another file says nothing about ``path``.
    """
    record = _tool_record(Path(provenance))
    ours = str(record.get('tool', '')).startswith(TOOL) and record.get('output') == Path(path).name
    return record if ours else {}


def check_replaceable(path: Path, overwrite: bool, provenance: Path | None = None, kind: str | None = None) -> None:
    """An existing output may be replaced only with ``overwrite`` and only if this package made it (as ``kind``)."""
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        raise OutputExistsError(f'{path} already exists; pass --overwrite to replace it')
    if not made_by_us(path, provenance, kind):
        if path.is_dir():
            mark = f'no {MARKER} of a {kind} output inside' if kind else f'no {MARKER} inside'
        else:
            mark = f'{provenance or "no provenance record"} does not name {TOOL} and this file'
        raise UnsafeOutputError(f'{path} exists and was not made by srprune ({mark}); --overwrite only replaces '
                                'outputs srprune made: move it away yourself or choose another output path')


@contextmanager
def output_lock(final: Path) -> Iterator[None]:
    """Hold an exclusive lock for ``final`` (a hidden ``.<name>.srprune-lock`` beside it; re-entrant here)."""
    final = final.resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    if str(final) in _held:
        yield
        return
    fd = os.open(lock_file_of(final), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        except OSError as err:
            if err.errno not in NO_LOCKS:
                raise
            warnings.warn(f'{final.parent}: the filesystem offers no file locks ({err.strerror}); writing {final.name} '
                          'without one: do not run two srprune commands on this output at once', stacklevel=3)
        _held.add(str(final))
        yield
    finally:
        _held.discard(str(final))
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


def check_scratch(path: Path, inputs: list, kind: str) -> None:
    """A temporary or set-aside name (``.partial``, ``.old``) may be removed only if it is ours and no input."""
    check_apart(path, inputs, option=f'the temporary {path.name} of the output')
    if (path.exists() or path.is_symlink()) and not made_by_us(path, kind=kind):
        raise UnsafeOutputError(f'{path} exists and was not made by srprune (no {MARKER} of a {kind} output '
                                'inside); srprune would remove it while writing: move it away')


def write_marker(folder: Path, kind: str) -> None:
    record = {'tool': TOOL, 'kind': kind, 'created': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}
    atomic_write_text(folder / MARKER, json.dumps(record) + '\n')  # a process starting beside never reads it half


RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2`` with ``RENAME_EXCHANGE``).

    Returns False where it did not swap, for whatever reason (another OS, an old kernel or libc, a
    filesystem or sandbox without it): the caller then falls back to two renames, and those raise
    the real error if there is one.
    """
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def restore_set_aside(final: Path, old: Path) -> None:
    """Put back a previous output that a replacement stopped between its two renames left set aside.

    Where ``exchange`` is not available an output is replaced by renaming it to ``<name>.old`` and
    the new one onto its name: a process stopped between the two leaves no ``final`` and a complete
    ``old``. The next writer (under the output's lock) renames it back, with a warning, and goes on
    as if the stopped run had never started.
    """
    if old.is_dir() and not old.is_symlink() and not (final.exists() or final.is_symlink()):
        old.rename(final)
        warnings.warn(f'{final}: put back from {old.name}, where a run stopped while replacing it had set it aside',
                      stacklevel=2)


@contextmanager
def atomic_output_dir(final: str | os.PathLike, overwrite: bool = False, inputs: Iterable = (),
                      kind: str = 'output') -> Iterator[Path]:
    """Yield a fresh temporary directory that becomes ``final`` when the block succeeds.

    Checked before any work: ``final`` apart from ``inputs``; an existing ``final`` needs
    ``overwrite`` and our marker. On an exception the temporary directory is removed and ``final``
    is left as it was. The output gets the marker that lets a later ``--overwrite`` replace it.
    """
    final = Path(final)
    inputs = list(inputs)
    check_apart(final, inputs)
    tmp, old = partial_path(final), final.with_name(final.name + '.old')
    with output_lock(final):
        for scratch in (tmp, old):
            check_scratch(scratch, inputs, kind)
        restore_set_aside(final, old)
        check_replaceable(final, overwrite, kind=kind)
        if tmp.exists():
            shutil.rmtree(tmp)
        existed = final.exists()
        tmp.mkdir(parents=True)
        try:
            write_marker(tmp, kind)  # first: a stale temporary is then known as ours
            yield tmp
            fsync_tree(tmp)  # a full disk may show only here (delayed allocation, network filesystems)
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise_write_failure(err, final, 'the partial output was removed' +
                                ('; the previous output is as it was' if existed else ''))
            raise
        if not final.exists():
            tmp.rename(final)
        elif exchange(tmp, final):  # one step: the final name always holds a complete output
            shutil.rmtree(tmp)  # now the previous output
            shutil.rmtree(old, ignore_errors=True)  # one left by a fallback stopped before its last removal
        else:  # two renames; a stop between them is undone by the next run (restore_set_aside)
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old)


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> Path:
    """Write a text file under a temporary name, fsync it, then rename it into place.

    For the package's own bookkeeping files; outputs a user names go through ``write_with_provenance``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f'{path} already exists; pass --overwrite to replace it')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_temporary(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_temporary(path: Path, text: str) -> Path:
    """``text`` in a new synced temporary file beside ``path``, for the caller to rename onto it.

    On any error the temporary is removed (a full disk leaves no ``.partial`` file behind).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.partial')  # a new, unique file
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the file the usual mode
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def replace_together(files: dict[Path, str]) -> None:
    """Write several files so that a failed write changes none of them.

    Every file is first written in full to its temporary; only then are they renamed into place.
    A full disk (or any error) while writing removes the temporaries and leaves each file as it
    was: an output and its provenance record are never left from two different runs.
    """
    written: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            written.append((write_temporary(path, text), path))
    except BaseException as err:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        names = ' and '.join(str(p) for p in files)
        raise_write_failure(err, next(iter(files)), f'nothing was changed ({names} are as they were)')
        raise
    for tmp, path in written:
        os.replace(tmp, path)


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
        for target in (path, provenance):  # the pair is ours when the record names the package and ``path``
            if target.exists() or target.is_symlink():
                if not overwrite:
                    raise OutputExistsError(f'{target} already exists; pass --overwrite to replace it')
                if not made_by_us(path, provenance):
                    raise UnsafeOutputError(f'{target} exists and was not made by srprune ({provenance} does not name '
                                            f'{TOOL} and {path.name}); --overwrite only replaces outputs srprune made: '
                                            'move it away yourself or choose another output path')
        record = {**record, 'tool': record.get('tool', TOOL), 'output': path.name,
                  'output_sha256': hashlib.sha256(text.encode()).hexdigest()}  # pairs the record with this text
        path.parent.mkdir(parents=True, exist_ok=True)
        provenance.parent.mkdir(parents=True, exist_ok=True)
        replace_together({path: text, provenance: json.dumps(record, indent=2, default=str) + '\n'})
    return path


def describes(record: dict, path: str | os.PathLike, content: bytes | None = None) -> bool:
    """Whether a provenance record describes the file at ``path`` as it is now.

    The file and its record are renamed into place one after the other: a write stopped between
    the two renames leaves the new file beside the old record, whose ``output_sha256`` then differs.
    Records written before the digest was kept have none and are taken as they are. ``content``
    is the file's bytes when the caller has read them already (the file is then not read again).
    """
    digest = record.get('output_sha256')
    if digest is None:
        return True
    if content is not None:
        return hashlib.sha256(content).hexdigest() == digest
    return Path(path).is_file() and sha256_of(path) == digest


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's content, read in 1 MiB chunks (provenance records name inputs by content)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------ locks held for a process's life, atomic files
class CheckpointSaveError(OSError):
    """A checkpoint or training state could not be saved; the file under its final name is as it was."""


class OutputBusyError(ValueError):
    """Another process holds the lock of the output (``holder`` says which, when it wrote itself in)."""

    def __init__(self, message: str, holder: str = '') -> None:
        super().__init__(message)
        self.holder = holder


def lock_file_of(final: Path) -> Path:
    """The hidden lock file of an output, beside it: ``.<name>.srprune-lock`` (``output_lock`` and ``hold_lock``)."""
    return final.with_name(f'.{final.name}.srprune-lock')


def lock_holder(final: str | os.PathLike) -> str:
    """Who holds (or last held) the lock of ``final``: ``pid N on HOST`` as ``hold_lock`` wrote it, '' if unknown."""
    try:
        words = lock_file_of(Path(final).resolve()).read_text().split()
    except OSError:
        return ''
    return f'pid {words[0]} on {words[1]}' if len(words) >= 2 and words[0].isdigit() else ''


def holds_lock(final: str | os.PathLike) -> bool:
    """Whether this process holds the lock of ``final`` (``output_lock`` or ``hold_lock``)."""
    return str(Path(final).resolve()) in _held


_life_locks: dict[str, int] = {}  # output -> the open descriptor of its lock file, held by ``hold_lock``


def hold_lock(final: str | os.PathLike) -> None:
    """Take the exclusive lock of ``final`` without waiting, and hold it until this process ends.

    The same lock file as ``output_lock`` (``fcntl.lockf``: a lock of this process, not inherited by
    forked workers and released by the system when the process ends, however it ends). The holder
    writes ``<pid> <host>`` into it. Raises ``OutputBusyError`` when another process holds it; taking
    it again in the holding process is a no-op. The lock file is never opened again by the holder:
    closing any descriptor of it would release the lock. Where the filesystem has no locks, goes on
    with a warning.
    """
    final = Path(final).resolve()
    if str(final) in _held:
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_file_of(final)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno in (errno.EACCES, errno.EAGAIN):
            holder = lock_holder(final)
            raise OutputBusyError(f'{final} is in use by another process ({holder or "see " + str(lock)})',
                                  holder) from None
        if err.errno not in NO_LOCKS:
            raise
        warnings.warn(f'{final.parent}: the filesystem offers no file locks ({err.strerror}); using {final.name} '
                      'without one: do not start two runs of it at once', stacklevel=2)
        _held.add(str(final))
        return
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()} {socket.gethostname()}\n'.encode(), 0)
    _held.add(str(final))
    _life_locks[str(final)] = fd  # kept open: the lock lives as long as the process


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (filesystems that cannot sync a directory are skipped)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.EBADF, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_file(final: str | os.PathLike, check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a new temporary path beside ``final``; when the block succeeds it becomes ``final``.

    The block writes the file (through the path: it may reopen and truncate it). Then it is synced
    to disk, ``check(tmp)`` may read it back and raise, and it is renamed onto ``final`` (the
    folder synced too). On any error the temporary is removed and ``final`` is left as it was: the
    previous file or nothing, never a partial one. The temporary is ``<name>-XXXXXXXX-partial``:
    no dot after the final name's own, so a writer that names its records after the file name up
    to its last dot (torch.save's zip archives) names them exactly as under ``final``.
    """
    final = Path(final)
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f'{final.name}-', suffix='-partial')
    tmp = Path(name)
    try:
        yield tmp
        os.fsync(fd)  # the writer's data, whichever descriptor wrote it (same file)
        if check is not None:
            check(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    fsync_dir(final.parent)
