"""The verbs that need no network start without torch or basicsr: --help, select and lmdb verify."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srprune_basicsr.formats.scores import write_scores


def imported_modules(args: list[str], cwd: Path) -> set[str]:
    """Top-level modules ``python -m srprune_basicsr <args>`` imports (from ``-X importtime``)."""
    proc = subprocess.run([sys.executable, '-X', 'importtime', '-m', 'srprune_basicsr', *args], cwd=cwd,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {m.group(1).split('.')[0] for m in re.finditer(r'^import time:.*\|\s+(\S+)$', proc.stderr, re.MULTILINE)}


@pytest.mark.parametrize('args', [['--help'], ['select', '--help'], ['lmdb', 'verify', '--help'],
                                  ['select', '--scores', 's.csv', '--keep-ratio', '0.5', '--out', 'keep.txt'],
                                  ['lmdb', 'verify', 'HR_sub.lmdb']])
def test_light_verbs_import_neither_torch_nor_basicsr(args: list[str], tiny_data: Path, tmp_path: Path) -> None:
    write_scores(tmp_path / 's.csv', [f'k{i}' for i in range(10)], np.arange(10.0), method='t')
    (tmp_path / 'HR_sub.lmdb').symlink_to(tiny_data / 'train_sub' / 'HR_sub.lmdb')
    modules = imported_modules(args, tmp_path)
    assert 'srprune_basicsr' in modules and not modules & {'torch', 'basicsr', 'torchvision'}
    if 'select' in args and '--help' not in args:
        assert len((tmp_path / 'keep.txt').read_text().split()) == 5
