"""Benchmark `srprune prepare --lmdb` and `srprune lmdb rebuild` against BasicSR's own way, in one run.

Data: sub-images of ../shared/data (T91 + BSD200 + DIV2K_valid_crop256), crop 96, step 48,
thresh 24; GT, x2 and x4 LQ (about 15,000 sub-images).

  prepare:  ours (cut + MATLAB bicubic from the whole image + LMDBs, one pass, N processes)
            vs BasicSR's two steps: extract_subimages (BasicSR's worker: imread, crop, imwrite
            level 3, a Pool of N) over the HR and the pre-made LR folders, then
            basicsr.utils.lmdb_util.make_lmdb_from_imgs per folder. The LR images BasicSR needs
            are made beforehand and not timed (DIV2K ships them). Keys and pixels are compared.
  rebuild:  a seeded random 50% subset of the GT LMDB: ours (stored bytes, synced) vs
            (a) make_lmdb_from_imgs over the subset's files and (b) `cp -r` of the whole LMDB +
            sync, scaled to the subset (the physical limit); medians of 3 for ours and (b).

Usage:  python tools/bench_lmdb.py [--work /tmp/bench_lmdb] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np

# isort: off
import srprune_basicsr  # noqa: F401  (must precede basicsr: it installs the torchvision shim)
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
# isort: on
from srprune_basicsr.bicubic import imresize_uint8
from srprune_basicsr.formats.lmdb import iter_values, read_meta_info
from srprune_basicsr.prepare import GT_FOLDER, PrepareConfig, crop_positions, lq_folder, mod_crop, prepare
from srprune_basicsr.rebuild import rebuild_lmdbs

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data'
SETS = ('T91', 'BSD200', 'DIV2K_valid_crop256')
CFG = PrepareConfig(crop=96, step=48, thresh=24, scales=(2, 4))


def gather_hr(work: Path) -> Path:
    """Symlink the HR images of the training sets into one folder (stems are unique)."""
    hr = work / 'hr'
    hr.mkdir(parents=True)
    for name in SETS:
        for path in sorted((SHARED / name / 'HR').iterdir()):
            (hr / path.name).symlink_to(path)
    return hr


def make_basicsr_inputs(hr: Path, work: Path) -> dict[int, Path]:
    """What BasicSR's extract_subimages expects: mod-cropped HR and whole LR images per scale."""
    folders = {1: work / 'basicsr_in' / 'HR'} | {s: work / 'basicsr_in' / f'X{s}' for s in CFG.scales}
    for folder in folders.values():
        folder.mkdir(parents=True)
    for path in sorted(hr.iterdir()):
        img = mod_crop(cv2.imread(str(path), cv2.IMREAD_COLOR), CFG.modulus)
        cv2.imwrite(str(folders[1] / f'{path.stem}.png'), img)
        for s in CFG.scales:
            cv2.imwrite(str(folders[s] / f'{path.stem}.png'), imresize_uint8(img, 1 / s))
    return folders


