"""Distil the shared training images on CPU (pixel and latent space) and train a target on each set.

Everything runs through the CLI and the shipped option files (paths and budgets changed with
their values below), as a user would:

1. ``srprune prepare``: T91 + BSD200 -> x2 sub-image LMDBs (crop 96, step 48, thresh 24); Set5 and
   Set14 in BasicSR's benchmark layout.
2. ``options/distill/train_prior_ae.yml``: the latent prior (SRPriorAE) on the sub-images.
3. ``options/distill/distill_pixel_x2.yml`` and ``distill_latent_x2.yml``: one synthetic image per
   source image (one group per source image), FSRCNN as the matching network (cheap on CPU).
4. ``options/train/train_FSRCNN_x2.yml`` trained with the same iterations on: the full set, a random
   subset of as many sub-images as there are synthetic images, the pixel set, the latent set.

Prints one table (Y-PSNR on Set5 and Set14, storage of each training set) and writes it to
``<work>/results.md``. Usage: ``python tools/experiment_distill_cpu.py [--work /tmp/distill_cpu]``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared' / 'data'
FSRCNN = {'type': 'FSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'd': 56, 's': 12, 'm': 4}


def cli(args: list[str], cwd: Path) -> None:
    start = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'srprune_basicsr', *args], cwd=cwd, check=True,
                   env=dict(os.environ, CUDA_VISIBLE_DEVICES=''), stdout=subprocess.DEVNULL)
    print(f"  {' '.join(args[:3])}: {time.perf_counter() - start:.0f} s", flush=True)


def option(path: Path, out: Path, edit: dict) -> Path:
    opt = yaml.safe_load(path.read_text())
    for key, value in edit.items():
        node = opt
        *parents, last = key.split(':')
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    out.write_text(yaml.safe_dump(opt, sort_keys=False))
    return out


def psnr(exp: Path) -> list[float]:
    log = sorted(exp.glob('train_*.log'))[-1].read_text()
    return [float(v) for v in re.findall(r'# psnr: ([0-9.]+)', log)][-2:]


def lmdb_bytes(path: Path) -> int:
    from srprune_basicsr.data.lmdb_tools import iter_values

    return sum(len(v) for _, v in iter_values(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', default='/tmp/distill_cpu')
    parser.add_argument('--distill-iters', type=int, default=30)
    parser.add_argument('--target-iters', type=int, default=2000)
    parser.add_argument('--prior-iters', type=int, default=1000)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    hr = work / 'hr'
    if not hr.is_dir():
        hr.mkdir()
        for name in ('T91', 'BSD200'):
            for p in sorted((SHARED / name / 'HR').iterdir()):
                (hr / f'{name}_{p.name}').symlink_to(p)
    data = work / 'train_sub'
    if not data.is_dir():
        cli(['prepare', '--hr', str(hr), '--out', str(data), '--scales', '2', '--crop', '96', '--step', '48',
             '--thresh', '24', '--lmdb'], work)
        for bench in ('Set5', 'Set14'):
            cli(['prepare', '--benchmark', '--hr', str(SHARED / bench / 'HR'), '--out', str(work / bench),
                 '--scales', '2'], work)
    gt, lq = data / 'HR_sub.lmdb', data / 'LR_bicubic_X2_sub.lmdb'
    common = {'num_gpu': 0, 'logger:use_tb_logger': False}

    prior = work / 'experiments' / 'prior_ae' / 'models' / 'net_g_latest.pth'
    if not prior.is_file():
        cli(['train', '-opt', str(option(REPO / 'options/distill/train_prior_ae.yml', work / 'prior.yml', {
            **common, 'datasets:train:dataroot_gt': str(gt), 'datasets:train:gt_size': 64,
            'datasets:train:num_worker_per_gpu': 1, 'train:total_iter': args.prior_iters,
            'train:scheduler:milestones': [args.prior_iters * 2], 'logger:save_checkpoint_freq': args.prior_iters}))],
            work)
    from srprune_basicsr.distill.grouping import source_of
    from srprune_basicsr.distill.real_images import training_keys

    keys = training_keys(gt, 'lmdb')
    groups = len({source_of(k) for k in keys})  # all groups matched at every iteration
    distill_edit = {**common, 'datasets:train:dataroot_gt': str(gt), 'datasets:train:batch_size_per_gpu': groups,
                    'network_match': FSRCNN, 'distill:crop': 48, 'distill:real_batch': 8,
                    'train:total_iter': args.distill_iters, 'logger:save_checkpoint_freq': args.distill_iters,
                    'logger:print_freq': 5}
    sets = {}
    for space in ('pixel', 'latent'):
        name = f'distill_{space}_x2'
        out = work / 'experiments' / name / 'distilled'
        if not (out / 'distilled.json').is_file():
            edit = dict(distill_edit)
            if space == 'latent':
                edit['path:pretrain_network_prior'] = str(prior)
            cli(['train', '-opt', str(option(REPO / f'options/distill/{name}.yml', work / f'{name}.yml', edit))],
                work)
        sets[f'distilled ({space})'] = (out / 'HR.lmdb', out / 'LR_bicubic_X2.lmdb', None)
    count = len(list((work / 'experiments' / 'distill_pixel_x2' / 'distilled' / 'HR').iterdir()))
    keep = work / 'random_keep.txt'
    keep.write_text('\n'.join(sorted(random.Random(0).sample(keys, count))) + '\n')
    sets = {'full': (gt, lq, None), f'random {count}': (gt, lq, str(keep)), **sets}

    rows = []
    for label, (set_gt, set_lq, keep_path) in sets.items():
        name = 'target_' + re.sub(r'[^a-z0-9]+', '_', label).strip('_')
        exp = work / 'experiments' / name
        if not list(exp.glob('models/net_g_latest.pth')):
            edit = {**common, 'name': name, 'datasets:train:dataroot_gt': str(set_gt),
                    'datasets:train:dataroot_lq': str(set_lq), 'datasets:train:gt_size': 48,
                    'datasets:train:num_worker_per_gpu': 1, 'datasets:val:name': 'Set5',
                    'datasets:val:dataroot_gt': str(work / 'Set5' / 'GTmod12'),
                    'datasets:val:dataroot_lq': str(work / 'Set5' / 'LRbicx2'),
                    'datasets:val_2': {'name': 'Set14', 'type': 'PairedImageDataset', 'io_backend': {'type': 'disk'},
                                       'dataroot_gt': str(work / 'Set14' / 'GTmod12'),
                                       'dataroot_lq': str(work / 'Set14' / 'LRbicx2')},
                    'train:total_iter': args.target_iters, 'train:scheduler:milestones': [args.target_iters // 2],
                    'train:optim_g:lr': 1e-3, 'val:val_freq': args.target_iters,
                    'logger:save_checkpoint_freq': args.target_iters}
            if keep_path:
                edit['datasets:train:type'] = 'PrunedPairedImageDataset'
                edit['datasets:train:prune'] = {'keep': keep_path}
            cli(['train', '-opt', str(option(REPO / 'options/train/train_FSRCNN_x2.yml', work / f'{name}.yml', edit))],
                work)
        stored = lmdb_bytes(set_gt) * (count / len(keys) if keep_path else 1)
        rows.append((label, *psnr(exp), stored / 2**20))
    full_mb = rows[0][3]
    lines = ['| training set | Set5 PSNR (Y) | Set14 PSNR (Y) | GT storage | share of full |', '|---|---|---|---|---|']
    lines += [f'| {label} | {s5:.2f} | {s14:.2f} | {mb:.2f} MiB | {mb / full_mb:.2%} |' for label, s5, s14, mb in rows]
    table = '\n'.join(lines)
    print(table)
    (work / 'results.md').write_text(table + '\n')


if __name__ == '__main__':
    main()
