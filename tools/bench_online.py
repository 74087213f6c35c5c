"""Benchmark the per-step cost of ``prune_online:`` against the same training without the block.

Each round trains the calibrated CPU recipe (EDSR 4 x 32 x2, batch 8, 48 px, cosine LR, one thread,
no loader worker) on the pool of T91 sub-images of 48 px (scikit-image photos when ../shared is
absent) three ways, each in a fresh ``srprune train`` process, in an order that rotates per round:

- plain: no ``prune_online:`` block (BasicSR as it is, with the plugin);
- online, ratio 0: the whole machinery (per-sample pixel loss, records, the sampler, the epoch
  merges, the record file) with nothing left out, so the same steps as plain: the pure overhead;
- online, ratio 0.5: InfoBatch's default, fewer steps; its time per step.

The time of a run is the training loop's, between BasicSR's "Start training" and "End of training"
log lines; per step = that / the steps taken. Ratios are per round (online / plain of the same
round), reported as median [min-max]; the limit is 1.02 (2% overhead per step).

Usage:  python tools/bench_online.py [--iters 600] [--rounds 3] [--work NEW_FOLDER]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from bench_loader_workers import make_pool
from bench_stats import spread

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 1.02
SETTINGS = {'plain': None, 'online, ratio 0': {'ratio': 0.0}, 'online, ratio 0.5': {'ratio': 0.5}}
STAMP = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: (Start training|End of training)', re.M)


def options(pool: Path, name: str, iters: int, online: dict | None) -> dict:
    """The calibrated recipe as a BasicSR option file (from the shipped EDSR template)."""
    opt = yaml.safe_load((ROOT / 'options' / 'train' / 'train_EDSR_Mx2_pruned.yml').read_text())
    opt.update(name=name, manual_seed=0, num_gpu=0)
    opt['network_g'].update(num_feat=32, num_block=4, upscale=2)
    train = opt['datasets']['train']
    train.pop('prune', None)
    train.update(type='PairedImageDataset', dataroot_gt=str(pool / 'HR_sub.lmdb'), io_backend={'type': 'lmdb'},
                 dataroot_lq=str(pool / 'LR_bicubic_X2_sub.lmdb'), gt_size=48, batch_size_per_gpu=8,
                 num_worker_per_gpu=0, seeded_shuffle=True)
    opt['datasets'] = {'train': train}
    opt.pop('val', None)
    opt['train'].update(total_iter=iters, scheduler={'type': 'CosineAnnealingRestartLR', 'periods': [iters],
                                                     'restart_weights': [1], 'eta_min': 1e-7})
    opt['train']['optim_g']['lr'] = 1e-3
    opt['logger'].update(print_freq=100, save_checkpoint_freq=iters * 10, use_tb_logger=False)
    opt['path'] = {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None}
    if online is not None:
        opt['prune_online'] = dict(online)
    return opt


def train_seconds(work: Path, opt: dict) -> tuple[float, int]:
    """(seconds of the training loop, steps taken) of one fresh ``srprune train`` run."""
    path = work / f"{opt['name']}.yml"
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''}
    subprocess.run([sys.executable, '-m', 'srprune_basicsr', 'train', '-opt', path.name], cwd=work, env=env,
                   check=True, capture_output=True, text=True)
    experiment = work / 'experiments' / opt['name']
    log = next(experiment.glob('train_*.log')).read_text()
    stamps = {kind: datetime.datetime.strptime(text, '%Y-%m-%d %H:%M:%S,%f') for text, kind in STAMP.findall(log)}
    seconds = (stamps['End of training'] - stamps['Start training']).total_seconds()
    record = experiment / 'prune_online.json'
    steps = json.loads(record.read_text())['totals']['steps'] if record.is_file() else opt['train']['total_iter']
    return seconds, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=600)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--work', default=None, help='a new or empty folder (default: a temporary one)')
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix='bench_online-'))
    if work.exists() and any(work.iterdir()):
        parser.error(f'--work {work} is not empty; give a new or empty folder')
    work.mkdir(parents=True, exist_ok=True)
    pool = make_pool(work)
    per_step: dict[str, list[float]] = {name: [] for name in SETTINGS}
    steps: dict[str, list[int]] = {name: [] for name in SETTINGS}
    names = list(SETTINGS)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            slug = re.sub(r'\W+', '_', name).strip('_')
            seconds, taken = train_seconds(work, options(pool, f'{slug}_r{round_}', args.iters, SETTINGS[name]))
            per_step[name].append(seconds / taken)
            steps[name].append(taken)
            print(f'round {round_}: {name:18s} {taken:5d} steps, {seconds:7.2f} s, '
                  f'{1000 * seconds / taken:.2f} ms/step', flush=True)
    print(f'\n{args.iters} iterations of the schedule, {args.rounds} rounds; median [min-max]:')
    for name in names:
        print(f'  {name:18s} steps {spread([float(s) for s in steps[name]], ".0f")}, '
              f'ms/step {spread([1000 * v for v in per_step[name]])}')
    for name in names[1:]:
        ratios = [a / b for a, b in zip(per_step[name], per_step['plain'], strict=True)]
        verdict = 'within' if max(ratios) <= LIMIT else ('median within' if statistics.median(ratios) <= LIMIT
                                                          else 'above')
        print(f'  per-step ratio {name} / plain: {spread(ratios, ".3f")} ({verdict} the {LIMIT:.2f} limit)')


if __name__ == '__main__':
    main()
