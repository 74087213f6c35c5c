"""`srprune demo`: photos -> LMDBs -> proxy -> the demo study (scores, refined/random 50%, targets) -> table + plots."""

import re
from pathlib import Path

import cv2
import pytest
from conftest import run_cli

from srprune_basicsr.formats.lmdb import read_meta_info
from srprune_basicsr.formats.scores import read_scores

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_chain(tmp_path: Path) -> None:
    proc = run_cli(['demo', '--workdir', 'demo', '--iters', '6'], tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = dict(re.findall(r'\| ([A-Za-z0-9 %()]+?) \| ([0-9.]+) \|', proc.stdout))
    assert set(rows) >= {'bicubic', 'SRCNN proxy (ranks the data)', 'FSRCNN full', 'FSRCNN refined 50%',
                         'FSRCNN random 50%'}
    assert 15 < float(rows['bicubic']) < 50
    root = tmp_path / 'demo'
    gt_keys = [e.key for e in read_meta_info(root / 'data' / 'train_sub' / 'HR_sub.lmdb')]
    assert len(gt_keys) > 100
    assert gt_keys == [e.key for e in read_meta_info(root / 'data' / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')]
    study = root / 'study'
    scores = read_scores(study / 'scores' / 'loss_value.csv')
    assert sorted(scores.keys) == sorted(gt_keys) and scores.meta['method'] == 'loss_value'
    refined = (study / 'keep' / 'loss_value_r0p5_b0p05_s0.txt').read_text().split()
    assert len(refined) == round(0.5 * len(gt_keys))
    log = next((study / 'experiments' / 'demo_x2_loss_value_r0p5_b0p05_s0').glob('train_*.log')).read_text()
    assert f'kept {len(refined)} of {len(gt_keys)} samples' in log
    assert cv2.imread(str(study / 'report' / 'score_hist.png')) is not None
    assert (root / 'results.md').read_text().count('\n') == 9 and 'not one of the compared models' in proc.stdout
