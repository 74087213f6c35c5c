"""A disk that fills up mid-write: one line naming the output and the cause, exit 2, nothing half-written.

The disk is never filled: the commands run with a file size limit (``RLIMIT_FSIZE``; with SIGXFSZ
ignored a write past it fails with EFBIG, as one on a full disk fails with ENOSPC), or a writer is
made to fail with ENOSPC in-process. An output being replaced (``--overwrite``) stays as it was.
"""

from __future__ import annotations

import errno
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_env, photo_crops
from test_safety import NAMES, digest, refused

from srprune_basicsr.formats import atomic
from srprune_basicsr.formats.scores import write_scores

LIMIT = 24_000  # bytes: above the marker, lock and lock.mdb files, below every LMDB and keep list written here


def file_size_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn``: files of the child may not grow past ``limit`` bytes (a write past it fails, EFBIG)."""
    def limit_child() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_child


def srprune(args: list[str], cwd: Path, limit: int | None = None) -> subprocess.CompletedProcess:
    """``python -m srprune_basicsr ARGS``, under a file size limit when ``limit`` is given."""
    return subprocess.run([sys.executable, '-m', 'srprune_basicsr', *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=file_size_limit(limit) if limit else None)


def failed_write(proc: subprocess.CompletedProcess, out: Path, cause: str) -> None:
    """Exit 2 and, as the last line, one naming the output and the cause; no temporary left beside it."""
    refused(proc, f'{out.name}: writing it failed (', cause)
    assert proc.stderr.strip().splitlines()[-1].startswith('srprune '), proc.stderr[-2000:]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(out.name) and p != out] + \
        [p for p in out.parent.iterdir() if p.name.startswith(f'.{out.name}.') and p.suffix == '.partial']


@pytest.mark.slow
@pytest.mark.parametrize('layout,cause', [(['--lmdb'], 'LMDB HR_sub.lmdb: mdb_txn_commit: Input/output error'),
                                          ([], 'File too large')], ids=['lmdb', 'folders'])
def test_prepare_on_a_full_disk_removes_its_partial_output_and_keeps_the_previous(tmp_path: Path, layout: list[str],
                                                                                   cause: str) -> None:
    photo_crops(tmp_path / 'hr', 2, 96)
    args = ['prepare', '--hr', 'hr', '--out', 'out', '--scales', '2', '--crop', '48', '--step', '48',
            '--thresh', '0', '--workers', '1', '--compress-level', '0', *layout]
    limit = LIMIT if layout else 5_000  # folders: each 48 px PNG (6.9 kB at level 0) is a file of its own
    failed_write(srprune(args, tmp_path, limit), tmp_path / 'out', cause)
    assert not (tmp_path / 'out').exists()
    assert srprune(args, tmp_path).returncode == 0
    before = digest(tmp_path / 'out')
    proc = srprune([*args, '--overwrite'], tmp_path, limit)
    failed_write(proc, tmp_path / 'out', cause)
    assert 'the previous output is as it was' in proc.stderr
    assert digest(tmp_path / 'out') == before


@pytest.mark.slow
def test_lmdb_rebuild_on_a_full_disk_removes_its_partial_output_and_keeps_the_previous(tiny_data: Path,
                                                                                        tmp_path: Path) -> None:
    (tmp_path / 'keep.txt').write_text(''.join(f'img00{i}_s00{j}\n' for i in range(4) for j in range(1, 5)))
    args = ['lmdb', 'rebuild', *[a for name in NAMES for a in ('--src', str(tiny_data / 'train_sub' / name))],
            '--keep', 'keep.txt', '--out', 'kept']
    proc = srprune(args, tmp_path, LIMIT)
    failed_write(proc, tmp_path / 'kept', 'LMDB HR_sub.lmdb: mdb_txn_commit: Input/output error')
    assert 'is the disk full?' in proc.stderr and not (tmp_path / 'kept').exists()
    assert srprune(args, tmp_path).returncode == 0
    before = digest(tmp_path / 'kept')
    failed_write(srprune([*args, '--overwrite'], tmp_path, LIMIT), tmp_path / 'kept', 'Input/output error')
    assert digest(tmp_path / 'kept') == before


@pytest.mark.slow
def test_select_overwrite_on_a_full_disk_keeps_the_previous_keep_list(tmp_path: Path) -> None:
    keys = [f'{i:05d}_s001' for i in range(4000)]  # keep.txt of 48 kB: past the limit
    write_scores(tmp_path / 'scores.csv', keys, np.arange(4000, dtype=np.float64), method='test')
    args = ['select', '--scores', 'scores.csv', '--keep-ratio', '1', '--out', 'keep.txt']
    assert srprune(args, tmp_path).returncode == 0
    before = digest(tmp_path / 'keep.txt') | digest(tmp_path / 'keep.json')
    proc = srprune([*args, '--keep-ratio', '0.9', '--overwrite'], tmp_path, LIMIT)
    failed_write(proc, tmp_path / 'keep.txt', 'File too large')
    assert 'nothing was changed' in proc.stderr
    assert digest(tmp_path / 'keep.txt') | digest(tmp_path / 'keep.json') == before


def test_a_provenance_record_that_cannot_be_written_leaves_both_files_as_they_were(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from srprune_basicsr.selection import SelectionRule, write_selection

    keys = [f'{i:03d}_s001' for i in range(10)]
    write_selection(tmp_path / 'keep.txt', keys, 10, SelectionRule(keep_ratio=1.0), None)
    before = digest(tmp_path / 'keep.txt') | digest(tmp_path / 'keep.json')
    real = tempfile.mkstemp

    def json_on_a_full_disk(*args: object, prefix: str = '', **kwargs: object) -> tuple[int, str]:
        if prefix.endswith('.json.'):  # keep.txt is written by now; its record cannot be
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(atomic.tempfile, 'mkstemp', json_on_a_full_disk)
    with pytest.raises(OSError, match=r'keep.txt: writing it failed \(No space left on device\); nothing was changed'):
        write_selection(tmp_path / 'keep.txt', keys[:5], 10, SelectionRule(keep_ratio=0.5), None, overwrite=True)
    assert digest(tmp_path / 'keep.txt') | digest(tmp_path / 'keep.json') == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith('srprune-lock')) == ['keep.json',
                                                                                                 'keep.txt']
