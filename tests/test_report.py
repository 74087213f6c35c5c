"""`srprune report`: histogram, sample grid and summary files; rank correlation between scorers."""

from pathlib import Path

import cv2
import numpy as np
from conftest import run_cli

from srprune_basicsr.formats.lmdb import read_meta_info
from srprune_basicsr.formats.scores import write_scores


def test_report_writes_pngs_and_summary(tiny_data: Path, tmp_path: Path) -> None:
    gt = tiny_data / 'train_sub' / 'HR_sub.lmdb'
    keys = [e.key for e in read_meta_info(gt)]
    values = np.arange(len(keys), dtype=float)
    write_scores(tmp_path / 'a.csv', keys, values, method='test', dataset={'dataroot_gt': str(gt)})
    write_scores(tmp_path / 'b.csv', keys[::-1], values, method='reversed')
    (tmp_path / 'keep.txt').write_text('\n'.join(keys[:4]) + '\n')
    proc = run_cli(['report', '--scores', 'a.csv', '--keep', 'keep.txt', '--compare', 'b.csv', '--out', 'rep'],
                   tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'Spearman rank correlation with b.csv: -1.0000' in proc.stdout
    for name in ('score_hist.png', 'samples.png'):
        img = cv2.imread(str(tmp_path / 'rep' / name))
        assert img is not None and img.shape[0] > 100
    summary = (tmp_path / 'rep' / 'summary.md').read_text()
    assert '- samples: 16' in summary and '- kept: 4 (25.0%)' in summary and '| score | 0 |' in summary
