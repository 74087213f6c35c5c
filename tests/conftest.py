"""Shared fixtures: a tiny SR dataset made with ``srprune prepare`` and option files like users write."""

from __future__ import annotations

import os

if int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1')) > 1:
    # one core per worker: two workers' torch thread pools on two cores would spin against each other
    # (OpenMP busy-waits), several times slower; the commands the tests run inherit this
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.environ.setdefault('MKL_NUM_THREADS', '1')
import importlib.util
import subprocess
import sys
from pathlib import Path

if importlib.util.find_spec('threadpoolctl') is not None:
    # threadpoolctl sets KMP_DUPLICATE_LIB_OK when first imported (by scipy or scikit-image inside some
    # test): imported later, it changed the environment under the command server (CliServer), and every
    # later command of that worker paid a fresh process's imports (about 4.5 s each; 59 commands in one run)
    import threadpoolctl  # noqa: F401

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


def train_run(folder: Path, opt: dict, *extra: str, disable: str = '') -> Path:
    """``srprune train -opt <name>.yml`` in ``folder`` as a user runs it; must succeed; returns the experiment."""
    folder.mkdir(parents=True, exist_ok=True)
    write_options(folder / f"{opt['name']}.yml", opt)
    proc = run_cli(['train', '-opt', f"{opt['name']}.yml", *extra], folder, disable=disable)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder / 'experiments' / opt['name']


def cli_env(disable: str = '') -> dict:
    """The environment of a command the tests run: no GPU, unbuffered output, the named fixes switched off."""
    return dict(os.environ, SRPRUNE_COMPAT_DISABLE=disable, CUDA_VISIBLE_DEVICES='', PYTHONUNBUFFERED='1')


