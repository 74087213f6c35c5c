"""Benchmark `srprune score` against the limit set by reading and by the proxy's forward pass, in one run.

Data: x2 sub-image LMDBs of ../shared/data (T91 + BSD200 + DIV2K_valid_crop256, crop 96, step 48),
the first --samples pairs. Measured in the same process, one after another:
  (a) read + decode: the deterministic dataset pass alone (BasicSR's PairedImageDataset, LMDB),
  (b) forward: the proxy on tensors already in memory, batch --batch,
  (c) srprune score: the whole scoring run (run_scoring, which reads, batches, infers and writes).
On a CPU (a) and (b) share the cores, so the limit is 1 / (1/a + 1/b); the figure of merit is c / limit.
All three are measured again in each of --repeats rounds (a, b, c back to back, so a round's ratio is
taken under one load), and the summary gives the median and [min-max] over rounds.

Usage:  python tools/bench_score.py [--work /tmp/bench_score] [--samples 3000] [--arch SRCNN FSRCNN]
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch
from bench_stats import spread

# isort: off
import srprune_basicsr  # noqa: F401  (must precede basicsr: it installs the torchvision shim)
from basicsr.archs import build_network
# isort: on
from srprune_basicsr.formats.lmdb import read_meta_info
from srprune_basicsr.prepare import PrepareConfig, prepare
from srprune_basicsr.rebuild import rebuild_lmdbs
from srprune_basicsr.scoring.runner import build_score_dataset, run_scoring

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data'
SETS = ('T91', 'BSD200', 'DIV2K_valid_crop256')


def make_data(work: Path, samples: int) -> dict:
    hr = work / 'hr'
    hr.mkdir(parents=True)
    for name in SETS:
        for path in sorted((SHARED / name / 'HR').iterdir()):
            (hr / path.name).symlink_to(path)
    full = prepare(hr, work / 'full', PrepareConfig(crop=96, step=48, thresh=24, scales=(2,)), lmdb=True,
                   progress=False)
    keys = [e.key for e in read_meta_info(full.lmdbs['HR_sub'])][:samples]
    (work / 'keep.txt').write_text('\n'.join(keys) + '\n')
    rebuild_lmdbs(list(full.lmdbs.values()), work / 'keep.txt', work / 'subset', progress=False)
    return {'name': 'bench', 'type': 'PairedImageDataset', 'io_backend': {'type': 'lmdb'},
            'dataroot_gt': str(work / 'subset' / 'HR_sub.lmdb'),
            'dataroot_lq': str(work / 'subset' / 'LR_bicubic_X2_sub.lmdb')}


def read_rate(opt: dict) -> float:
    dataset = build_score_dataset(opt)
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    return len(dataset) / (time.perf_counter() - start)


@torch.inference_mode()
def forward_rate(net: torch.nn.Module, batch: int, repeats: int) -> float:
    net = net.eval().to(memory_format=torch.channels_last)
    lq = torch.rand(batch, 3, 48, 48).contiguous(memory_format=torch.channels_last)
    net(lq)
    start = time.perf_counter()
    for _ in range(repeats):
        net(lq)
    return batch * repeats / (time.perf_counter() - start)


def score_round(opt: dict, arch: str, work: Path, samples: int, batch: int, index: int) -> dict[str, float]:
    """One round for one proxy: (a) read rate, (b) forward rate, the limit and (c) srprune score's rate."""
    decode = read_rate(opt)
    torch.manual_seed(0)
    net = build_network({'type': arch, 'upscale': 2})
    torch.save({'params': net.state_dict()}, work / f'{arch}.pth')
    forward = forward_rate(net, batch, max(2, 400 // batch))
    limit = 1 / (1 / decode + 1 / forward)
    run = dict(opt, method='loss_value', network_g={'type': arch, 'upscale': 2},
               path={'pretrain_network_g': str(work / f'{arch}.pth')}, score={'batch_size': batch})
    start = time.perf_counter()
    run_scoring(run, work / f'scores_{arch}_{index}.csv', progress=False)
    score = samples / (time.perf_counter() - start)
    return {'read': decode, 'forward': forward, 'limit': limit, 'score': score, 'ratio': score / limit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', default='/tmp/bench_score')
    parser.add_argument('--samples', type=int, default=3000)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--arch', nargs='+', default=['FSRCNN', 'SRCNN'])
    parser.add_argument('--repeats', type=int, default=3, help='rounds; the summary gives median [min-max]')
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    dataset = make_data(work, args.samples)
    opt = {'name': 'bench', 'scale': 2, 'num_gpu': 0, 'dataset': dataset}
    print(f'{args.samples} x2 pairs (96 px GT), {torch.get_num_threads()} torch threads, batch {args.batch}, '
          f'{args.repeats} rounds')
    rounds: dict[str, list[dict[str, float]]] = {arch: [] for arch in args.arch}
    for i in range(args.repeats):
        for arch in args.arch:
            r = score_round(opt, arch, work, args.samples, args.batch, i)
            rounds[arch].append(r)
            print(f'round {i + 1} {arch}: (a) read + decode {r["read"]:6.0f} pairs/s, (b) forward {r["forward"]:6.0f} '
                  f'pairs/s, limit 1/(1/a+1/b) {r["limit"]:6.0f}/s, (c) srprune score {r["score"]:6.0f} pairs/s '
                  f'= {r["ratio"]:.2f} x limit')
    for arch, rs in rounds.items():
        field = {k: [r[k] for r in rs] for k in rs[0]}
        print(f'{arch} median [min-max] over {len(rs)} rounds: (a) {spread(field["read"], ".0f")}, (b) '
              f'{spread(field["forward"], ".0f")}, limit {spread(field["limit"], ".0f")}, (c) '
              f'{spread(field["score"], ".0f")} pairs/s, c / limit {spread(field["ratio"])}')


if __name__ == '__main__':
    main()
