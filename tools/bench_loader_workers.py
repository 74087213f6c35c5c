"""Benchmark the start of each epoch of BasicSR's train loader (one worker) with and without ``fork_workers``.

BasicSR starts new DataLoader workers every epoch. In a process whose start method is forkserver
(Python 3.14's default, and every run of ``srprune study``, which forks its runs from a forkserver),
each new worker re-imports torch, basicsr and the plugin before its first batch; ``fork_workers`` starts
it by fork instead. A pruned set of a few iterations per epoch pays that start every few iterations.

Each setting runs in a fresh process that sets forkserver, builds BasicSR's PairedImageDataset on the
pool of T91 sub-images of 48 px (or scikit-image photos when ../shared is absent) and BasicSR's train
loader (batch 8, one worker), and times the first batch of each of --epochs epochs (median and
range); the ratio is without / with the fix, measured in the same run.

Usage:  python tools/bench_loader_workers.py [--epochs 5] [--work NEW_FOLDER]   (default: a new temporary folder)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data'

CHILD = '''
import json, multiprocessing, sys, time
multiprocessing.set_start_method('forkserver')
import srprune_basicsr  # noqa: F401  (plugs in: the fixes and hooks)
from basicsr.data import build_dataloader, build_dataset
from srprune_basicsr._basicsr import compat, hooks
root, epochs = sys.argv[1], int(sys.argv[2])
opt = {'name': 'pool', 'type': 'PairedImageDataset', 'phase': 'train', 'scale': 2, 'gt_size': 48,
       'dataroot_gt': f'{root}/HR_sub.lmdb', 'dataroot_lq': f'{root}/LR_bicubic_X2_sub.lmdb',
       'io_backend': {'type': 'lmdb'}, 'use_hflip': True, 'use_rot': True, 'num_worker_per_gpu': 1,
       'batch_size_per_gpu': 8, 'dataset_enlarge_ratio': 1}
loader = build_dataloader(build_dataset(opt), opt, num_gpu=0, dist=False, sampler=None, seed=0)
if compat.fork_loader_workers in hooks.callbacks('train_loaders'):
    compat.fork_loader_workers(hooks.TrainLoaders({}, None, loader, None, [], 1, 1))
starts = []
for _ in range(epochs):
    began = time.perf_counter()
    next(iter(loader))
    starts.append(time.perf_counter() - began)
print(json.dumps(starts))
'''


def make_pool(work: Path) -> Path:
    """The LMDB pool: T91 at 48 px every 192 px (the CPU study's), else scikit-image photos."""
    from srprune_basicsr.prepare import PrepareConfig, prepare

    hr = SHARED / 'T91' / 'HR'
    if not hr.is_dir():
        import cv2
        import skimage.data

        hr = work / 'photos'
        hr.mkdir(parents=True)
        for name in ('astronaut', 'chelsea', 'coffee', 'rocket'):
            cv2.imwrite(str(hr / f'{name}.png'), getattr(skimage.data, name)()[:, :, ::-1])
    out = work / 'pool'
    prepare(hr, out, PrepareConfig(crop=48, step=192, thresh=24, scales=(2,)), lmdb=True, workers=2, progress=False)
    return out


def epoch_starts(pool: Path, epochs: int, disable: str) -> list[float]:
    """First-batch times of ``epochs`` epochs in a fresh forkserver process, with the fixes in ``disable`` off."""
    env = {**os.environ, 'SRPRUNE_COMPAT_DISABLE': disable, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, '-c', CHILD, str(pool), str(epochs)], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--work', default=None, help='a new or empty folder for the pool (default: a temporary one)')
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix='bench_loader_workers-'))
    if work.exists() and any(work.iterdir()):
        parser.error(f'--work {work} is not empty; give a new or empty folder')
    pool = make_pool(work)
    times = {name: epoch_starts(pool, args.epochs, disable) for name, disable in
             (('forkserver workers (fix off)', 'fork_workers'), ('fork workers (fork_workers)', ''))}
    for name, values in times.items():
        print(f'{name:30s} first batch of an epoch: median {statistics.median(values):.3f} s '
              f'(range {min(values):.3f}-{max(values):.3f}, {len(values)} epochs)')
    off, on = (statistics.median(v) for v in times.values())
    print(f'ratio without / with the fix: {off / on:.1f}x')


if __name__ == '__main__':
    main()
