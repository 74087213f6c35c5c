"""HAT (pinned to basicsr 1.3.4.9) runs unchanged on basicsr 1.4.2 with the plugin: ``moved_names``.

HAT is not on PyPI: ``tests/fixtures/hat_fixture`` stands in for a clone. It makes each of HAT's
``from basicsr... import ...`` (``HAT_IMPORTS``) with HAT's module paths and its layout; each test
copies it into its own folder and runs it as a user runs HAT, from the clone's root with ``PYTHONPATH=.``.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, latest_log, train_options, write_options

from srprune_basicsr.formats.keys import root_keys

FIXTURE = REPO / 'tests' / 'fixtures' / 'hat_fixture'
MISSING = "ImportError: cannot import name 'rgb2ycbcr' from 'basicsr.utils.matlab_functions'"

# every name HAT's hat/ package imports from basicsr, by module (archs, data, models, train.py, test.py)
HAT_IMPORTS = {
    'basicsr.archs.arch_util': ['to_2tuple', 'trunc_normal_'],
    'basicsr.data.data_util': ['paths_from_lmdb', 'scandir'],
    'basicsr.data.degradations': ['circular_lowpass_kernel', 'random_mixed_kernels', 'random_add_gaussian_noise_pt',
                                  'random_add_poisson_noise_pt'],
    'basicsr.data.transforms': ['augment', 'paired_random_crop'],
    'basicsr.metrics': ['calculate_metric'],
    'basicsr.models.sr_model': ['SRModel'],
    'basicsr.models.srgan_model': ['SRGANModel'],
    'basicsr.test': ['test_pipeline'],
    'basicsr.train': ['train_pipeline'],
    'basicsr.utils': ['DiffJPEG', 'FileClient', 'USMSharp', 'get_root_logger', 'imfrombytes', 'img2tensor', 'imwrite',
                      'scandir', 'tensor2img'],
    'basicsr.utils.color_util': ['rgb2ycbcr'],  # where later HAT versions take it from
    'basicsr.utils.img_process_util': ['filter2D'],
    'basicsr.utils.matlab_functions': ['imresize', 'rgb2ycbcr'],
    'basicsr.utils.registry': ['ARCH_REGISTRY', 'DATASET_REGISTRY', 'MODEL_REGISTRY'],
}
MOVED = {'basicsr.utils.matlab_functions': ['rgb2ycbcr', 'bgr2ycbcr', 'ycbcr2rgb', 'ycbcr2bgr']}

CHECK_NAMES = '''
import importlib, json, sys
missing = [f'{module}: {name}' for module, names in json.loads(sys.argv[1]).items()
           for name in names if not hasattr(importlib.import_module(module), name)]
print(json.dumps(missing))
'''


def clone(tmp_path: Path) -> Path:
    """A private copy of the stand-in clone (its __pycache__ and experiments/ stay in the test's folder)."""
    root = tmp_path / 'HAT'
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns('__pycache__'))
    return root


