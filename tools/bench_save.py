"""Benchmark atomic checkpoint saves (the ``atomic_saves`` fix) against BasicSR's plain ``torch.save``, in one run.

For the weights of three networks (SRCNN, EDSR-baseline, RRDBNet as in Real-ESRGAN) and RRDBNet's
training state (weights + Adam moments), each round saves the same object twice into the same
folder, alternating the order: once with ``torch.save`` onto its final name (BasicSR's way, no
sync), once with ``compat.save_checkpoint`` (temporary beside it, fsync, read back against the zip
CRCs, rename). Prints the extra milliseconds and the ratio, median [min-max] over the rounds.

Usage:  python tools/bench_save.py [--rounds 7] [--work /tmp/bench_save]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stats import spread  # noqa: E402

import srprune_basicsr  # noqa: E402,F401  (plugs BasicSR in)
from srprune_basicsr._basicsr.compat import save_checkpoint  # noqa: E402


def objects() -> dict[str, dict]:
    """What BasicSR saves: ``{'params': state_dict}`` per network, and a training state with optimizer moments."""
    from basicsr.archs import build_network

    nets = {'SRCNN x2': {'type': 'SRCNN', 'upscale': 2},
            'EDSR-baseline x2': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 16,
                                 'upscale': 2, 'res_scale': 1, 'img_range': 255.0,
                                 'rgb_mean': [0.4488, 0.4371, 0.4040]},
            'RRDBNet x4': {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 23,
                           'num_grow_ch': 32}}
    out = {}
    for name, opt in nets.items():
        net = build_network(opt)
        out[f'{name} weights'] = {'params': net.state_dict()}
    net = build_network(nets['RRDBNet x4'])
    optim = torch.optim.Adam(net.parameters())
    net(torch.rand(1, 3, 8, 8)).mean().backward()
    optim.step()
    out['RRDBNet x4 training state'] = {'epoch': 1, 'iter': 1000, 'optimizers': [optim.state_dict()],
                                        'schedulers': []}
    return out


def timed(save: object, obj: dict, path: Path) -> float:
    start = time.perf_counter()
    save(obj, path)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--work', default='/tmp/bench_save')
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f'{"object":28} {"MB":>6} {"torch.save ms":>16} {"atomic ms":>16} {"extra ms":>16} {"ratio":>18}')
    for name, obj in objects().items():
        plain, atomic = [], []
        for round_ in range(args.rounds):
            order = [('plain', torch.save), ('atomic', save_checkpoint)]
            for kind, save in order if round_ % 2 == 0 else order[::-1]:
                (plain if kind == 'plain' else atomic).append(timed(save, obj, work / f'{kind}.pth'))
        size = (work / 'atomic.pth').stat().st_size / 1e6
        extra = [1000 * (a - p) for a, p in zip(atomic, plain, strict=True)]
        ratio = [a / p for a, p in zip(atomic, plain, strict=True)]
        print(f'{name:28} {size:6.1f} {spread([1000 * p for p in plain], ".1f"):>16} '
              f'{spread([1000 * a for a in atomic], ".1f"):>16} {spread(extra, ".1f"):>16} {spread(ratio):>18}')
    shutil.rmtree(work)


if __name__ == '__main__':
    main()
