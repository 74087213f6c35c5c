"""Benchmark gradient matching: time per group-match and peak memory per matching network, in one run.

Data: GT sub-images of 192 px (step 96) cut from --data (default ../shared/data/BSD200/HR) into an
LMDB; groups are their source images. For each matching network, SRDistillModel (built as
train_pipeline builds it) matches one group at a time: real batch 16, HR crop 192, x2, one
synthetic image per group. Reported: milliseconds per group-match (median of --repeats timed
blocks of --matches matches, after warm-up) and the peak GPU memory of a match. Each network is
also checked against a straightforward reference (the same steps written plainly with the DC
distance per layer): the distances must agree, and the time ratio is printed.

With --group-batches, the same matches are also timed with distill:group_batch G (G groups per
torch.func.vmap pass; 1 = the loop), --block group-matches per timed block, and the distances
compared with the loop's on the same draws.

Last, a full pass of --groups group-matches with the small network (EDSR 4 blocks x 32), with one
optimizer step per 64 groups as in training, is timed end to end.

Usage:  python tools/bench_distill.py [--data HR_DIR] [--device cuda|cpu] [--nets SRCNN FSRCNN EDSR4x32 EDSR16x64]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

# isort: off
import srprune_basicsr  # noqa: F401  (must precede basicsr: it installs the torchvision shim)
from basicsr.models import build_model
# isort: on
from srprune_basicsr.bicubic import imresize_tensor
from srprune_basicsr.distill.augment import Draw, augment_pair
from srprune_basicsr.prepare import PrepareConfig, prepare

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared' / 'data'
NETS = {
    'SRCNN': {'type': 'SRCNN', 'num_in_ch': 3, 'num_out_ch': 3},
    'FSRCNN': {'type': 'FSRCNN', 'num_in_ch': 3, 'num_out_ch': 3},
    'EDSR4x32': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 32, 'num_block': 4, 'img_range': 1.0},
    'EDSR16x64': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 16, 'img_range': 1.0},
}


def make_model(gt: Path, work: Path, net: dict, device: str, channels_last: bool, crop: int = 192,  # noqa: ANN201
               group_batch: int = 1):
    opt = yaml.safe_load((REPO / 'options' / 'distill' / 'distill_pixel_x2.yml').read_text())
    opt.update(name='bench', num_gpu=1 if device == 'cuda' else 0, network_match=net, is_train=True, dist=False,
               rank=0, world_size=1)
    opt['datasets']['train']['dataroot_gt'] = str(gt)
    opt['distill'].update(crop=crop, real_batch=16, flips=True, rotations=True, sheet_groups=0,
                          channels_last=channels_last, group_batch=group_batch)
    opt['path'] = {k: str(work / k) for k in ('models', 'visualization', 'training_states')}
    opt['path']['experiments_root'] = str(work)
    for k in ('models', 'visualization', 'training_states'):
        (work / k).mkdir(parents=True, exist_ok=True)
    return build_model(opt)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reference_distance(model, net: torch.nn.Module, group: int, rng: np.random.Generator) -> torch.Tensor:  # noqa: ANN001
    """The same match written plainly: per-layer loop, reshape, 1 - cos per output channel."""
    members = model.group_members[group]
    picks = rng.choice(members, 16, replace=len(members) < 16)
    draw = Draw.sample(rng)
    real_hr = model.real.batch(picks)
    real_hr, real_lr = augment_pair(real_hr, imresize_tensor(real_hr, 0.5), draw, 192, 2)
    params = list(net.parameters())
    real = torch.autograd.grad(F.l1_loss(net(real_lr), real_hr), params)
    syn_hr = model.syn.images(group)
    syn_hr, syn_lr = augment_pair(syn_hr, imresize_tensor(syn_hr, 0.5), draw, 192, 2)
    syn = torch.autograd.grad(F.l1_loss(net(syn_lr), syn_hr), params, create_graph=True)
    distance = 0
    for r, s in zip(real, syn, strict=True):
        if r.dim() == 1:
            continue
        r, s = r.reshape(r.shape[0], -1), s.reshape(s.shape[0], -1)
        distance = distance + torch.sum(1 - torch.sum(r * s, -1) / (r.norm(dim=-1) * s.norm(dim=-1) + 1e-6))
    distance.backward(inputs=[model.syn.data])
    return distance.detach()


def time_matches(model, net_name: str, matches: int, repeats: int, reference: bool) -> tuple[float, float]:  # noqa: ANN001
    """Median ms per group-match over ``repeats`` blocks, and peak memory (MiB) of a block."""
    net = model._matching_network(2, 1)
    params = [p for p in net.parameters() if p.requires_grad]
    groups = len(model.group_names)
    match = (lambda g, rng: reference_distance(model, net, g, rng)) if reference else (
        lambda g, rng: model.match_group(net, params, g, rng, 2))
    for g in range(3):  # warm-up (cuDNN autotuning, allocator)
        match(g % groups, np.random.default_rng(g))
    times = []
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    for r in range(repeats):
        rng = np.random.default_rng([7, r])
        sync()
        start = time.perf_counter()
        for m in range(matches):
            match(m % groups, rng)
        sync()
        times.append((time.perf_counter() - start) / matches * 1000)
        model.optimizer_syn.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float('nan')
    return statistics.median(times), peak


def same_distances(model) -> float:  # noqa: ANN001
    """Largest relative difference between our match and the reference on the same draws."""
    net = model._matching_network(2, 1)
    params = [p for p in net.parameters() if p.requires_grad]
    worst = 0.0
    for g in range(4):
        ours = float(model.match_group(net, params, g, np.random.default_rng([3, g]), 2))
        theirs = float(reference_distance(model, net, g, np.random.default_rng([3, g])))
        worst = max(worst, abs(ours - theirs) / abs(theirs))
    model.optimizer_syn.zero_grad(set_to_none=True)
    return worst


def time_group_batches(model, sizes: list[int], block: int, repeats: int) -> dict[int, tuple[float, float]]:  # noqa: ANN001
    """G -> (median ms per group-match over ``repeats`` blocks of ``block`` matches, max rel. diff to the loop)."""
    net = model._matching_network(2, 1)
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [m % len(model.group_names) for m in range(block)]
    results, reference = {}, None
    for size in sizes:
        model.options = dataclasses.replace(model.options, group_batch=size)
        model.match_batch(net, params, groups[:size], np.random.default_rng(0), 2)  # warm-up
        distances = model.match_batch(net, params, groups, np.random.default_rng([5]), 2)
        reference = distances if reference is None else reference
        times = []
        for r in range(repeats):
            rng = np.random.default_rng([7, r])
            sync()
            start = time.perf_counter()
            model.match_batch(net, params, groups, rng, 2)
            sync()
            times.append((time.perf_counter() - start) / block * 1000)
            model.optimizer_syn.zero_grad(set_to_none=True)
        diff = float(((distances - reference).abs() / reference.abs()).max())
        results[size] = (statistics.median(times), min(times), max(times), diff)
    model.options = dataclasses.replace(model.options, group_batch=1)
    return results


def profile(model) -> None:  # noqa: ANN001
    """Top operators by device time (CPU time on a CPU) over 10 matches."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    net = model._matching_network(2, 1)
    params = [p for p in net.parameters() if p.requires_grad]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with torch_profile(activities=activities) as prof:
        for g in range(10):
            model.match_group(net, params, g, np.random.default_rng(g), 2)
        sync()
    key = 'cuda_time_total' if torch.cuda.is_available() else 'cpu_time_total'
    print(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=60))


