"""Scale benchmark: prepare, score, select, rebuild and `prune:` on DIV2K-size images at 1x, 2x and 4x a base size.

Data: mosaics of the shared photos (T91, BSD200, DIV2K_valid_crop256) tiled to 2040 x 1404 px, DIV2K's
width: 10 x 6 cells of 204 x 234 px, each a crop of one photo at its own resolution (never upsampled),
drawn with a fixed seed. Cut like DIV2K (crop 480, step 240, thresh 48: 5 x 8 = 40 sub-images per image,
as DIV2K averages 40.7).

Each stage runs in a fresh process; its time is the library call alone (no interpreter start-up) and its
peak memory the largest resident set of that process and of the workers it started:
  prepare       srprune prepare --lmdb, x2/x3/x4 (GT + three LQ LMDBs)
  score bicubic bicubic_psnr on the x2 pairs
  score FSRCNN  loss_value with an FSRCNN x4 proxy (random weights: the speed does not depend on them)
  select        the band of Moser et al.: keep 50%, drop the hardest 5%, from the FSRCNN scores
  rebuild       the kept 50% of all four LMDBs (median of --repeats), against cp -r of the four + sync,
                scaled to the kept share (median of --repeats); both from a warm page cache, in
                alternating order
  prune         BasicSR's build_dataset of a PairedImageDataset with a prune: block (scores + band)
At the base size also, on the same mosaics and the same number of processes, --repeats rounds of prepare,
the limit and BasicSR's way back to back (so each round's ratios are taken under one load):
  limit         decode every HR once, MATLAB bicubic once per HR and scale, encode every sub-image once at
                PNG level 1 (what `prepare --lmdb` must do), nothing written; timed once the pool is up
  BasicSR       extract_subimages (BasicSR's worker) over the HR and pre-made LR folders (LR making not
                timed: DIV2K ships it), then make_lmdb_from_imgs per folder; keys and pixels compared

Usage:  python tools/bench_scale.py [--base 24] [--sizes 1 2 4] [--work /tmp/bench_scale] [--workers 2]
        [--repeats 3] [--csv docs/results/bench_scale/bench_scale.csv]
        [--plot docs/results/bench_scale/bench_scale.png]
        python tools/bench_scale.py --profile N   (only where the limit's time goes per image, on N mosaics)
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from bench_stats import spread

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared' / 'data'
SETS = ('T91', 'BSD200', 'DIV2K_valid_crop256')
CELL_W, CELL_H, COLS, ROWS = 204, 234, 10, 6  # 2040 x 1404
CROP, STEP, THRESH, SCALES = 480, 240, 48, (2, 3, 4)
SEED = 0


# --------------------------------------------------------------------------------------------- data
def photo_cells(seed: int = SEED) -> list[Path]:
    """The shared photos large enough for a cell, in a seeded order."""
    from PIL import Image

    paths = []
    for name in SETS:
        for path in sorted((SHARED / name / 'HR').iterdir()):
            with Image.open(path) as img:
                if img.size[0] >= CELL_W and img.size[1] >= CELL_H:
                    paths.append(path)
    rng = np.random.default_rng(seed)
    return [paths[i] for i in rng.permutation(len(paths))]


def make_mosaics(folder: Path, count: int) -> list[Path]:
    """``count`` mosaics of 2040 x 1404 (made once, reused by later runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = photo_cells()
    rng = np.random.default_rng(SEED + 1)
    out = []
    for m in range(count):
        path = folder / f'mosaic_{m:04d}.png'
        cells = [photos[(m * COLS * ROWS + c) % len(photos)] for c in range(COLS * ROWS)]
        offsets = rng.random((COLS * ROWS, 2))
        if not path.exists():
            mosaic = np.zeros((CELL_H * ROWS, CELL_W * COLS, 3), np.uint8)
            for c, (photo, (u, v)) in enumerate(zip(cells, offsets, strict=True)):
                img = cv2.imread(str(photo), cv2.IMREAD_COLOR)
                top, left = int(u * (img.shape[0] - CELL_H)), int(v * (img.shape[1] - CELL_W))
                y, x = (c // COLS) * CELL_H, (c % COLS) * CELL_W
                mosaic[y:y + CELL_H, x:x + CELL_W] = img[top:top + CELL_H, left:left + CELL_W]
            tmp = path.with_suffix('.partial.png')
            cv2.imwrite(str(tmp), mosaic, [cv2.IMWRITE_PNG_COMPRESSION, 3])
            tmp.rename(path)
        out.append(path)
    return out


def hr_folder(work: Path, mosaics: list[Path], count: int) -> Path:
    """A folder of symlinks to the first ``count`` mosaics."""
    folder = work / f'hr_{count}'
    if not folder.exists():
        folder.mkdir()
        for path in mosaics[:count]:
            (folder / path.name).symlink_to(path)
    return folder


# ------------------------------------------------------------------------------------------ stages
def stage_prepare(hr: str, out: str, workers: int) -> dict:
    from srprune_basicsr.prepare import PrepareConfig, prepare

    result = prepare(hr, out, PrepareConfig(crop=CROP, step=STEP, thresh=THRESH, scales=SCALES), lmdb=True,
                     workers=workers, progress=False)
    return {'sub_images': result.sub_images}


def paired(data: str, scale: int) -> dict:
    return {'name': 'scale', 'type': 'PairedImageDataset', 'io_backend': {'type': 'lmdb'},
            'dataroot_gt': f'{data}/HR_sub.lmdb', 'dataroot_lq': f'{data}/LR_bicubic_X{scale}_sub.lmdb'}


def stage_score(data: str, out: str, method: str) -> dict:
    import torch

    from srprune_basicsr.scoring.runner import run_scoring

    if method == 'bicubic_psnr':
        opt = {'name': 'scale', 'scale': 2, 'num_gpu': 0, 'method': method, 'dataset': paired(data, 2)}
    else:
        from basicsr.archs import build_network

        torch.manual_seed(0)
        proxy = Path(out).with_suffix('.pth')
        torch.save({'params': build_network({'type': 'FSRCNN', 'upscale': 4}).state_dict()}, proxy)
        opt = {'name': 'scale', 'scale': 4, 'num_gpu': 0, 'method': 'loss_value', 'dataset': paired(data, 4),
               'network_g': {'type': 'FSRCNN', 'upscale': 4}, 'path': {'pretrain_network_g': str(proxy)},
               'score': {'batch_size': 16}}
    run_scoring(opt, out, progress=False)
    return {}


def stage_select(scores: str, out: str) -> dict:
    from srprune_basicsr.formats.scores import read_scores
    from srprune_basicsr.selection import SelectionRule, select_keys, write_selection

    rule = SelectionRule(keep_ratio=0.5, drop_hardest=0.05)
    table = read_scores(scores)
    kept = select_keys(table.keys, table.values, rule)
    write_selection(out, kept, len(table), rule, scores)
    return {'kept': len(kept)}


def warm(paths: list[str]) -> None:
    """Read every file under ``paths`` once and flush pending writes, so each timed copy starts alike."""
    for path in paths:
        for f in sorted(Path(path).iterdir()):
            with open(f, 'rb') as handle:
                while handle.read(1 << 24):
                    pass
    os.sync()


def stage_rebuild(data: str, keep: str, out: str, repeats: int) -> dict:
    """Our rebuild and cp -r + sync of the four LMDBs, ``repeats`` rounds, each from a warm page cache.

    The order inside a round alternates (ours first, then cp first), so neither side always pays
    for the other's writeback.
    """
    from srprune_basicsr.formats.lmdb import read_meta_info
    from srprune_basicsr.rebuild import rebuild_lmdbs

    sources = [f'{data}/HR_sub.lmdb'] + [f'{data}/LR_bicubic_X{s}_sub.lmdb' for s in SCALES]
    share = len(Path(keep).read_text().split()) / len(read_meta_info(sources[0]))
    ours, copies = [], []

    def run_ours(i: int) -> None:
        warm(sources)
        start = time.perf_counter()
        rebuild_lmdbs(sources, keep, f'{out}{i}', progress=False)
        ours.append(time.perf_counter() - start)

    def run_cp(i: int) -> None:
        copy = Path(f'{out}_cp{i}')
        copy.mkdir()
        warm(sources)
        start = time.perf_counter()
        subprocess.run(['cp', '-r', *sources, str(copy)], check=True)
        os.sync()
        copies.append((time.perf_counter() - start) * share)
        shutil.rmtree(copy)

    for i in range(repeats):
        for run in ((run_ours, run_cp) if i % 2 == 0 else (run_cp, run_ours)):
            run(i)
        if i:
            shutil.rmtree(f'{out}{i}')
    return {'runs': ours, 'cp_scaled_runs': copies, 'seconds': statistics.median(ours),
            'cp_scaled': statistics.median(copies),
            'ratios': [a / b for a, b in zip(ours, copies, strict=True)]}


def stage_prune(data: str, scores: str) -> dict:
    from basicsr.data import build_dataset

    import srprune_basicsr  # noqa: F401  (registers the prune: hook before basicsr builds datasets)

    opt = dict(paired(data, 2), phase='train', scale=2, gt_size=96, use_hflip=True, use_rot=True,
               prune={'scores': scores, 'keep_ratio': 0.5, 'drop_hardest': 0.05})
    return {'samples': len(build_dataset(opt))}


def _encode(img: np.ndarray) -> int:
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return len(buf)


def limit_job(path: Path, parts: dict[str, float] | None = None) -> int:
    """The work prepare cannot avoid for one HR image: decode, bicubic per scale, encode every sub-image.

    With ``parts``, the seconds of each part are added to it (decode, bicubic xS, encode xS).
    """
    from srprune_basicsr.bicubic import imresize_uint8
    from srprune_basicsr.prepare import crop_positions, mod_crop

    parts = {} if parts is None else parts

    def timed(name: str, fn: object, *args: object) -> object:
        start = time.perf_counter()
        result = fn(*args)
        parts[name] = parts.get(name, 0.0) + time.perf_counter() - start
        return result

    hr = timed('decode', lambda: mod_crop(cv2.imread(str(path), cv2.IMREAD_COLOR), 12))
    images = [(hr, 1)] + [(timed(f'bicubic x{s}', imresize_uint8, hr, 1 / s), s) for s in SCALES]
    total = 0
    for y in crop_positions(hr.shape[0], CROP, STEP, THRESH):
        for x in crop_positions(hr.shape[1], CROP, STEP, THRESH):
            for img, s in images:
                c = CROP // s
                total += timed(f'encode x{s}', _encode, img[y // s:y // s + c, x // s:x // s + c])
    return total


def profile_limit(mosaics: list[Path]) -> None:
    """Where one worker's time goes: the limit's parts per image, one BLAS and one OpenCV thread."""
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    parts: dict[str, float] = {}
    with threadpool_limits(1):
        for path in mosaics:
            limit_job(path, parts)
    total = sum(parts.values())
    print(f'the limit on {len(mosaics)} mosaics, one thread, seconds per image:')
    for name, seconds in parts.items():
        print(f'  {name:<12}{seconds / len(mosaics):7.3f} s  {100 * seconds / total:5.1f}%')
    print(f'  {"total":<12}{total / len(mosaics):7.3f} s')


def _pool_init() -> None:
    cv2.setNumThreads(1)  # as prepare's workers; the resize pins its BLAS to one thread itself


def stage_limit(hr: str, workers: int) -> dict:
    files = sorted(Path(hr).iterdir())
    with multiprocessing.get_context('spawn').Pool(workers, initializer=_pool_init) as pool:
        pool.map(_pool_init_probe, range(workers))  # workers up and imports done before the clock starts
        start = time.perf_counter()
        total = sum(pool.imap(limit_job, files))
        seconds = time.perf_counter() - start
    return {'seconds': seconds, 'encoded_bytes': total}


def _pool_init_probe(_: int) -> None:
    import srprune_basicsr.bicubic  # noqa: F401
    import srprune_basicsr.prepare  # noqa: F401


def stage_basicsr(hr: str, work: str, workers: int) -> dict:
    """BasicSR's way from pre-made LR images (made first, untimed); the timed part is returned."""
    sys.path.insert(0, str(REPO / 'tools'))
    import bench_lmdb  # its BasicSR worker and pipeline, with this benchmark's crop

    from srprune_basicsr.prepare import PrepareConfig

    bench_lmdb.CFG = PrepareConfig(crop=CROP, step=STEP, thresh=THRESH, scales=SCALES)
    inputs = bench_lmdb.make_basicsr_inputs(Path(hr), Path(work))
    os.sync()
    start = time.perf_counter()
    lmdbs = bench_lmdb.timed(bench_lmdb.basicsr_prepare, inputs, Path(work), workers)[1]
    seconds = time.perf_counter() - start
    return {'seconds': seconds, 'lmdbs': {k: str(v) for k, v in lmdbs.items()}}


STAGES = {'prepare': stage_prepare, 'score': stage_score, 'select': stage_select, 'rebuild': stage_rebuild,
          'prune': stage_prune, 'limit': stage_limit, 'basicsr': stage_basicsr}


def run_in_process(stage: str, **kwargs: object) -> dict:
    """Run one stage in a fresh interpreter; returns its result with seconds and peak RSS (MiB)."""
    proc = subprocess.run([sys.executable, __file__, '--stage', stage, json.dumps(kwargs)], capture_output=True,
                          text=True)
    if proc.returncode:
        raise RuntimeError(f'stage {stage} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


class MemorySampler:
    """Peak anonymous and file-backed resident memory of this process, sampled from /proc every 10 ms.

    ``ru_maxrss`` counts the LMDB pages a stage maps (file-backed, reclaimable) together with the
    memory it allocates; the split shows which one grows with the data.
    """

    def __init__(self) -> None:
        import threading

        self.peak = {'RssAnon': 0, 'RssFile': 0}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self) -> None:
        with open('/proc/self/status') as status:
            for line in status:
                name = line.split(':')[0]
                if name in self.peak:
                    self.peak[name] = max(self.peak[name], int(line.split()[1]) // 1024)

    def run(self) -> None:
        while not self.stop.wait(0.01):
            self.sample()

    def __enter__(self) -> MemorySampler:
        if Path('/proc/self/status').exists():
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
            self.sample()


def stage_main(stage: str, kwargs: str) -> None:
    """Child side of ``run_in_process``: import, time the call, report peak RSS of self and workers."""
    import srprune_basicsr  # noqa: F401  (import cost is not the stage's)

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with MemorySampler() as memory:
        start = time.perf_counter()
        result = STAGES[stage](**json.loads(kwargs))
        seconds = time.perf_counter() - start
    result.setdefault('seconds', seconds)
    result['rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result['workers_rss_mib'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result['import_rss_mib'] = base_rss
    result['anon_mib'], result['file_mib'] = memory.peak['RssAnon'], memory.peak['RssFile']
    print(json.dumps(result))


# ------------------------------------------------------------------------------------------- report
def same_pixels(ours: Path, theirs: Path) -> bool:
    from srprune_basicsr.formats.lmdb import iter_values

    a, b = dict(iter_values(ours)), dict(iter_values(theirs))
    return set(a) == set(b) and all(np.array_equal(cv2.imdecode(np.frombuffer(a[k], np.uint8), cv2.IMREAD_UNCHANGED),
                                                   cv2.imdecode(np.frombuffer(b[k], np.uint8), cv2.IMREAD_UNCHANGED))
                                    for k in a)


def bench_size(work: Path, hr: Path, count: int, workers: int, repeats: int) -> list[dict]:
    data, rows = work / f'data_{count}', []

    def record(stage: str, result: dict) -> None:
        rows.append({'images': count, 'stage': stage, 'seconds': result['seconds'], 'rss_mib': result['rss_mib'],
                     'workers_rss_mib': result['workers_rss_mib'], 'anon_mib': result['anon_mib'],
                     'file_mib': result['file_mib'], 'extra': {
                         k: v for k, v in result.items() if k not in ('seconds', 'rss_mib', 'workers_rss_mib')}})
        print(f"  {count:>4} images  {stage:<14}{result['seconds']:9.2f} s   peak {result['rss_mib']:7.0f} MiB "
              f"(anonymous {result['anon_mib']:5.0f}, file-backed {result['file_mib']:5.0f}; workers "
              f"{result['workers_rss_mib']:5.0f})", flush=True)

    record('prepare', run_in_process('prepare', hr=str(hr), out=str(data), workers=workers))
    for method, name in (('bicubic_psnr', 'score bicubic'), ('loss_value', 'score FSRCNN')):
        record(name, run_in_process('score', data=str(data), out=str(work / f'{method}_{count}.csv'), method=method))
    scores = str(work / f'loss_value_{count}.csv')
    record('select', run_in_process('select', scores=scores, out=str(work / f'keep_{count}.txt')))
    record('rebuild', run_in_process('rebuild', data=str(data), keep=str(work / f'keep_{count}.txt'),
                                     out=str(work / f'rebuilt_{count}'), repeats=repeats))
    record('prune', run_in_process('prune', data=str(data), scores=scores))
    return rows


def baseline_rounds(work: Path, hr: Path, base: int, workers: int, repeats: int) -> dict:
    """``repeats`` rounds of prepare, the limit and BasicSR's way at the base size; the first round's
    BasicSR LMDBs are compared with prepare's, key by key and pixel by pixel."""
    rounds = []
    for i in range(repeats):
        prep = run_in_process('prepare', hr=str(hr), out=str(work / f'baseline_prepare{i}'), workers=workers)
        limit = run_in_process('limit', hr=str(hr), workers=workers)
        theirs = run_in_process('basicsr', hr=str(hr), work=str(work / f'basicsr{i}'), workers=workers)
        ours, bound, basicsr = prep['seconds'], limit['seconds'], theirs['seconds']
        rounds.append({'prepare': ours, 'limit': bound, 'basicsr': basicsr, 'of_limit': bound / ours,
                       'vs_basicsr': basicsr / ours, 'rss': {'limit': limit, 'basicsr': theirs}})
        print(f"  round {i + 1}: prepare {prep['seconds']:.2f} s, limit {limit['seconds']:.2f} s, BasicSR "
              f"{theirs['seconds']:.2f} s", flush=True)
        if i == 0:
            identical = all(same_pixels(work / 'baseline_prepare0' / f'{name}.lmdb', Path(path))
                            for name, path in theirs['lmdbs'].items())
        else:
            shutil.rmtree(work / f'baseline_prepare{i}')
            shutil.rmtree(work / f'basicsr{i}')
    return {'rounds': rounds, 'identical': identical}


def summarise(rows: list[dict], base: int, extra: dict) -> None:
    sizes = sorted({r['images'] for r in rows})
    stages = list(dict.fromkeys(r['stage'] for r in rows))
    print(f"\n{'stage':<16}" + ''.join(f'{f"{n} img s":>12}{"MiB":>7}' for n in sizes) + f"{'growth s':>10}")
    for stage in stages:
        got = {r['images']: r for r in rows if r['stage'] == stage}
        line = ''.join(f"{got[n]['seconds']:12.2f}{max(got[n]['rss_mib'], got[n]['workers_rss_mib']):7.0f}"
                       for n in sizes)
        growth = got[sizes[-1]]['seconds'] / got[sizes[0]]['seconds'] if len(sizes) > 1 else 1
        print(f'{stage:<16}{line}{growth:9.2f}x  (size x{sizes[-1] / sizes[0]:.0f})')
    print("\npeak anonymous / file-backed MiB of the stage's own process (LMDB maps are file-backed)")
    for stage in stages:
        got = {r['images']: r for r in rows if r['stage'] == stage}
        print(f'{stage:<16}' + ''.join(f"{got[n]['anon_mib']:>10} / {got[n]['file_mib']:<6}" for n in sizes))
    if 'rounds' in extra:
        got = {k: [r[k] for r in extra['rounds']] for k in ('prepare', 'limit', 'basicsr', 'of_limit', 'vs_basicsr')}
        print(f"\nat {base} images, median [min-max] of {len(extra['rounds'])} rounds: prepare "
              f"{spread(got['prepare'])} s, limit {spread(got['limit'])} s, BasicSR's way {spread(got['basicsr'])} s; "
              "prepare runs at "
              f"{spread(got['of_limit'])}x of the limit's speed and {spread(got['vs_basicsr'])}x BasicSR's; "
              f"identical keys and pixels: {extra['identical']}")
    for r in rows:
        if r['stage'] == 'rebuild':
            x = r['extra']
            print(f"rebuild at {r['images']} images: median {r['seconds']:.2f} s (runs "
                  f"{', '.join(f'{t:.2f}' for t in x['runs'])}), cp -r + sync scaled {x['cp_scaled']:.2f} s (runs "
                  f"{', '.join(f'{t:.2f}' for t in x['cp_scaled_runs'])}) -> {r['seconds'] / x['cp_scaled']:.2f}x; "
                  f"per round {spread(x['ratios'])}x")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage in dict.fromkeys(r['stage'] for r in rows):
        got = sorted((r['images'], r['seconds'], max(r['rss_mib'], r['workers_rss_mib']), r['anon_mib']) for r in rows
                     if r['stage'] == stage)
        n = [g[0] for g in got]
        line = ax_t.plot(n, [g[1] for g in got], 'o-', label=stage)[0]
        ax_m.plot(n, [g[2] for g in got], 'o-', color=line.get_color(), label=f'{stage}, peak RSS')
        ax_m.plot(n, [g[3] for g in got], 'x--', color=line.get_color(), label=f'{stage}, anonymous')
    ax_t.set(xscale='log', yscale='log', xlabel='HR images (2040 x 1404)', ylabel='seconds',
             title='time per stage (log-log; slope 1 = linear)')
    ax_m.set(xscale='log', xlabel='HR images (2040 x 1404)', ylabel='MiB',
             title='peak RSS (largest process, solid) and anonymous (dashed)')
    ax_t.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--base', type=int, default=24, help='HR images at size 1x')
    parser.add_argument('--sizes', type=int, nargs='+', default=[1, 2, 4])
    parser.add_argument('--work', default='/tmp/bench_scale')
    parser.add_argument('--workers', type=int, default=os.cpu_count())
    parser.add_argument('--repeats', type=int, default=3,
                        help='rebuild and cp runs per size; rounds of prepare, limit and BasicSR at the base size')
    parser.add_argument('--no-baselines', action='store_true', help='skip the limit and BasicSR at the base size')
    parser.add_argument('--profile', type=int, metavar='N',
                        help="only print where the limit's time goes on N mosaics (one thread), then stop")
    parser.add_argument('--csv', type=Path, default=None)
    parser.add_argument('--plot', type=Path, default=None)
    parser.add_argument('--stage', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        stage_main(*args.stage)
        return
    work = Path(args.work)
    if args.profile:
        profile_limit(make_mosaics(work / 'mosaics', args.profile))
        return
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.iterdir():
        if stale.name != 'mosaics':
            shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink()
    start = time.perf_counter()
    mosaics = make_mosaics(work / 'mosaics', args.base * max(args.sizes))
    print(f'{len(mosaics)} mosaics of {CELL_W * COLS} x {CELL_H * ROWS} ({time.perf_counter() - start:.0f} s); '
          f'{args.workers} processes; crop {CROP}, step {STEP}, thresh {THRESH}, x{"/x".join(map(str, SCALES))}',
          flush=True)
    rows, extra = [], {}
    for factor in args.sizes:
        count = args.base * factor
        rows += bench_size(work, hr_folder(work, mosaics, count), count, args.workers, args.repeats)
    if not args.no_baselines:
        extra = baseline_rounds(work, hr_folder(work, mosaics, args.base), args.base, args.workers, args.repeats)
    summarise(rows, args.base, extra)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['images', 'stage', 'seconds', 'peak_rss_mib', 'workers_peak_rss_mib', 'peak_anon_mib',
                             'peak_file_mib'])
            for r in rows:
                writer.writerow([r['images'], r['stage'], f"{r['seconds']:.3f}", f"{r['rss_mib']:.0f}",
                                 f"{r['workers_rss_mib']:.0f}", r['anon_mib'], r['file_mib']])
            for r in extra.get('rounds', []):
                for name in ('limit', 'basicsr'):
                    x = r['rss'][name]
                    writer.writerow([args.base, name, f"{x['seconds']:.3f}", f"{x['rss_mib']:.0f}",
                                     f"{x['workers_rss_mib']:.0f}", x['anon_mib'], x['file_mib']])
    if args.plot:
        plot(rows, args.plot)
    print(f'\ntotal {time.perf_counter() - start:.0f} s')


if __name__ == '__main__':
    main()