def basicsr_worker(path: str, out: str, crop: int, step: int, thresh: int) -> None:
    """BasicSR's extract_subimages worker: read unchanged, cut (rows outer), write PNG level 3."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    h, w = img.shape[:2]
    stem = Path(path).stem
    index = 0
    for y in crop_positions(h, crop, step, thresh):
        for x in crop_positions(w, crop, step, thresh):
            index += 1
            patch = np.ascontiguousarray(img[y:y + crop, x:x + crop, ...])
            cv2.imwrite(os.path.join(out, f'{stem}_s{index:03d}.png'), patch, [cv2.IMWRITE_PNG_COMPRESSION, 3])


def basicsr_prepare(inputs: dict[int, Path], work: Path, workers: int) -> dict[str, Path]:
    """BasicSR's two steps: extract sub-images per folder, then make_lmdb_from_imgs per folder."""
    lmdbs = {}
    for s, folder in inputs.items():
        name = GT_FOLDER if s == 1 else lq_folder(s)
        sub = work / 'basicsr' / name
        sub.mkdir(parents=True)
        job = partial(basicsr_worker, out=str(sub), crop=CFG.crop // s, step=CFG.step // s, thresh=CFG.thresh // s)
        with multiprocessing.get_context('fork').Pool(workers) as pool:
            pool.map(job, [str(p) for p in sorted(folder.iterdir())])
        files = sorted(p.name for p in sub.iterdir())
        lmdbs[name] = work / 'basicsr' / f'{name}.lmdb'
        make_lmdb_from_imgs(str(sub), str(lmdbs[name]), files, [Path(f).stem for f in files])
    return lmdbs


def same_pixels(ours: Path, theirs: Path) -> tuple[bool, int]:
    """Same keys, and every image decodes to the same pixels."""
    a, b = dict(iter_values(ours)), dict(iter_values(theirs))
    if set(a) != set(b):
        return False, len(a)
    decode = partial(cv2.imdecode, flags=cv2.IMREAD_UNCHANGED)
    equal = all(np.array_equal(decode(np.frombuffer(a[k], np.uint8)), decode(np.frombuffer(b[k], np.uint8)))
                for k in a)
    return equal, len(a)


def timed(fn, *args, **kwargs) -> tuple[float, object]:  # noqa: ANN001
    """Wall time of one call, with its console chatter (BasicSR's per-image bars) silenced."""
    with open(os.devnull, 'w') as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
        start = time.perf_counter()
        value = fn(*args, **kwargs)
        return time.perf_counter() - start, value


def bench_rebuild(src: Path, subset_folder: Path, work: Path, seed: int = 0, repeats: int = 3) -> dict[str, float]:
    """Our rebuild of a 50% subset vs make_lmdb_from_imgs over its files vs cp -r + sync (scaled).

    The fast two are timed ``repeats`` times, alternating, and their medians reported (single runs
    of sub-second work vary by +-30% here); make_lmdb_from_imgs takes seconds and runs once.
    """
    keys = [e.key for e in read_meta_info(src)]
    keep = sorted(random.Random(seed).sample(keys, len(keys) // 2))
    keep_path = work / 'keep.txt'
    keep_path.write_text(''.join(f'{k}\n' for k in keep))
    ours, copies = [], []
    for i in range(repeats):
        os.sync()
        ours.append(timed(rebuild_lmdbs, [src], keep_path, work / f'rebuilt{i}', progress=False)[0])
        os.sync()
        copies.append(timed(subprocess.run, f'cp -r {src} {work / f"copy{i}.lmdb"} && sync', shell=True,
                            check=True)[0])
    files = [f'{k}.png' for k in keep]
    t_make, _ = timed(make_lmdb_from_imgs, str(subset_folder), str(work / 'make_subset.lmdb'), files, keep)
    return {'ours': statistics.median(ours), 'ours_all': ours, 'make_lmdb_from_imgs': t_make,
            'cp_scaled': statistics.median(copies) * len(keep) / len(keys), 'kept': len(keep), 'total': len(keys)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', default='/tmp/bench_lmdb')
    parser.add_argument('--workers', type=int, default=os.cpu_count())
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    hr = gather_hr(work)
    print(f'{len(list(hr.iterdir()))} HR images from {", ".join(SETS)}; {args.workers} processes')
    inputs = make_basicsr_inputs(hr, work)
    os.sync()

    t_base, base = timed(basicsr_prepare, inputs, work, args.workers)
    t_ours, ours = timed(prepare, hr, work / 'ours', CFG, lmdb=True, workers=args.workers, progress=False)
    identical = {name: same_pixels(ours.lmdbs[name], base[name]) for name in base}
    print(f'\nprepare --lmdb (GT + x2 + x4, {ours.sub_images} sub-images)')
    print(f'  BasicSR extract_subimages + make_lmdb_from_imgs: {t_base:7.2f} s')
    print(f'  srprune prepare --lmdb:                          {t_ours:7.2f} s   {t_base / t_ours:5.2f}x faster')
    for name, (same, n) in identical.items():
        print(f'  {name}: {n} keys, identical keys and pixels: {same}')

    r = bench_rebuild(ours.lmdbs[GT_FOLDER], work / 'basicsr' / GT_FOLDER, work)
    print(f'\nrebuild of a 50% GT subset ({r["kept"]} of {r["total"]} sub-images)')
    print(f'  (a) make_lmdb_from_imgs over the subset files: {r["make_lmdb_from_imgs"]:7.3f} s')
    print(f'  (b) cp -r whole LMDB + sync, x 0.5 (median):   {r["cp_scaled"]:7.3f} s')
    print(f'  srprune lmdb rebuild, synced (median):         {r["ours"]:7.3f} s   '
          f'{r["make_lmdb_from_imgs"] / r["ours"]:6.1f}x faster than (a), {r["ours"] / r["cp_scaled"]:4.2f}x (b)')
    print(f'  (rebuild runs: {", ".join(f"{t:.3f}" for t in r["ours_all"])} s)')


if __name__ == '__main__':
    main()
