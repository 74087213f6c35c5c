"""``srprune demo``: the main job on embedded data, on CPU, in a few minutes.

The photos scikit-image ships are the default data (no download): most become the training set,
two are held out for validation. The data is made with the same code as ``srprune prepare``
(sub-images, mod-crop, MATLAB-style bicubic, LMDBs), then BasicSR's ``train_pipeline`` trains
the SRCNN proxy from ``options/demo/train_SRCNN_x2_demo.yml``.
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
SUB_IMAGE = PrepareConfig(crop=96, step=96, thresh=24, scales=(2, 3, 4))
PSNR_LINE = re.compile(r'# psnr: ([0-9.]+)')


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


def demo_options(scale: int, iters: int | None) -> dict:
    """The demo option file, adapted to ``scale`` and ``iters``."""
    opt = yaml.safe_load(DEMO_OPTION.read_text())
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


def bicubic_psnr(workdir: Path, scale: int) -> float:
    """Mean Y-PSNR of plain bicubic upsampling on the validation set: the bar SRCNN must clear."""
    from basicsr.metrics import calculate_psnr

    from srprune_basicsr.bicubic import imresize_uint8

    gt_dir, lq_dir = (workdir / 'data' / 'val' / name for name in benchmark_folders(scale))
    values = []
    for gt_path in sorted(gt_dir.iterdir()):
        gt = cv2.imread(str(gt_path))
        up = imresize_uint8(cv2.imread(str(lq_dir / gt_path.name)), scale)
        values.append(calculate_psnr(up, gt, crop_border=scale, test_y_channel=True))
    return float(np.mean(values))


def run_demo(workdir: Path, iters: int | None = None, scale: int = 2, overwrite: bool = False) -> float:
    """Prepare the data, train through ``srprune train``, print where everything is; return the PSNR."""
    if overwrite and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    make_demo_data(workdir)
    opt = demo_options(scale, iters)
    opt_path = workdir / 'options' / f"{opt['name']}.yml"
    opt_path.parent.mkdir(exist_ok=True)
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))
    exp = workdir / 'experiments' / opt['name']
    resume = ['--auto_resume'] if exp.exists() else []
    subprocess.run([sys.executable, '-m', 'srprune_basicsr', 'train', '-opt', str(opt_path.relative_to(workdir)),
                    *resume], cwd=workdir, check=True)
    logs = sorted(exp.glob(f"train_{opt['name']}_*.log"), key=lambda p: p.stat().st_mtime)
    psnrs = [float(v) for v in PSNR_LINE.findall(logs[-1].read_text())]
    if not psnrs:
        raise RuntimeError(f'{logs[-1]}: no validation PSNR was logged')
    baseline = bicubic_psnr(workdir, scale)
    print('\n=== srprune demo ===')
    print(f'model:   {exp / "models" / "net_g_latest.pth"}')
    print(f'log:     {logs[-1]}')
    print(f'options: {opt_path}')
    print(f'PSNR (Y, x{scale}, held-out {", ".join(VAL_PHOTOS)}): SRCNN {psnrs[-1]:.2f} dB, '
          f'bicubic {baseline:.2f} dB ({psnrs[-1] - baseline:+.2f} dB)')
    return psnrs[-1]
