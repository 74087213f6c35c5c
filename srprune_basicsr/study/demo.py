"""``srprune demo``: the whole loss-value pruning chain on embedded data, on CPU, in a few minutes.

The photos scikit-image ships are the default data (no download): most become the training set,
two are held out for evaluation. Steps, each with the library code the CLI uses: prepare
(sub-images, MATLAB bicubic, LMDBs) -> train the SRCNN proxy (``srprune train``) -> the demo study
(``presets/demo/study_demo.yml``: score every sub-image by the proxy's loss, keep the refined 50%
(ranks 5%..55%) and a random 50%, train the FSRCNN target on full, refined and random data at the
same iterations, evaluate) -> a PSNR/SSIM table beside bicubic and the proxy, and the score report.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from srprune_basicsr.formats.atomic import MARKER, UnsafeOutputError, made_by_us, write_marker
from srprune_basicsr.options import load_yaml
from srprune_basicsr.prepare import PrepareConfig, benchmark_folders, lq_folder, prepare, prepare_benchmark
from srprune_basicsr.presets import PRESETS
from srprune_basicsr.report.scores_report import write_report
from srprune_basicsr.study import launcher
from srprune_basicsr.study.evaluate import evaluate_checkpoint
from srprune_basicsr.study.runner import Study

TRAIN_PHOTOS = ('astronaut', 'chelsea', 'rocket', 'hubble_deep_field', 'immunohistochemistry', 'retina', 'brick',
                'grass', 'gravel', 'colorwheel', 'coins', 'moon', 'page', 'text', 'clock')
VAL_PHOTOS = ('coffee', 'camera')
PROXY_OPTION = PRESETS / 'demo' / 'train_SRCNN_x2_demo.yml'
STUDY_OPTION = PRESETS / 'demo' / 'study_demo.yml'
PROXY_ROW = 'SRCNN proxy (ranks the data)'
PROXY_NOTE = ('The proxy only ranks the sub-images and is not one of the compared models: SRCNN works on the '
              'bicubic-upscaled image at full size and starts as bicubic, so it can be ahead of the small FSRCNN '
              'targets. The comparison is the three FSRCNN rows: one target, the same iterations, three choices '
              'of data.')
ARMS = {'full': 'FSRCNN full', 'loss_value@0.5+0.05': 'FSRCNN refined 50%', 'random@0.5': 'FSRCNN random 50%'}
SUB_IMAGE = PrepareConfig(crop=96, step=96, thresh=24, scales=(2, 3, 4))


def write_photos(names: tuple[str, ...], folder: Path) -> None:
    """Save scikit-image sample photos as PNG (gray ones as 3-channel, like SR training sets)."""
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        cv2.imwrite(str(folder / f'{name}.png'), cv2.cvtColor(img[:, :, :3], cv2.COLOR_RGB2BGR))


def make_demo_data(workdir: Path) -> None:
    """HR photos -> training sub-image LMDBs and a held-out validation set, if not there yet."""
    data = workdir / 'data'
    if not (data / 'train_sub').exists():
        write_photos(TRAIN_PHOTOS, data / 'hr_train')
        prepare(data / 'hr_train', data / 'train_sub', SUB_IMAGE, lmdb=True)
    if not (data / 'val').exists():
        write_photos(VAL_PHOTOS, data / 'hr_val')
        prepare_benchmark(data / 'hr_val', data / 'val', SUB_IMAGE.scales)


def proxy_options(scale: int, iters: int | None) -> dict:
    """The proxy's option file adapted to ``scale`` and ``iters`` (paths relative to the workdir)."""
    opt = load_yaml(PROXY_OPTION, 'demo option file')
    opt['name'] = f'demo_SRCNN_x{scale}'
    opt['scale'] = scale
    opt['network_g']['upscale'] = scale
    opt['datasets']['train']['dataroot_lq'] = f'data/train_sub/{lq_folder(scale)}.lmdb'
    opt['datasets']['val']['dataroot_lq'] = f'data/val/{benchmark_folders(scale)[1]}'
    for metric in opt['val']['metrics'].values():
        metric['crop_border'] = scale
    if iters is not None:
        opt['train']['total_iter'] = iters
        opt['train']['scheduler']['milestones'] = [max(1, iters * 3 // 4)]
        opt['val']['val_freq'] = max(1, iters // 4)
        opt['logger']['save_checkpoint_freq'] = max(1, iters // 2)
    return opt


def demo_study(workdir: Path, scale: int, iters: int | None, proxy: dict, proxy_checkpoint: Path) -> dict:
    """The demo study file with its paths resolved (data in the workdir, template beside the file)."""
    study = load_yaml(STUDY_OPTION, 'demo study file')
    study.update(name=f'demo_x{scale}', scale=scale, train_options=str(STUDY_OPTION.parent / study['train_options']))
    study['data'] = {'dataroot_gt': str(workdir / 'data' / 'train_sub' / 'HR_sub.lmdb'),
                     'dataroot_lq': str(workdir / 'data' / 'train_sub' / f'{lq_folder(scale)}.lmdb')}
    study['benchmarks'] = {name: str(workdir / folder) for name, folder in study['benchmarks'].items()}
    if iters is not None:
        study['budget']['total_iter'] = iters
    score = study['methods']['loss_value']['score']
    score.update(network_g=proxy['network_g'], path={'pretrain_network_g': str(proxy_checkpoint)})
    return study


def bicubic_metrics(workdir: Path, scale: int) -> dict[str, float]:
    """Mean Y-PSNR/SSIM of plain bicubic upsampling on the held-out set: the bar to clear."""
    from basicsr.metrics import calculate_psnr, calculate_ssim

    from srprune_basicsr.bicubic import imresize_uint8

    gt_dir, lq_dir = (workdir / 'data' / 'val' / name for name in benchmark_folders(scale))
    values: dict[str, list[float]] = {'psnr': [], 'ssim': []}
    for gt_path in sorted(gt_dir.iterdir()):
        gt = cv2.imread(str(gt_path))
        up = imresize_uint8(cv2.imread(str(lq_dir / gt_path.name)), scale)
        values['psnr'].append(calculate_psnr(up, gt, crop_border=scale, test_y_channel=True))
        values['ssim'].append(calculate_ssim(up, gt, crop_border=scale, test_y_channel=True))
    return {name: float(np.mean(v)) for name, v in values.items()}


def prepare_workdir(workdir: Path, overwrite: bool) -> Path:
    """The demo's folder: new, or one the demo made (marked), which ``overwrite`` starts over.

    Anything else (a folder with other files) is refused: the demo never deletes what it did not make.
    """
    if workdir.exists() and not workdir.is_dir():
        raise NotADirectoryError(f'--workdir {workdir} is a file, not a folder: give a new or empty folder')
    if workdir.exists() and any(workdir.iterdir()) and not made_by_us(workdir, kind='demo'):
        raise UnsafeOutputError(f'--workdir {workdir} holds files the demo did not make (no {MARKER} inside); '
                                'choose an empty or new folder')
    if overwrite and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not made_by_us(workdir, kind='demo'):
        write_marker(workdir, 'demo')
    return workdir


def run_demo(workdir: Path, iters: int | None = None, scale: int = 2, overwrite: bool = False) -> dict[str, float]:
    """Run the chain, print the result table and where everything is; return PSNR per row."""
    if iters is not None and iters < 1:
        raise ValueError(f'--iters must be a positive number of iterations, got {iters}')
    workdir = prepare_workdir(workdir.resolve(), overwrite)
    make_demo_data(workdir)
    proxy = proxy_options(scale, iters)
    option_file = launcher.write_option_file(workdir / 'options' / f"{proxy['name']}.yml", proxy)
    checkpoint = launcher.train(option_file.relative_to(workdir), workdir) / 'models' / 'net_g_latest.pth'
    study = Study(demo_study(workdir, scale, iters, proxy, checkpoint), workdir / 'study')
    records = study.run()  # one line per finished run: the demo trains for minutes
    holdout = next(iter(study.study['benchmarks']))
    results = {'bicubic': bicubic_metrics(workdir, scale),
               PROXY_ROW: evaluate_checkpoint(proxy['network_g'], checkpoint, study.study['benchmarks'],
                                                         scale, 0)[holdout]}
    by_arm = {r['arm']: r['benchmarks'][holdout] for r in records}
    results.update({row: by_arm[arm] for arm, row in ARMS.items()})
    scores_path = study.method_scores('loss_value')[1]
    refined_keep = study.root / 'keep' / 'loss_value_r0p5_b0p05_s0.txt'
    report = write_report(scores_path, study.root / 'report', refined_keep, overwrite=True)[0]
    table = [f"| model (x{scale}, held-out {', '.join(VAL_PHOTOS)}) | PSNR (Y) | SSIM (Y) |", '|---|---|---|']
    table += [f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} |" for name, m in results.items()]
    table += ['', PROXY_NOTE]
    (workdir / 'results.md').write_text('\n'.join(table) + '\n')
    print('\n=== srprune demo ===')
    print('\n'.join(table))
    print(f'\nresults: {workdir / "results.md"} (study tables: {study.root / "study.md"})')
    print(f'scores:  {scores_path} (keep lists in {study.root / "keep"})')
    print(f"plots:   {report.get('histogram', '')}, {report.get('samples', '')}")
    print(f'models:  {study.root / "experiments"}/*/models/net_g_latest.pth')
    return {name: m['psnr'] for name, m in results.items()}
