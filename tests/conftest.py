"""Shared fixtures: a tiny SR dataset made with ``srprune prepare`` and option files like users write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import yaml

import srprune_basicsr  # noqa: F401
from srprune_basicsr.prepare import PrepareConfig, prepare, prepare_benchmark
from srprune_basicsr.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
SCALE = 2


def photo_crops(folder: Path, count: int, size: int, offset: int = 0) -> None:
    """Write ``count`` RGB crops of scikit-image photos, as PNG HR images."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.rocket(), skimage.data.coffee()]
    for i in range(count):
        img = photos[(i + offset) % len(photos)]
        y, x = 40 * (i + offset) % (img.shape[0] - size), 60 * (i + offset) % (img.shape[1] - size)
        crop = cv2.cvtColor(img[y:y + size, x:x + size], cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / f'img{i + offset:03d}.png'), crop)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/train_sub (LMDBs, 4 HR images -> 16 sub-images of 48 px) and data/val (2 images)."""
    root = tmp_path_factory.mktemp('tiny_data')
    photo_crops(root / 'hr_train', 4, 96)
    photo_crops(root / 'hr_val', 2, 60, offset=4)
    prepare(root / 'hr_train', root / 'train_sub', PrepareConfig(crop=48, step=48, thresh=0, scales=(2, 4)),
            lmdb=True, workers=2, progress=False)
    prepare_benchmark(root / 'hr_val', root / 'val', scales=(2, 4))
    return root


def train_options(data: Path, name: str, total_iter: int = 4, **overrides: object) -> dict:
    """A BasicSR training option dict on the tiny data: SRCNN x2, CPU, validation at the end."""
    opt = yaml.safe_load((PRESETS / 'demo' / 'train_SRCNN_x2_demo.yml').read_text())
    opt['name'] = name
    train = opt['datasets']['train']
    train.update(dataroot_gt=str(data / 'train_sub' / 'HR_sub.lmdb'),
                 dataroot_lq=str(data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb'), gt_size=32, batch_size_per_gpu=4,
                 num_worker_per_gpu=0)
    opt['datasets']['val'].update(dataroot_gt=str(data / 'val' / 'GTmod12'), dataroot_lq=str(data / 'val' / 'LRbicx2'))
    opt['train']['total_iter'] = total_iter
    opt['train']['scheduler']['milestones'] = [total_iter * 10]
    opt['val']['val_freq'] = total_iter
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    for key, value in overrides.items():
        section, _, field = key.partition('.')
        if field:
            opt[section][field] = value
        else:
            opt[section] = value
    return opt


def write_options(path: Path, opt: dict) -> Path:
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def run_cli(args: list[str], cwd: Path, disable: str = '', timeout: int = 300,
            launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``srprune`` (or a launcher around it) as a user would, in ``cwd``."""
    env = dict(os.environ, SRPRUNE_COMPAT_DISABLE=disable, CUDA_VISIBLE_DEVICES='', PYTHONUNBUFFERED='1')
    cmd = (launcher or [sys.executable, '-m', 'srprune_basicsr']) + args
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def latest_log(exp: Path, prefix: str = 'train') -> str:
    logs = sorted(exp.glob(f'{prefix}_*.log'), key=lambda p: p.stat().st_mtime)
    assert logs, f'no {prefix} log in {exp}'
    return logs[-1].read_text()


def psnr_values(log: str) -> list[float]:
    import re

    return [float(v) for v in re.findall(r'# psnr: ([0-9.]+)', log)]


def random_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth-ish random uint8 BGR image (noise blurred, so bicubic is meaningful)."""
    img = rng.integers(0, 256, (h, w, 3)).astype(np.float32)
    return cv2.GaussianBlur(img, (5, 5), 1.5).astype(np.uint8)
