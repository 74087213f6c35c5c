"""Benchmark ``prune:`` on a large GT-only ``meta_info`` set: build the dataset and apply a selection.

A RealESRGANDataset over ``--samples`` entries listed by a meta_info file (DF2K+OST layout: two
sub-folders; the images themselves are never read to build a dataset, so none are written), and
a scores file for them. Timed, ``--repeats`` times in this process: BasicSR's ``build_dataset``
without ``prune:`` (the baseline), and with ``prune: {scores, keep_ratio: 0.5, drop_hardest: 0.05}``
(keying every sample, reading the scores, selecting). Printed: medians and spread, the ratio of the
two, and the peak Python memory of one pruned build (tracemalloc) against the unpruned one.

Usage: ``python tools/bench_prune_meta_info.py [--samples 100000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

import srprune_basicsr  # noqa: F401  (registers the hooks)

KERNELS = ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']


def make_inputs(folder: Path, samples: int) -> tuple[Path, Path]:
    from srprune_basicsr.formats.scores import write_scores

    half = samples // 2
    rel = [f'DF2K_HR_sub/{i // 40:06d}_s{i % 40 + 1:03d}' for i in range(half)]
    rel += [f'OST/{i // 40:06d}_s{i % 40 + 1:03d}' for i in range(samples - half)]
    meta = folder / 'meta_info.txt'
    meta.write_text(''.join(f'{r}.png (480,480,3)\n' for r in rel))
    scores = write_scores(folder / 'scores.csv', rel, np.random.default_rng(0).random(samples), method='bench')
    return meta, scores


def options(folder: Path, meta: Path, prune: dict | None) -> dict:
    opt = dict(name='bench', type='RealESRGANDataset', dataroot_gt=str(folder), meta_info=str(meta), phase='train',
               scale=4, io_backend={'type': 'disk'}, blur_kernel_size=21, kernel_list=KERNELS,
               kernel_prob=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03], sinc_prob=0.1, blur_sigma=[0.2, 3],
               betag_range=[0.5, 4], betap_range=[1, 2], blur_kernel_size2=21, kernel_list2=KERNELS,
               kernel_prob2=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03], sinc_prob2=0.1, blur_sigma2=[0.2, 1.5],
               betag_range2=[0.5, 4], betap_range2=[1, 2], final_sinc_prob=0.8, gt_size=256, use_hflip=True,
               use_rot=False)
    if prune:
        opt['prune'] = prune
    return opt


def timed_build(opt: dict, repeats: int) -> tuple[list[float], int]:
    from basicsr.data import build_dataset

    times, length = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        length = len(build_dataset(dict(opt)))
        times.append(time.perf_counter() - start)
    return times, length


def peak_mib(opt: dict) -> float:
    from basicsr.data import build_dataset

    tracemalloc.start()
    dataset = build_dataset(dict(opt))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del dataset
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--samples', type=int, default=100_000)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    import logging

    logging.getLogger('basicsr').setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        meta, scores = make_inputs(folder, args.samples)
        plain, pruned = options(folder, meta, None), options(
            folder, meta, {'scores': str(scores), 'keep_ratio': 0.5, 'drop_hardest': 0.05})
        base, total = timed_build(plain, args.repeats)
        with_prune, kept = timed_build(pruned, args.repeats)
        base_mem, prune_mem = peak_mib(plain), peak_mib(pruned)
    med_base, med_prune = statistics.median(base), statistics.median(with_prune)
    print(f'{args.samples} meta_info entries, {args.repeats} builds each; kept {kept} of {total}\n')
    print('| build | median s | min-max s | peak Python MiB |\n|---|---|---|---|')
    print(f'| RealESRGANDataset, no prune: | {med_base:.3f} | {min(base):.3f}-{max(base):.3f} | {base_mem:.1f} |')
    print(f'| with prune: (scores, keep 50%) | {med_prune:.3f} | {min(with_prune):.3f}-{max(with_prune):.3f} '
          f'| {prune_mem:.1f} |')
    print(f'\nprune: adds {med_prune - med_base:.3f} s ({med_prune / med_base:.1f}x the plain build), '
          f'{(med_prune - med_base) / args.samples * 1e6:.1f} us per sample')


if __name__ == '__main__':
    main()
