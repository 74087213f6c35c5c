"""`srprune demo`: embedded photos -> prepared LMDBs -> SRCNN training -> a printed PSNR."""

import re
from pathlib import Path

import pytest
from conftest import run_cli

from srprune_basicsr.data.lmdb_tools import read_meta_info

pytestmark = pytest.mark.slow


def test_demo_prints_model_log_and_psnr(tmp_path: Path) -> None:
    proc = run_cli(['demo', '--workdir', 'demo', '--iters', '6'], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r'SRCNN ([0-9.]+) dB, bicubic ([0-9.]+) dB', proc.stdout)
    assert match, proc.stdout[-2000:]
    assert 15 < float(match.group(2)) < 50
    model = re.search(r'model: +(\S+)', proc.stdout).group(1)
    assert (tmp_path / model).is_file()
    data = tmp_path / 'demo' / 'data'
    gt_keys = [e.key for e in read_meta_info(data / 'train_sub' / 'HR_sub.lmdb')]
    assert len(gt_keys) > 100 and gt_keys == [e.key for e in read_meta_info(data / 'train_sub' /
                                                                          'LR_bicubic_X2_sub.lmdb')]
    assert sorted(p.name for p in (data / 'val' / 'GTmod12').iterdir()) == ['camera.png', 'coffee.png']
