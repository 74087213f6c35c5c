"""Each basicsr 1.4.2 fix (version and semantics fixes, ``_basicsr``) is needed: the scenario fails without it.

Switching a fix off uses ``SRPRUNE_COMPAT_DISABLE``; everything runs in subprocesses so the
fixes applied in this test process do not leak in.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import latest_log, run_cli, train_options, write_options

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def train_two_ranks(option_file: Path, disable: str = ''):  # noqa: ANN201
    """``torchrun --nproc_per_node=2 -m srprune_basicsr train -opt X --launcher pytorch`` in its folder."""
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
                '-m', 'srprune_basicsr']
    return run_cli(['train', '-opt', option_file.name, '--launcher', 'pytorch'], option_file.parent, disable=disable,
                   launcher=launcher)


CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available(), reason='the failure only shows on a host without CUDA')


@pytest.mark.parametrize('disable,ok', [('', True), ('functional_tensor', False)])
def test_import_needs_functional_tensor_shim(tmp_path: Path, disable: str, ok: bool) -> None:
    proc = run_cli(['-c', 'import srprune_basicsr'], tmp_path, disable=disable, launcher=[sys.executable])
    assert (proc.returncode == 0) is ok
    if not ok:
        assert 'functional_tensor' in proc.stderr


def _train_then_resume(tiny_data: Path, cwd: Path, disable: str, add_numpy_metric: bool = False):
    opt = train_options(tiny_data, 'resume_me', total_iter=2)
    write_options(cwd / 'a.yml', opt)
    first = run_cli(['train', '-opt', 'a.yml'], cwd)
    assert first.returncode == 0, first.stderr[-2000:]
    if add_numpy_metric:  # what a model that keeps its best PSNR (a numpy float) in the state saves
        state_path = cwd / 'experiments' / 'resume_me' / 'training_states' / '2.state'
        state = torch.load(state_path, weights_only=False)
        state['best_metric_results'] = {'val': {'psnr': np.float64(31.5), 'iters': np.arange(3)}}
        torch.save(state, state_path)
    opt['train']['total_iter'] = 4
    write_options(cwd / 'b.yml', opt)
    return run_cli(['train', '-opt', 'b.yml', '--auto_resume'], cwd, disable=disable)


@CPU_ONLY
@pytest.mark.parametrize('disable,ok', [('', True), ('cpu_resume', False)])
def test_auto_resume_on_cpu_only_host(tiny_data: Path, tmp_path: Path, disable: str, ok: bool) -> None:
    proc = _train_then_resume(tiny_data, tmp_path, disable)
    assert (proc.returncode == 0) is ok, proc.stderr[-2000:]
    if ok:
        assert 'Resuming training from epoch' in latest_log(tmp_path / 'experiments' / 'resume_me')
    else:
        assert 'cuda' in proc.stderr.lower() or 'nvidia' in proc.stderr.lower()


@pytest.mark.parametrize('disable,ok', [('', True), ('weights_only', False)])
def test_resume_state_loads_with_weights_only(tiny_data: Path, tmp_path: Path, disable: str, ok: bool) -> None:
    proc = _train_then_resume(tiny_data, tmp_path, disable, add_numpy_metric=True)
    assert (proc.returncode == 0) is ok, proc.stderr[-2000:]
    if not ok:
        assert 'Weights only load failed' in proc.stderr and 'numpy' in proc.stderr


@CPU_ONLY
@pytest.mark.parametrize('disable,ok', [('', True), ('gloo_launcher', False)])
def test_torchrun_two_processes_on_cpu(tiny_data: Path, tmp_path: Path, disable: str, ok: bool) -> None:
    write_options(tmp_path / 'ddp.yml', train_options(tiny_data, 'ddp_run', total_iter=4))
    proc = train_two_ranks(tmp_path / 'ddp.yml', disable)
    assert (proc.returncode == 0) is ok, proc.stderr[-3000:]
    if ok:
        log = latest_log(tmp_path / 'experiments' / 'ddp_run')
        assert 'World size (gpu number): 2' in log and 'iter:       4,' in log
        assert (tmp_path / 'experiments' / 'ddp_run' / 'models' / 'net_g_latest.pth').is_file()
    else:
        assert 'ZeroDivisionError' in proc.stderr  # basicsr: torch.cuda.set_device(rank % 0 GPUs)


@CPU_ONLY
@pytest.mark.parametrize('disable,ok', [('', True), ('spawn_workers', False)])
def test_torchrun_with_loader_workers(tiny_data: Path, tmp_path: Path, disable: str, ok: bool,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # --launcher pytorch sets the spawn start method: each loader worker unpickles the dataset in a
    # fresh interpreter, which imports basicsr before the plugin's shim unless the dataset says otherwise
    # (auto-registration would install the shim there too: it is off here, as without the .pth file)
    monkeypatch.setenv('SRPRUNE_AUTOLOAD', '0')
    opt = train_options(tiny_data, 'ddp_workers', total_iter=4)
    opt['datasets']['train'].update(num_worker_per_gpu=1, batch_size_per_gpu=2)
    write_options(tmp_path / 'ddp.yml', opt)
    proc = train_two_ranks(tmp_path / 'ddp.yml', disable)
    assert (proc.returncode == 0) is ok, proc.stderr[-3000:]
    if ok:
        assert 'iter:       4,' in latest_log(tmp_path / 'experiments' / 'ddp_workers')
    else:
        assert "No module named 'torchvision.transforms.functional_tensor'" in proc.stderr


@pytest.mark.parametrize('disable,ok', [('', True), ('epoch_count', False)])
def test_training_reaches_total_iter_when_last_batch_is_dropped(tiny_data: Path, tmp_path: Path, disable: str,
                                                               ok: bool) -> None:
    # 16 samples, batch 6: BasicSR counts ceil(16/6)=3 iterations per epoch, the loader runs 2;
    # 12 iterations then need 6 epochs, BasicSR plans 4 (+1) and stops at iteration 10.
    opt = train_options(tiny_data, 'count_epochs', total_iter=12)
    opt['datasets']['train']['batch_size_per_gpu'] = 6
    opt['logger']['save_checkpoint_freq'] = 100
    write_options(tmp_path / 'c.yml', opt)
    proc = run_cli(['train', '-opt', 'c.yml'], tmp_path, disable=disable)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = latest_log(tmp_path / 'experiments' / 'count_epochs')
    assert ('iter:      12,' in log) is ok


def test_dataset_smaller_than_a_batch_is_an_error(tiny_data: Path, tmp_path: Path) -> None:
    opt = train_options(tiny_data, 'too_small', total_iter=2)
    opt['datasets']['train']['batch_size_per_gpu'] = 32
    write_options(tmp_path / 'd.yml', opt)
    proc = run_cli(['train', '-opt', 'd.yml'], tmp_path)
    assert proc.returncode != 0
    assert '16 samples' in proc.stderr and 'batch_size_per_gpu=32' in proc.stderr


def test_seeded_shuffle_varies_the_data_order_with_manual_seed_only_when_asked() -> None:
    from basicsr.data.data_sampler import EnlargedSampler

    def order(seed: int | None, epoch: int = 3) -> list[int]:
        sampler = EnlargedSampler(list(range(50)), num_replicas=1, rank=0)
        if seed is not None:
            sampler.shuffle_seed = seed
        sampler.set_epoch(epoch)
        return list(sampler)

    generator = torch.Generator()
    generator.manual_seed(3)
    assert order(None) == torch.randperm(50, generator=generator).tolist()  # BasicSR's order, untouched
    assert order(0) == order(0) and order(0) != order(1) and order(1, epoch=4) != order(1)
    assert sorted(order(7)) == list(range(50))


FORK_WORKERS = '''
import multiprocessing, sys
multiprocessing.set_start_method(sys.argv[1])  # forkserver: Python 3.14's default, and a study run's
import srprune_basicsr  # plugs in
import torch
from srprune_basicsr._basicsr import compat, hooks
loader = torch.utils.data.DataLoader(list(range(8)), batch_size=4, num_workers=int(sys.argv[2]))
registered = compat.fork_loader_workers in hooks.callbacks('train_loaders')
if registered:
    compat.fork_loader_workers(hooks.TrainLoaders({}, None, loader, None, [], 1, 1))
print(registered, getattr(loader.multiprocessing_context, '_name', None), [b.tolist() for b in loader])
'''


@pytest.mark.parametrize('method,workers,disable,context', [
    ('forkserver', 1, '', 'fork'),
    ('forkserver', 1, 'fork_workers', 'None'),  # every epoch's new worker re-imports torch, basicsr, the plugin
    ('spawn', 1, '', 'None'),                   # spawn set on purpose (BasicSR's --launcher pytorch) stays
    ('forkserver', 0, '', 'None')])
def test_train_loader_workers_start_by_fork_under_forkserver(method: str, workers: int, disable: str,
                                                             context: str) -> None:
    env = {**os.environ, 'SRPRUNE_COMPAT_DISABLE': disable}
    proc = subprocess.run([sys.executable, '-c', FORK_WORKERS, method, str(workers)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    registered, made, batches = proc.stdout.strip().split(' ', 2)
    assert registered == str(not disable) and made == context
    assert batches == '[[0, 1, 2, 3], [4, 5, 6, 7]]'  # the same data either way


NO_DISTUTILS = '''
import sys
class NoDistutils:  # Python 3.12 and later have no distutils
    def find_spec(self, name, path=None, target=None):
        if name == 'distutils' or name.startswith('distutils.'):
            raise ImportError(f'No module named {name!r}')
sys.meta_path.insert(0, NoDistutils())
import srprune_basicsr  # noqa: F401  (the shims, then basicsr)
from basicsr.archs.arch_util import LooseVersion
print(LooseVersion('0.29.1') >= LooseVersion('0.9.0'), LooseVersion('1.10') > '1.9')
'''


@pytest.mark.parametrize('disable,ok', [('', True), ('distutils_version', False)])
def test_basicsr_imports_without_distutils(disable: str, ok: bool) -> None:
    env = {**os.environ, 'SRPRUNE_COMPAT_DISABLE': disable, 'SRPRUNE_AUTOLOAD': '0'}
    proc = subprocess.run([sys.executable, '-c', NO_DISTUTILS], capture_output=True, text=True, env=env, timeout=300)
    if ok:
        assert proc.returncode == 0 and proc.stdout.split() == ['True', 'True'], proc.stderr[-2000:]
    else:
        assert proc.returncode == 1 and "No module named 'distutils'" in proc.stderr