def run_cli(args: list[str], cwd: Path, disable: str = '', timeout: int = 300,
            launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``srprune`` (or a launcher around it) as a user would, in ``cwd``.

    A plain ``srprune`` command with every fix on is forked from a server that imported everything
    once (``cli_server``: the same ``python -m srprune_basicsr``, without 4.5 s of imports per call);
    anything read at start-up (a fix switched off, another environment, a launcher) gets a fresh
    process, as does every command with ``SRPRUNE_TEST_SUBPROCESS=1``.
    """
    env = cli_env(disable)
    if launcher is None and not disable and os.environ.get('SRPRUNE_TEST_SUBPROCESS') != '1':
        server = CliServer.for_env(env)
        if server is not None:
            return server.run(args, cwd, env, timeout)
    cmd = (launcher or [sys.executable, '-m', 'srprune_basicsr']) + args
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def startup(env: dict) -> dict:
    """What of an environment a process reads at start-up (pytest's own per-test variables are not)."""
    return {k: v for k, v in env.items() if not k.startswith('PYTEST_')}


class CliServer:
    """The client side of ``tests/cli_server.py`` (one server per test process, started on first use)."""

    _instance: CliServer | None = None

    def __init__(self, env: dict) -> None:
        import tempfile
        import threading

        self.env = env
        self.folder = Path(tempfile.mkdtemp(prefix='srprune-cli-'))
        self.proc = subprocess.Popen([sys.executable, str(REPO / 'tests' / 'cli_server.py')], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=self.folder)
        self.lock = threading.Lock()
        self.count = 0

    @classmethod
    def for_env(cls, env: dict) -> CliServer | None:
        """The server started with exactly ``env`` (None when the tests changed the environment since)."""
        if cls._instance is None:
            import atexit

            cls._instance = cls(env)
            atexit.register(cls._instance.close)
        server = cls._instance
        return server if startup(server.env) == startup(env) and server.proc.poll() is None else None

    def run(self, args: list[str], cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
        import json
        import signal
        import time

        with self.lock:
            self.count += 1
            base = self.folder / str(self.count)
            request = {'args': [str(a) for a in args], 'cwd': str(cwd), 'env': env, 'stdout': f'{base}.out',
                       'stderr': f'{base}.err', 'status': f'{base}.status'}
            self.proc.stdin.write(json.dumps(request) + '\n')
            self.proc.stdin.flush()
            pid = json.loads(self.proc.stdout.readline())['pid']
        status, deadline = Path(request['status']), time.monotonic() + timeout
        while not status.exists():
            if time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(['srprune', *args], timeout)
            time.sleep(0.02)
        returncode = json.loads(status.read_text())['returncode']
        out, err = (Path(request[k]).read_text(errors='replace') for k in ('stdout', 'stderr'))
        for key in ('stdout', 'stderr', 'status'):
            Path(request[key]).unlink()
        return subprocess.CompletedProcess([sys.executable, '-m', 'srprune_basicsr', *args], returncode, out, err)

    def close(self) -> None:
        import shutil

        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


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


KERNELS = ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']


def realesrnet_options(name: str, dataroot_gt: Path, meta_info: Path | None = None, total_iter: int = 6,
                       queue_size: int = 4, model_type: str = 'RealESRNetModel') -> dict:
    """Real-ESRGAN's RealESRNet x4 option file, shrunk for a CPU: tiny RRDBNet, 32 px crops, batch 2, 4-pair pool."""
    degradation = dict(
        gt_usm=True, resize_prob=[0.2, 0.7, 0.1], resize_range=[0.15, 1.5], gaussian_noise_prob=0.5,
        noise_range=[1, 30], poisson_scale_range=[0.05, 3], gray_noise_prob=0.4, jpeg_range=[30, 95],
        second_blur_prob=0.8, resize_prob2=[0.3, 0.4, 0.3], resize_range2=[0.3, 1.2], gaussian_noise_prob2=0.5,
        noise_range2=[1, 25], poisson_scale_range2=[0.05, 2.5], gray_noise_prob2=0.4, jpeg_range2=[30, 95])
    kernels = dict(
        blur_kernel_size=21, kernel_list=KERNELS, kernel_prob=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03], sinc_prob=0.1,
        blur_sigma=[0.2, 3], betag_range=[0.5, 4], betap_range=[1, 2], blur_kernel_size2=21, kernel_list2=KERNELS,
        kernel_prob2=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03], sinc_prob2=0.1, blur_sigma2=[0.2, 1.5],
        betag_range2=[0.5, 4], betap_range2=[1, 2], final_sinc_prob=0.8)
    lmdb = str(dataroot_gt).endswith('.lmdb')
    train = dict(name='gt_only', type='RealESRGANDataset', dataroot_gt=str(dataroot_gt),
                 io_backend={'type': 'lmdb' if lmdb else 'disk'}, **kernels, gt_size=32, use_hflip=True,
                 use_rot=False, use_shuffle=True, num_worker_per_gpu=0, batch_size_per_gpu=2,
                 dataset_enlarge_ratio=1, prefetch_mode=None)
    if meta_info is not None:
        train['meta_info'] = str(meta_info)
    return dict(
        name=name, model_type=model_type, scale=4, num_gpu=0, manual_seed=0, **degradation, gt_size=32,
        queue_size=queue_size, datasets={'train': train},
        network_g=dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, num_grow_ch=8),
        path=dict(pretrain_network_g=None, strict_load_g=True, resume_state=None),
        train=dict(ema_decay=0.999, optim_g=dict(type='Adam', lr=2e-4, weight_decay=0, betas=[0.9, 0.99]),
                   scheduler=dict(type='MultiStepLR', milestones=[1000], gamma=0.5), total_iter=total_iter,
                   warmup_iter=-1, pixel_opt=dict(type='L1Loss', loss_weight=1.0, reduction='mean')),
        logger=dict(print_freq=1, save_checkpoint_freq=1000, use_tb_logger=False, wandb=None),
        dist_params=dict(backend='nccl', port=29500))


def meta_info_folder(root: Path) -> Path:
    """A DF2K+OST-style GT folder: two sub-folders holding files of the same names, listed by a meta_info file."""
    import shutil

    lines = []
    for folder, offset in (('DF2K_HR_sub', 0), ('OST', 1)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        photo_crops(root / 'tmp', 3, 48, offset=offset)
        for i, src in enumerate(sorted((root / 'tmp').glob('*.png'))):
            name = f'img{i:03d}_s001.png'
            shutil.move(src, root / folder / name)
            lines.append(f'{folder}/{name} (48,48,3)')
    shutil.rmtree(root / 'tmp')
    (root / 'meta_info').mkdir(exist_ok=True)
    meta = root / 'meta_info' / 'meta_info_DF2K_OST_sub.txt'
    meta.write_text('\n'.join(lines) + '\n')
    return meta


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked slow first (in their order), so the parallel workers run out of work together."""
    items.sort(key=lambda item: item.get_closest_marker('slow') is None)