def full_pass(model, groups: int) -> float:  # noqa: ANN001
    """Seconds for ``groups`` group-matches with one optimizer step per 64 groups, as a training pass."""
    sync()
    start = time.perf_counter()
    done, iteration = 0, 0
    while done < groups:
        iteration += 1
        batch = [(done + i) % len(model.group_names) for i in range(min(64, groups - done))]
        model.feed_data({'group': torch.tensor(batch)})
        model.optimize_parameters(iteration)
        done += len(batch)
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', default=str(SHARED / 'BSD200' / 'HR'))
    parser.add_argument('--work', default='/tmp/bench_distill')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--nets', nargs='+', default=None, help=f'of {list(NETS)} (default: all on GPU, the '
                                                                 'first two on CPU)')
    parser.add_argument('--matches', type=int, default=None, help='per timed block (default 50 GPU, 4 CPU)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--groups', type=int, default=800, help='full pass size (GPU only)')
    parser.add_argument('--crop', type=int, default=192, help='HR crop of a match (48 is usable on a CPU)')
    parser.add_argument('--group-batches', type=int, nargs='*', default=[],
                        help='also time distill:group_batch G for these G (1 = the loop), e.g. 1 8 32')
    parser.add_argument('--block', type=int, default=32, help='group-matches per timed block of --group-batches')
    parser.add_argument('--skip-reference', action='store_true', help='time only --group-batches')
    parser.add_argument('--profile', action='store_true', help='print the top operators of 10 matches per network')
    parser.add_argument('--layouts', nargs='+', choices=['nchw', 'nhwc'], default=['nhwc'],
                        help='memory formats to measure (distill:channels_last false / true)')
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    result = prepare(args.data, work / 'data', PrepareConfig(crop=192, step=96, thresh=0, scales=(2,)), lmdb=True,
                     progress=False)
    gt = result.lmdbs['HR_sub']
    gpu = args.device == 'cuda'
    nets = args.nets or (list(NETS) if gpu else ['SRCNN', 'FSRCNN'])
    matches = args.matches or (50 if gpu else 4)
    device_name = torch.cuda.get_device_name() if gpu else 'CPU'
    print(f'\n{result.sub_images} sub-images of 192 px from {result.images} images; x2, real batch 16, '
          f'HR crop {args.crop}, '
          f'{device_name}, median of {args.repeats} x {matches} matches')
    if gpu:
        print(f'TF32: cudnn {torch.backends.cudnn.allow_tf32}, matmul {torch.backends.cuda.matmul.allow_tf32}')
    print(f"{'network':<17}{'ms/group':>10}{'reference':>11}{'ratio':>7}{'peak MiB':>10}{'max rel. diff':>15}")
    for name, layout in [(n, lay) for n in nets for lay in args.layouts]:
        model = make_model(gt, work / f'{name}_{layout}', NETS[name], args.device, layout == 'nhwc', args.crop)
        if args.group_batches:
            for size, (median, low, high, diff) in time_group_batches(model, args.group_batches, args.block,
                                                                     args.repeats).items():
                loop = 'the loop' if size == 1 else f'vmap, {size} groups per pass'
                print(f'{name + " " + layout:<17}G={size:<3} {median:9.2f} ms/group [{low:.2f}-{high:.2f}] '
                      f'({loop}); max rel. diff of the distances to the loop {diff:.1e}', flush=True)
        if args.skip_reference:
            continue
        ours, peak = time_matches(model, name, matches, args.repeats, reference=False)
        ref, _ = time_matches(model, name, matches, args.repeats, reference=True)
        diff = same_distances(model)
        if args.profile:
            profile(model)
        print(f'{name + " " + layout:<17}{ours:>10.2f}{ref:>11.2f}{ref / ours:>7.2f}{peak:>10.0f}{diff:>15.2e}')
        if name == 'EDSR4x32' and gpu:
            seconds = full_pass(model, args.groups)
            print(f'full pass, {args.groups} group-matches of EDSR4x32 (+ a step per 64 groups): {seconds:.2f} s')
        del model
        if gpu:
            torch.cuda.empty_cache()


if __name__ == '__main__':
    main()