def run_in_clone(root: Path, args: list[str], disable: str = '', timeout: int = 300, pythonpath: str | None = '.',
                 program: str = sys.executable) -> subprocess.CompletedProcess:
    """``PYTHONPATH=. python <args>`` (or another ``program``) in the clone's root, on the CPU."""
    env = dict(os.environ, SRPRUNE_COMPAT_DISABLE=disable, CUDA_VISIBLE_DEVICES='', PYTHONUNBUFFERED='1')
    env.pop('PYTHONPATH', None)
    if pythonpath is not None:
        env['PYTHONPATH'] = pythonpath
    return subprocess.run([program, *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize('disable,missing', [
    ('', []),
    ('moved_names', ['basicsr.utils.matlab_functions: rgb2ycbcr']),
])
def test_every_name_hat_imports_from_basicsr_is_there(tmp_path: Path, disable: str, missing: list[str]) -> None:
    proc = run_in_clone(tmp_path, ['-c', CHECK_NAMES, json.dumps(HAT_IMPORTS)], disable=disable)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == missing


def test_the_moved_colour_conversions_are_color_utils_own() -> None:
    import importlib

    from basicsr.utils import color_util

    for module, names in MOVED.items():
        old = importlib.import_module(module)
        assert all(getattr(old, name) is getattr(color_util, name) for name in names)


@pytest.mark.parametrize('disable', ['', 'moved_names'])
def test_import_hat_as_its_train_py_does(tmp_path: Path, disable: str) -> None:
    """``import hat`` makes the process's first import of basicsr: the plugin is in before HAT's datasets import."""
    root = clone(tmp_path)
    proc = run_in_clone(root, ['-c', 'import hat; from basicsr.utils.registry import DATASET_REGISTRY as D, '
                                     'MODEL_REGISTRY as M; print(D.get("ImageNetPairedDataset").__module__, '
                                     'M.get("HATModel").__module__)'], disable=disable)
    if disable:
        assert proc.returncode == 1 and MISSING in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.split() == ['hat.data.imagenet_paired_dataset', 'hat.models.hat_model']


def hat_options(tiny_data: Path, keep: Path, name: str = 'hat_pruned') -> dict:
    """HAT's x2 layout on the tiny LMDB: GT-only ImageNetPairedDataset (Y channel), HATModel, a kept list."""
    opt = train_options(tiny_data, name, total_iter=3)
    opt.update(model_type='HATModel', imports=['hat'])
    del opt['val']  # HAT's model validates with its padded test; nothing to validate on here
    opt['datasets'] = {'train': dict(
        name='tiny_imagenet', type='ImageNetPairedDataset', dataroot_gt=str(tiny_data / 'train_sub' / 'HR_sub.lmdb'),
        io_backend={'type': 'lmdb'}, color='y', gt_size=32, use_hflip=True, use_rot=True, use_shuffle=True,
        num_worker_per_gpu=0, batch_size_per_gpu=2, dataset_enlarge_ratio=1, prefetch_mode=None,
        prune={'keep': str(keep)})}
    opt['network_g'] = dict(type='TinyHAT', in_chans=1, embed_dim=8, upscale=2, window_size=4, img_range=1.0)
    return opt


@pytest.mark.slow
@pytest.mark.parametrize('disable', ['', 'moved_names'])
def test_hat_train_py_trains_on_a_pruned_dataset(tiny_data: Path, tmp_path: Path, disable: str) -> None:
    root = clone(tmp_path)
    keys = root_keys(tiny_data / 'train_sub' / 'HR_sub.lmdb')
    keep = tmp_path / 'keep.txt'
    keep.write_text(''.join(f'{k}\n' for k in keys[::3]))  # 6 of the 16 sub-images
    write_options(root / 'hat_pruned.yml', hat_options(tiny_data, keep))
    proc = run_in_clone(root, ['hat/train.py', '-opt', 'hat_pruned.yml'], disable=disable)
    exp = root / 'experiments' / 'hat_pruned'
    if disable:
        assert proc.returncode == 1 and MISSING in proc.stderr
        assert 'hat/data/imagenet_paired_dataset.py' in proc.stderr
        assert not exp.exists()
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = latest_log(exp)
    assert 'ImageNetPairedDataset [tiny_imagenet]: kept 6 of 16 samples' in log
    assert 'Model [HATModel] is created' in log and 'Network [TinyHAT] is created' in log
    assert 'iter:       3,' in log
    assert (exp / 'models' / 'net_g_latest.pth').is_file()


@pytest.mark.slow
@pytest.mark.parametrize('pythonpath', ['.', None])
def test_srprune_train_imports_hat_from_the_clone_root(tiny_data: Path, tmp_path: Path,
                                                       pythonpath: str | None) -> None:
    """``PYTHONPATH=. srprune train`` in the clone: ``imports: [hat]`` finds HAT's package (not installed)."""
    root = clone(tmp_path)
    keep = tmp_path / 'keep.txt'
    keep.write_text(''.join(f'{k}\n' for k in root_keys(tiny_data / 'train_sub' / 'HR_sub.lmdb')[:4]))
    write_options(root / 'hat_cli.yml', hat_options(tiny_data, keep, name='hat_cli'))
    srprune = str(Path(sys.executable).with_name('srprune'))
    proc = run_in_clone(root, ['train', '-opt', 'hat_cli.yml'], pythonpath=pythonpath, program=srprune)
    if pythonpath is None:
        assert proc.returncode == 2
        assert "hat_cli.yml: imports: package 'hat' is not installed" in proc.stderr
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = latest_log(root / 'experiments' / 'hat_cli')
    assert 'ImageNetPairedDataset [tiny_imagenet]: kept 4 of 16 samples' in log and 'iter:       3,' in log
