"""tools/gpu_study.sh, the one-call GPU study: packed here, run there; here on CPU at a tiny budget."""

import csv
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import REPO


@pytest.mark.slow
def test_the_gpu_study_script_packs_and_runs_at_a_tiny_budget(tiny_data: Path, tmp_path: Path) -> None:
    data = tmp_path / 'data'
    for name, source in (('T91', 'hr_train'), ('Set5', 'hr_val'), ('Set14', 'hr_val'), ('BSD100', 'hr_val')):
        (data / name).mkdir(parents=True)
        (data / name / 'HR').symlink_to(tiny_data / source)
    env = {**os.environ, 'PACK': str(tmp_path / 'pack'), 'PYTHON': sys.executable, 'PROXY_ITERS': '2',
           'WORK': str(tmp_path / 'work'), 'OUT': str(tmp_path / 'out'), 'ITERS': '1 2 3',
           'BATCH': '2', 'SEEDS': '0', 'NUM_GPU': '0', 'SHARDS': '2'}
    env['PATH'] = f"{Path(sys.executable).parent}:{env['PATH']}"  # srprune of this environment
    script = str(REPO / 'tools' / 'gpu_study.sh')
    unpacked = subprocess.run(['bash', script, 'run'], env=env, capture_output=True, text=True, timeout=60)
    assert unpacked.returncode == 2 and "pack/data/T91/HR is missing: run 'bash tools/gpu_study.sh pack" in (
        unpacked.stderr) and not (tmp_path / 'work').exists()
    lacking = tmp_path / 'lacking'
    (lacking / 'T91' / 'HR').mkdir(parents=True)
    refused = subprocess.run(['bash', script, 'pack', str(lacking)], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and f'no images in {lacking}/T91/HR {lacking}/Set5/HR' in refused.stderr
    assert not (tmp_path / 'pack').exists()  # nothing copied, no empty folders left
    packed = subprocess.run(['bash', script, 'pack', str(data)], env=env, capture_output=True, text=True, timeout=600)
    assert packed.returncode == 0, packed.stderr[-3000:]
    scores = {name: (tmp_path / 'pack' / 'scores' / f'{name}.csv').read_text().splitlines()
              for name in ('loss_value', 'sobel')}
    assert all(len(lines) > 16 for lines in scores.values())  # a header (and comments) and the 16 sub-images
    assert sorted(p.name for p in (tmp_path / 'pack' / 'data' / 'T91' / 'HR').iterdir()) == sorted(
        p.name for p in (tiny_data / 'hr_train').iterdir())
    no_shards = subprocess.run(['bash', script, 'run'], env={**env, 'SHARDS': '0', 'WORK': str(tmp_path / 'w0')},
                               capture_output=True, text=True, timeout=60)
    assert no_shards.returncode == 2 and "SHARDS must be a whole number of at least 1, got '0'" in no_shards.stderr
    assert not (tmp_path / 'w0').exists()
    ran = subprocess.run(['bash', script, 'run'], env=env, capture_output=True, text=True, timeout=1200)
    assert ran.returncode == 0, ran.stderr[-3000:] + ran.stdout[-2000:]
    assert '7 runs in' in ran.stdout  # full at 3 budgets; random 25% and 50%, sobel, the refined 50% at the largest
    assert sorted(p.name for p in (tmp_path / 'work').glob('shard_*.log')) == ['shard_0.log', 'shard_1.log']
    out = tmp_path / 'out'
    with open(out / 'study.csv') as handle:
        rows = list(csv.DictReader(handle))
    assert {r['arm'] for r in rows} == {'full~1it', 'full~2it', 'full~3it', 'random@0.25~3it', 'random@0.5~3it',
                                        'loss_value@0.5+0.05~3it', 'sobel@0.25~3it'}
    assert {r['benchmark'] for r in rows} == {'Set5', 'Set14', 'BSD100'} and all(float(r['psnr']) > 10 for r in rows)
    md = (out / 'study.md').read_text()
    assert '| loss_value@0.5+0.05~3it |' in md and (out / 'study_images.csv').is_file()
    with open(out / 'study_curves.csv') as handle:  # val_every follows the smallest budget: every step
        curve = [r for r in csv.DictReader(handle) if r['arm'] == 'full~3it' and r['benchmark'] == 'BSD100']
    assert [r['steps'] for r in curve] == ['1', '2', '3']
    with tarfile.open(out / 'plots.tar') as plots:
        assert {'./psnr_vs_ratio_BSD100.png', './psnr_vs_iters_BSD100.png', './psnr_along_training_BSD100.png',
                './gain_vs_random_sobel.png'} <= set(plots.getnames())
    assert '7 runs' in (out / 'log.txt').read_text() and len(list(out.iterdir())) <= 8  # what a device call returns
    short = subprocess.run(['bash', script, 'run'], env={**env, 'ITERS': '2', 'WORK': str(tmp_path / 'w2')},
                           capture_output=True, text=True, timeout=600)
    assert short.returncode != 0 and 'ITERS gives 1 budgets' in short.stderr and '[4000, 6000, 8000]' in short.stderr
    one = subprocess.run(['bash', script, 'pack', str(data)], env={**env, 'SCORES': 'x.csv'}, capture_output=True,
                         text=True)
    assert one.returncode == 2 and 'give both SCORES and SOBEL, or neither' in one.stderr
