"""Benchmark ``prune_tracking``: training time with tracking off / train_crop / fixed view, in one run.

Data: x2 sub-images of ../shared/data/T91 (crop 96, step 48), the first --samples of them, in
LMDBs. Each configuration builds the real BasicSR pieces (parse_options, create_train_val_dataloader,
build_model with the plugin's hook) and trains FSRCNN for --epochs epochs of BasicSR's loop body
(feed_data + optimize_parameters); the first epoch is warm-up and not timed. Configurations run
interleaved --repeats times; medians are reported as ratios to tracking off. The fixed view's
expected cost is 1 + (time of one snapshot pass) / (time of one untracked epoch), measured here too.

Then the history for --history-samples x --history-snapshots (default 1,000,000 x 100) is written
and scored, and the process's anonymous memory (RssAnon: RAM not backed by a file) is reported
against the history's size on disk.

Usage:  python tools/bench_tracking.py [--work /tmp/bench_tracking] [--data HR_DIR] [--samples 1024] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

# isort: off
import srprune_basicsr  # noqa: F401  (must precede basicsr: it installs the torchvision shim)
import basicsr.train
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.utils import get_root_logger, make_exp_dirs
from basicsr.utils.options import parse_options
# isort: on
from srprune_basicsr.formats.history import History
from srprune_basicsr.formats.lmdb import read_meta_info
from srprune_basicsr.prepare import PrepareConfig, prepare
from srprune_basicsr.rebuild import rebuild_lmdbs
from srprune_basicsr.scoring.dynamic_uncertainty import score_history

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data'
CONFIGS = {'off': None, 'train_crop': {'view': 'train_crop', 'window': 2},
           'fixed': {'view': 'fixed', 'window': 2, 'batch_size': 32}}


def make_data(work: Path, hr: Path, samples: int) -> tuple[Path, Path]:
    full = prepare(hr, work / 'full', PrepareConfig(crop=96, step=48, thresh=24, scales=(2,)),
                   lmdb=True, progress=False)
    keys = [e.key for e in read_meta_info(full.lmdbs['HR_sub'])][:samples]
    (work / 'keep.txt').write_text('\n'.join(keys) + '\n')
    rebuild_lmdbs(list(full.lmdbs.values()), work / 'keep.txt', work / 'subset', progress=False)
    return work / 'subset' / 'HR_sub.lmdb', work / 'subset' / 'LR_bicubic_X2_sub.lmdb'


def option_file(work: Path, name: str, gt: Path, lq: Path, tracking: dict | None, args: argparse.Namespace) -> Path:
    opt = {
        'name': name, 'model_type': 'SRModel', 'scale': 2, 'num_gpu': 1 if args.device == 'cuda' else 0,
        'manual_seed': 0,
        'datasets': {'train': {'name': 'T91_sub', 'type': 'PairedImageDataset', 'dataroot_gt': str(gt),
                               'dataroot_lq': str(lq), 'io_backend': {'type': 'lmdb'}, 'gt_size': 96,
                               'use_hflip': True, 'use_rot': True, 'num_worker_per_gpu': args.workers,
                               'batch_size_per_gpu': args.batch, 'dataset_enlarge_ratio': 1,
                               'prefetch_mode': 'cuda' if args.device == 'cuda' else None,
                               'pin_memory': args.device == 'cuda'}},
        'network_g': {'type': 'FSRCNN', 'upscale': 2},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [10**9], 'gamma': 0.5},
                  'total_iter': 10**6, 'warmup_iter': -1, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
        'logger': {'print_freq': 10**9, 'save_checkpoint_freq': 10**9, 'use_tb_logger': False},
        'dist_params': {'backend': 'nccl', 'port': 29500},
    }
    if tracking:
        opt['prune_tracking'] = tracking
    path = work / f'{name}.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def hook_cost(model: object, calls: int = 300) -> float:
    """Seconds per call of the train_crop recording alone (on the last batch), free of loader noise."""
    tracker = model.prune_tracker
    sync()
    start = time.perf_counter()
    for _ in range(calls):
        tracker._record_train_crop()
    sync()
    elapsed = (time.perf_counter() - start) / calls
    tracker.pending.clear()
    return elapsed


def time_config(work: Path, option: Path, epochs: int) -> tuple[float, float, int, float]:
    """Seconds per iteration over epochs 2..E, seconds per snapshot (0 without tracking), iterations per epoch,
    and for train_crop the seconds of its recording per iteration measured alone."""
    sys.argv = ['bench_tracking', '-opt', str(option)]
    opt, _ = parse_options(str(work), is_train=True)
    opt['train']['total_iter'] = 10**6
    make_exp_dirs(opt)
    logger = get_root_logger()
    loader, sampler, _, _, _ = basicsr.train.create_train_val_dataloader(opt, logger)
    model = basicsr.train.build_model(opt)
    tracker = getattr(model, 'prune_tracker', None)
    snapshot_time = []
    if tracker is not None:
        tracker.planned = 10**6 // tracker.every
        original = tracker.snapshot

        def timed(current_iter: int) -> None:
            start = time.perf_counter()
            original(current_iter)
            snapshot_time.append(time.perf_counter() - start)

        tracker.snapshot = timed
    prefetcher = CUDAPrefetcher(loader, opt) if opt['num_gpu'] else CPUPrefetcher(loader)
    current_iter, start, timed_iters = 0, 0.0, 0
    for epoch in range(epochs):
        if epoch == 1:
            sync()
            start = time.perf_counter()
        sampler.set_epoch(epoch)
        prefetcher.reset()
        data = prefetcher.next()
        while data is not None:
            current_iter += 1
            model.feed_data(data)
            model.optimize_parameters(current_iter)
            timed_iters += epoch >= 1
            data = prefetcher.next()
    sync()
    per_iter = (time.perf_counter() - start) / timed_iters
    alone = hook_cost(model) if tracker is not None and tracker.options.view == 'train_crop' else 0.0
    return per_iter, statistics.median(snapshot_time[1:] or snapshot_time or [0.0]), len(loader), alone


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def rss_anon_mib() -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('RssAnon:'):
            return int(line.split()[1]) / 1024
    return float('nan')


def history_memory(work: Path, samples: int, snapshots: int) -> None:
    before = rss_anon_mib()
    keys = [f'{i:08d}_s001' for i in range(samples)]
    history = History.create(work / 'history', keys, snapshots, {'view': 'fixed'})
    rng = np.random.default_rng(0)
    peak = before
    start = time.perf_counter()
    for s in range(snapshots):
        history.append(s + 1, 30 + rng.standard_normal(samples, dtype=np.float32), np.ones(samples, bool))
        peak = max(peak, rss_anon_mib())
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    scores, _ = score_history(History.open(work / 'history'), window=10, progress=False)
    score_s = time.perf_counter() - start
    peak = max(peak, rss_anon_mib())
    on_disk = sum(p.stat().st_size for p in (work / 'history').iterdir()) / 2**20
    print(f'\nhistory {samples:,} samples x {snapshots} snapshots: {on_disk:,.0f} MiB on disk; '
          f'anonymous RAM {before:,.0f} -> peak {peak:,.0f} MiB (+{peak - before:,.0f}); '
          f'write {write_s:.1f} s ({write_s / snapshots * 1000:.0f} ms/snapshot), score (J=10) {score_s:.1f} s; '
          f'{np.isfinite(scores).all()=}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', default='/tmp/bench_tracking')
    parser.add_argument('--data', default=str(SHARED / 'T91' / 'HR'), help='HR images (default: shared T91)')
    parser.add_argument('--samples', type=int, default=1024)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--epochs', type=int, default=3, help='per configuration; the first is warm-up')
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--history-samples', type=int, default=1_000_000)
    parser.add_argument('--history-snapshots', type=int, default=100)
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gt, lq = make_data(work, Path(args.data), args.samples)
    results: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in CONFIGS}
    for repeat in range(args.repeats):
        for name, tracking in CONFIGS.items():
            option = option_file(work, f'bench_{name}_{repeat}', gt, lq, tracking, args)
            results[name].append(time_config(work, option, args.epochs))
            gc.collect()  # closes the LMDB environments of this configuration before the next opens them
    base = statistics.median(r[0] for r in results['off'])
    per_epoch = results['off'][0][2]
    samples = len((gt / 'meta_info.txt').read_text().splitlines())
    print(f'\nFSRCNN x2, {samples} sub-images of 96 px, batch {args.batch}, {per_epoch} iterations/epoch, '
          f'device {args.device}, {args.workers} loader workers, median of {args.repeats}:')
    print(f"{'tracking':<12}{'ms/iter':>10}{'ratio':>8}")
    for name, runs in results.items():
        ms = statistics.median(r[0] for r in runs)
        print(f'{name:<12}{ms * 1000:>10.2f}{ms / base:>8.3f}')
    alone = statistics.median(r[3] for r in results['train_crop'])
    print(f'train_crop recording measured alone: {alone * 1000:.3f} ms per iteration = '
          f'{1 + alone / base:.3f}x of an untracked iteration')
    snapshot = statistics.median(r[1] for r in results['fixed'])
    print(f'fixed view: one snapshot pass {snapshot * 1000:.0f} ms; expected ratio 1 + snapshot/epoch = '
          f'{1 + snapshot / (base * per_epoch):.3f}')
    history_memory(work, args.history_samples, args.history_snapshots)


if __name__ == '__main__':
    main()
