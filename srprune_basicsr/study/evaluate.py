"""PSNR/SSIM of a network on benchmark folders, by the protocol of the SR literature and BasicSR.

Y channel, ``border`` = scale pixels cropped, HR mod-cropped to the scale. The images go through
exactly what BasicSR's validation does (cv2 read, float32 in [0, 1], RGB tensor, network,
``tensor2img`` rounding to uint8 BGR, ``calculate_psnr`` / ``calculate_ssim``), so the numbers equal
``srprune test`` / BasicSR's ``test_pipeline`` for the same model and data (tested).

A folder is either BasicSR's benchmark layout (``GTmod12/`` + ``LRbicx{s}/``, as ``srprune prepare
--benchmark`` writes) or HR images only (directly or in ``HR/``): then the LR is made on the fly
with MATLAB-style bicubic from the mod-cropped HR, as DIV2K's LR are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from srprune_basicsr.bicubic import imresize_uint8
from srprune_basicsr.formats.keys import is_image


@dataclass
class BenchmarkResult:
    name: str
    psnr: float
    ssim: float
    per_image: dict[str, tuple[float, float]] = field(default_factory=dict)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image(p))


def benchmark_pairs(folder: str | os.PathLike, scale: int) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HR uint8 BGR, LR uint8 BGR) for every image of a benchmark folder (see the module docstring)."""
    folder = Path(folder)
    gt_dir, lr_dir = folder / 'GTmod12', folder / f'LRbicx{scale}'
    if gt_dir.is_dir() and lr_dir.is_dir():
        lrs = {p.stem: p for p in _images(lr_dir)}
        for gt_path in _images(gt_dir):
            if gt_path.stem not in lrs:
                raise FileNotFoundError(f'{lr_dir}: no LR image for {gt_path.name}')
            yield gt_path.stem, cv2.imread(str(gt_path)), cv2.imread(str(lrs[gt_path.stem]))
        return
    hr_dir = folder / 'HR' if (folder / 'HR').is_dir() else folder
    images = _images(hr_dir)
    if not images:
        raise FileNotFoundError(f'{folder}: neither GTmod12/ + LRbicx{scale}/ nor HR images')
    for path in images:
        hr = cv2.imread(str(path))
        h, w = hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale
        hr = hr[:h, :w]
        yield path.stem, hr, imresize_uint8(hr[:, :, ::-1], 1 / scale)[:, :, ::-1]


@torch.no_grad()
def evaluate(net: torch.nn.Module, folder: str | os.PathLike, scale: int, device: torch.device | str = 'cpu',
             name: str | None = None, ssim: bool = True) -> BenchmarkResult:
    """Mean Y-PSNR and Y-SSIM of ``net`` over a benchmark folder, border = scale (``ssim=False``: SSIM is NaN)."""
    from basicsr.metrics import calculate_psnr, calculate_ssim
    from basicsr.utils import img2tensor, tensor2img

    net = net.eval().to(device)
    per_image = {}
    for image, hr, lr in benchmark_pairs(folder, scale):
        lq = img2tensor(lr.astype(np.float32) / 255.0, bgr2rgb=True, float32=True)[None].to(device)
        sr = tensor2img(net(lq).cpu())
        gt = tensor2img(img2tensor(hr.astype(np.float32) / 255.0, bgr2rgb=True, float32=True))
        per_image[image] = (calculate_psnr(sr, gt, scale, test_y_channel=True),
                            calculate_ssim(sr, gt, scale, test_y_channel=True) if ssim else float('nan'))
    values = np.array(list(per_image.values()))
    return BenchmarkResult(name or Path(folder).name, float(values[:, 0].mean()), float(values[:, 1].mean()),
                           per_image)


def evaluate_checkpoint(network: dict, checkpoint: str | os.PathLike, benchmarks: dict[str, str], scale: int,
                        num_gpu: int | str = 'auto', ssim: bool = True) -> dict[str, dict[str, float]]:
    """Build ``network``, load a BasicSR checkpoint (EMA weights if saved) and evaluate it on every benchmark."""
    from basicsr.archs import build_network

    net = build_network(dict(network))
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    net.load_state_dict(state.get('params_ema', state.get('params', state)))
    device = 'cuda' if torch.cuda.is_available() and num_gpu != 0 else 'cpu'
    results = {}
    for name, folder in benchmarks.items():
        result = evaluate(net, folder, scale, device, name, ssim)
        results[name] = {'psnr': result.psnr, 'ssim': result.ssim,
                         'per_image': {image: [float(p), float(s)] for image, (p, s) in result.per_image.items()}}
    return results
