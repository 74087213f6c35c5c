"""``srprune demo``: the whole loss-value pruning chain on embedded data, on CPU, in a few minutes.

The photos scikit-image ships are the default data (no download): most become the training set,
two are held out for validation. Steps, each with the library code the CLI uses:
prepare (sub-images, MATLAB bicubic, LMDBs) -> train the SRCNN proxy (``srprune train``) ->
score every sub-image by the proxy's loss -> select the refined 50% (ranks 5%..55%) and a random
50% -> train the FSRCNN target on full, refined and random data at the same iterations ->
a PSNR/SSIM table and the score report (PNG plots).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

from srprune_basicsr.data.prepare import PrepareConfig, benchmark_folders, lq_folder, prepare, prepare_benchmark

TRAIN_PHOTOS = ('astronaut', 'chelsea', 'rocket', 'hubble_deep_field', 'immunohistochemistry', 'retina', 'brick',
                'grass', 'gravel', 'colorwheel', 'coins', 'moon', 'page', 'text', 'clock')
VAL_PHOTOS = ('coffee', 'camera')
DEMO_OPTION = Path(__file__).resolve().parents[1] / 'options' / 'demo' / 'train_SRCNN_x2_demo.yml'
TARGET_OPTION = DEMO_OPTION.with_name('train_FSRCNN_x2_demo_target.yml')
METRIC_LINE = re.compile(r'# (psnr|ssim): ([0-9.]+)')
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


def demo_options(template: Path, name: str, scale: int, iters: int | None) -> dict:
    """A demo option file adapted to ``scale`` and ``iters``."""
    opt = yaml.safe_load(template.read_text())
    opt['name'] = name
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


def bicubic_metrics(workdir: Path, scale: int) -> dict[str, float]:
    """Mean Y-PSNR/SSIM of plain bicubic upsampling on the validation set: the bar to clear."""
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


def train(workdir: Path, opt: dict) -> tuple[Path, dict[str, float]]:
    """``srprune train`` on ``opt`` in ``workdir`` (resuming if it ran before); returns (exp dir, last metrics)."""
    opt_path = workdir / 'options' / f"{opt['name']}.yml"
    opt_path.parent.mkdir(exist_ok=True)
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))
    exp = workdir / 'experiments' / opt['name']
    resume = ['--auto_resume'] if exp.exists() else []
    subprocess.run([sys.executable, '-m', 'srprune_basicsr', 'train', '-opt', str(opt_path.relative_to(workdir)),
                    *resume], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    logs = sorted(exp.glob(f"train_{opt['name']}_*.log"), key=lambda p: p.stat().st_mtime)
    metrics = dict((name, float(v)) for name, v in METRIC_LINE.findall(logs[-1].read_text()))
    if 'psnr' not in metrics:
        raise RuntimeError(f'{logs[-1]}: no validation PSNR was logged')
    return exp, metrics


def score_and_select(workdir: Path, proxy_opt: dict, proxy: Path) -> dict[str, Path]:
    """Loss-value scores of every training sub-image, the refined 50% and a random 50% keep list."""
    from srprune_basicsr.report.scores_report import write_report
    from srprune_basicsr.scoring.runner import run_scoring
    from srprune_basicsr.scoring.scores import read_scores
    from srprune_basicsr.scoring.select import SelectionRule, select_keys, write_selection

    root = workdir / 'experiments' / 'score_demo'
    dataset = {k: proxy_opt['datasets']['train'][k] for k in ('dataroot_gt', 'dataroot_lq', 'io_backend')}
    dataset = {k: (str(workdir / v) if k.startswith('dataroot') else v) for k, v in dataset.items()}
    opt = {'name': 'score_demo', 'method': 'loss_value', 'scale': proxy_opt['scale'], 'num_gpu': 0,
           'dataset': dict(dataset, name='demo', type='PairedImageDataset'), 'network_g': proxy_opt['network_g'],
           'path': {'pretrain_network_g': str(proxy)}, 'score': {'loss': 'mse', 'batch_size': 32}}
    scores_path = run_scoring(opt, root / 'scores.csv')
    scores = read_scores(scores_path)
    keeps = {}
    for arm, rule in (('refined', SelectionRule(0.5, 'hardest', drop_hardest=0.05)),
                      ('random', SelectionRule(0.5, 'random', seed=0))):
        keeps[arm] = write_selection(root / f'keep_{arm}.txt', select_keys(scores.keys, scores.values, rule),
                                     len(scores), rule, scores_path, overwrite=True)
    write_report(scores_path, root / 'report', keeps['refined'])
    return keeps


def run_demo(workdir: Path, iters: int | None = None, scale: int = 2, overwrite: bool = False) -> dict[str, float]:
    """Run the chain, print the result table and where everything is; return PSNR per arm."""
    if overwrite and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    make_demo_data(workdir)
    proxy_opt = demo_options(DEMO_OPTION, f'demo_SRCNN_x{scale}', scale, iters)
    proxy_exp, proxy_metrics = train(workdir, proxy_opt)
    keeps = score_and_select(workdir, proxy_opt, proxy_exp / 'models' / 'net_g_latest.pth')
    results = {'bicubic': bicubic_metrics(workdir, scale), 'SRCNN proxy (full)': proxy_metrics}
    for arm in ('full', 'refined', 'random'):
        opt = demo_options(TARGET_OPTION, f'demo_FSRCNN_x{scale}_{arm}', scale, iters)
        if arm != 'full':
            opt['datasets']['train']['prune'] = {'keep': str(keeps[arm].resolve())}
        results[f'FSRCNN {arm}' + (' 50%' if arm != 'full' else '')] = train(workdir, opt)[1]
    table = [f"| model (x{scale}, held-out {', '.join(VAL_PHOTOS)}) | PSNR (Y) | SSIM (Y) |", '|---|---|---|']
    table += [f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} |" for name, m in results.items()]
    (workdir / 'results.md').write_text('\n'.join(table) + '\n')
    report = workdir / 'experiments' / 'score_demo' / 'report'
    print('\n=== srprune demo ===')
    print('\n'.join(table))
    print(f'\nresults: {workdir / "results.md"}')
    print(f'scores:  {workdir / "experiments" / "score_demo" / "scores.csv"} (keep lists beside it)')
    print(f'plots:   {report / "score_hist.png"}, {report / "samples.png"}')
    print(f'models:  {workdir / "experiments"}/*/models/net_g_latest.pth')
    return {name: m['psnr'] for name, m in results.items()}
