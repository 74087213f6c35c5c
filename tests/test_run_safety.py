"""Training runs that collide, and checkpoints on a full disk (docs/safety.md, "Training runs").

Two runs of one experiment name: the second is refused before it touches the first's folder (the
run lock, ``_basicsr/runs.py``). A save that fails stops the run and leaves the earlier checkpoints
loadable (the ``atomic_saves`` fix); with the fix off, BasicSR exits 0 over a truncated checkpoint.
Everything that trains runs in subprocesses, in ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import basicsr
import pytest
import torch
from conftest import latest_log, run_cli, train_options, write_options

from srprune_basicsr._basicsr.runs import lock_run_folders, run_folders
from srprune_basicsr.formats.atomic import OutputBusyError, hold_lock, holds_lock, lock_file_of


def env_with(pythonpath: Path | None = None, disable: str = '') -> dict:
    """The environment ``run_cli`` gives its commands, with ``pythonpath`` in front of PYTHONPATH."""
    env = dict(os.environ, SRPRUNE_COMPAT_DISABLE=disable, CUDA_VISIBLE_DEVICES='', PYTHONUNBUFFERED='1')
    if pythonpath is not None:
        env['PYTHONPATH'] = os.pathsep.join(p for p in (str(pythonpath), os.environ.get('PYTHONPATH')) if p)
    return env


def package(folder: Path, name: str, code: str) -> Path:
    """An ``imports:`` package under ``folder`` (put ``folder`` on PYTHONPATH)."""
    (folder / name).mkdir(parents=True)
    (folder / name / '__init__.py').write_text(code)
    return folder


def held_run_package(folder: Path) -> Path:
    """``imports: [hold_run]``: a training that, its folders made, writes ``waiting`` and waits for ``open``."""
    return package(folder, 'hold_run', (
        'import time\nfrom pathlib import Path\n\nfrom srprune_basicsr._basicsr import hooks\n\n'
        f'HERE = Path({str(folder)!r})\n\n\n'
        'def wait(loaders):\n'
        "    (HERE / 'waiting').touch()\n"
        '    deadline = time.monotonic() + 240\n'
        "    while not (HERE / 'open').exists() and time.monotonic() < deadline:\n"
        '        time.sleep(0.05)\n\n\n'
        "hooks.register('train_loaders', wait)\n"))


def start_held_run(cmd: list[str], cwd: Path, pkgs: Path) -> subprocess.Popen:
    """Start a training that holds still once its experiment folder exists (and its lock is taken)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env_with(pkgs), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 240
    while not (pkgs / 'waiting').exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f'the first run did not reach its training loop (rc {proc.returncode}): {err[-3000:]}')
        time.sleep(0.05)
    return proc


def finish(proc: subprocess.Popen, pkgs: Path) -> str:
    (pkgs / 'open').touch()
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return err


def check_first_run_intact(root: Path, name: str) -> None:
    exp = root / 'experiments' / name
    state = torch.load(exp / 'models' / 'net_g_latest.pth', map_location='cpu', weights_only=True)
    assert set(state) == {'params'}
    assert len(list(exp.glob('train_*.log'))) == 1  # the refused run wrote no log of its own
    assert not [p.name for p in root.rglob('*_archived_*')]


# ------------------------------------------------------------------ the run lock
@pytest.mark.slow
def test_a_second_run_of_the_same_name_is_refused_and_the_first_finishes(tiny_data: Path, tmp_path: Path) -> None:
    pkgs = held_run_package(tmp_path / 'pkgs')
    write_options(tmp_path / 'first.yml', train_options(tiny_data, 'twice', imports=['hold_run']))
    write_options(tmp_path / 'second.yml', train_options(tiny_data, 'twice'))
    first = start_held_run([sys.executable, '-m', 'srprune_basicsr', 'train', '-opt', 'first.yml'], tmp_path, pkgs)
    try:
        second = run_cli(['train', '-opt', 'second.yml'], tmp_path)
    finally:
        finish(first, pkgs)
    assert second.returncode == 2, second.stderr[-3000:]
    assert 'Traceback' not in second.stderr
    line = second.stderr.strip().splitlines()[-1]
    assert line.startswith('srprune train: error: experiments/twice: another process (pid '), line
    assert f'(pid {first.pid} on ' in line and "training 'twice'" in line, line
    assert 'wait until it ends' in line and 'change name: in second.yml' in line, line
    check_first_run_intact(tmp_path, 'twice')
    # the lock ended with the first process: the name resumes
    write_options(tmp_path / 'more.yml', train_options(tiny_data, 'twice', total_iter=6))
    resumed = run_cli(['train', '-opt', 'more.yml', '--auto_resume'], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'Resuming training from epoch' in latest_log(tmp_path / 'experiments' / 'twice')


@pytest.mark.slow
def test_a_study_run_ends_with_the_process_that_started_it(tiny_data: Path, tmp_path: Path) -> None:
    """A run forked for a study (srprune_basicsr.study.launcher) is the forkserver's child, not the study's:
    killed alone, the study must not leave it training on, holding the lock its own rerun then meets."""
    from srprune_basicsr.formats.atomic import lock_holder

    def alive(pid: int) -> bool:  # a zombie (ended, not reaped) has ended
        try:
            return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
        except (FileNotFoundError, ProcessLookupError):
            return False

    pkgs = held_run_package(tmp_path / 'pkgs')
    write_options(tmp_path / 'first.yml', train_options(tiny_data, 'orphan', imports=['hold_run']))
    study = start_held_run([sys.executable, '-c', 'import sys; from srprune_basicsr.study.launcher import train; '
                            'train(sys.argv[1], sys.argv[2])', 'first.yml', str(tmp_path)], tmp_path, pkgs)
    holder = lock_holder(tmp_path / 'experiments' / 'orphan')
    run_pid = int(holder.split()[1])
    assert run_pid != study.pid and alive(run_pid), holder  # trained in a process of its own
    study.kill()
    study.communicate(timeout=60)
    deadline = time.monotonic() + 60
    while alive(run_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(run_pid), f'the run (pid {run_pid}) outlived the study that started it'
    (pkgs / 'open').touch()
    write_options(tmp_path / 'again.yml', train_options(tiny_data, 'orphan'))
    again = run_cli(['train', '-opt', 'again.yml', '--auto_resume'], tmp_path)  # not refused: the lock went
    assert again.returncode == 0, again.stderr[-3000:]


@pytest.mark.slow
def test_basicsr_own_train_py_is_refused_too(tiny_data: Path, tmp_path: Path) -> None:
    """A clone's ``python basicsr/train.py`` (train.py as ``__main__``, the plugin auto-loaded) meets the lock."""
    clone = tmp_path / 'BasicSR'
    (clone / 'basicsr').mkdir(parents=True)
    shutil.copy(Path(basicsr.__file__).parent / 'train.py', clone / 'basicsr' / 'train.py')
    pkgs = held_run_package(tmp_path / 'pkgs')
    write_options(clone / 'first.yml', train_options(tiny_data, 'twice', imports=['hold_run']))
    write_options(clone / 'second.yml', train_options(tiny_data, 'twice'))
    first = start_held_run([sys.executable, '-m', 'srprune_basicsr', 'train', '-opt', 'first.yml'], clone, pkgs)
    try:
        second = run_cli(['basicsr/train.py', '-opt', 'second.yml'], clone, launcher=[sys.executable])
    finally:
        finish(first, pkgs)
    assert second.returncode != 0
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith('train.py: error: experiments/twice: another process') and 'Traceback' not in second.stderr
    assert f'pid {first.pid} on ' in last and 'change name: in second.yml' in last, last  # one line, the last
    check_first_run_intact(clone, 'twice')


@pytest.mark.slow
def test_a_refused_run_never_removes_the_folder_another_run_made_meanwhile(tiny_data: Path, tmp_path: Path) -> None:
    """The other run makes its folder while this one starts (after this one looked): the refusal leaves it be."""
    exp = tmp_path / 'experiments' / 'race'
    holder = hold_in_another_process(exp)
    pkgs = package(tmp_path / 'pkgs', 'appears', (
        'import os\n\nfrom srprune_basicsr._basicsr import hooks\n\n\n'
        'def other_run_makes_its_folder(opt):\n'
        "    os.makedirs(os.path.join(opt['path']['experiments_root'], 'models'))\n"
        "    open(os.path.join(opt['path']['experiments_root'], 'train_race_1.log'), 'w').close()\n\n\n"
        "hooks.register('options', other_run_makes_its_folder, order=0)\n"))
    write_options(tmp_path / 'race.yml', train_options(tiny_data, 'race', imports=['appears']))
    env = env_with(pkgs)
    try:
        proc = subprocess.run([sys.executable, '-m', 'srprune_basicsr', 'train', '-opt', 'race.yml'], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
    finally:
        holder.communicate(timeout=60)
    assert proc.returncode == 2 and 'another process (pid' in proc.stderr, proc.stderr[-3000:]
    assert (exp / 'models').is_dir() and (exp / 'train_race_1.log').is_file()


@pytest.mark.slow
def test_a_test_run_meets_the_lock_of_its_results_folder(tiny_data: Path, tmp_path: Path) -> None:
    from basicsr.archs import build_network

    network = {'type': 'SRCNN', 'upscale': 2}
    torch.save({'params': build_network(dict(network)).state_dict()}, tmp_path / 'net.pth')
    opt = {'name': 'held', 'model_type': 'SRModel', 'scale': 2, 'num_gpu': 0, 'network_g': network,
           'datasets': {'test_1': {'name': 'val', 'type': 'PairedImageDataset', 'io_backend': {'type': 'disk'},
                                   'dataroot_gt': str(tiny_data / 'val' / 'GTmod12'),
                                   'dataroot_lq': str(tiny_data / 'val' / 'LRbicx2')}},
           'path': {'pretrain_network_g': str(tmp_path / 'net.pth'), 'strict_load_g': True},
           'val': {'save_img': False, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 2}}}}
    write_options(tmp_path / 'test.yml', opt)
    holder = hold_in_another_process(tmp_path / 'results' / 'held')
    try:
        proc = run_cli(['test', '-opt', 'test.yml'], tmp_path)
    finally:
        holder.communicate(timeout=60)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f'srprune test: error: results/held: another process (pid {holder.pid} on {os.uname().nodename}) is '
        "testing 'held' in this folder; wait until it ends, or change name: in test.yml")
    assert not (tmp_path / 'results' / 'held').exists()
    ok = run_cli(['test', '-opt', 'test.yml'], tmp_path)  # the holder ended
    assert ok.returncode == 0, ok.stderr[-3000:]


def hold_in_another_process(folder: Path) -> subprocess.Popen:
    """A process that holds the run lock of ``folder`` until its stdin closes."""
    code = ('import sys\nfrom srprune_basicsr.formats.atomic import hold_lock\n'
            f'hold_lock({str(folder)!r})\nprint("held", flush=True)\nsys.stdin.read()\n')
    proc = subprocess.Popen([sys.executable, '-c', code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'held'
    return proc


def test_the_run_lock_is_one_process_at_a_time_and_ends_with_it(tmp_path: Path) -> None:
    folder = tmp_path / 'experiments' / 'x'
    holder = hold_in_another_process(folder)
    try:
        with pytest.raises(OutputBusyError, match=f'in use by another process \\(pid {holder.pid} on '):
            hold_lock(folder)
        assert not holds_lock(folder) and not folder.exists()  # the lock file lies beside the folder
        assert lock_file_of(folder).is_file()
    finally:
        holder.communicate(timeout=60)
    hold_lock(folder)  # the holder ended: its lock went with it
    hold_lock(folder)  # taken again by its holder: a no-op
    assert holds_lock(folder)
    assert lock_file_of(folder).read_text().split()[0] == str(os.getpid())


def test_only_rank_0_locks_and_test_runs_lock_their_results(tmp_path: Path) -> None:
    exp, tb = str(tmp_path / 'experiments' / 'r1'), str(tmp_path / 'tb_logger' / 'r1')
    train = {'name': 'r1', 'is_train': True, 'rank': 1, 'logger': {'use_tb_logger': True},
             'path': {'experiments_root': exp}}
    assert run_folders(train) == [exp, tb]
    lock_run_folders(train)  # rank 1: BasicSR's rank 0 makes the folders, and only it locks them
    assert not (tmp_path / 'experiments').exists() and not holds_lock(exp)
    lock_run_folders({**train, 'rank': 0})
    assert holds_lock(exp) and holds_lock(tb)
    results = str(tmp_path / 'results' / 't1')
    assert run_folders({'name': 't1', 'is_train': False, 'path': {'results_root': results}}) == [results]
    assert run_folders({**train, 'name': 'debug_r1', 'path': {'experiments_root': exp}}) == [exp]  # no tb in debug


# ------------------------------------------------------------------ checkpoints on a full disk
FULL_DISK = '''import errno
import io
import os

import torch

_save = torch.save
_calls = [0]


def save(obj, f, *args, **kwargs):
    """The disk fills after {n} saves: later saves write half their bytes, then fail with ENOSPC."""
    _calls[0] += 1
    if _calls[0] <= {n}:
        return _save(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    _save(obj, buffer, *args, **kwargs)
    half = buffer.getvalue()[:len(buffer.getvalue()) // 2]
    if isinstance(f, (str, os.PathLike)):
        with open(f, 'wb') as out:
            out.write(half)
    else:
        f.write(half)
    raise OSError(errno.ENOSPC, 'No space left on device')


torch.save = save
'''


def loads(path: Path) -> bool:
    try:
        torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # noqa: BLE001  (any failure to read it back)
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize('disable', ['', 'atomic_saves'])
def test_a_full_disk_stops_the_run_and_keeps_the_earlier_checkpoint(tiny_data: Path, tmp_path: Path,
                                                                    disable: str) -> None:
    # saves: net_g_2.pth, 2.state (fine), then net_g_4.pth, 4.state, net_g_latest.pth on a full disk
    pkgs = package(tmp_path / 'pkgs', 'full_disk', FULL_DISK.replace('{n}', '2'))
    write_options(tmp_path / 'a.yml', train_options(tiny_data, 'full', imports=['full_disk']))
    proc = subprocess.run([sys.executable, '-m', 'srprune_basicsr', 'train', '-opt', 'a.yml'], cwd=tmp_path,
                          env=env_with(pkgs, disable), capture_output=True, text=True, timeout=300)
    exp = tmp_path / 'experiments' / 'full'
    models, states = exp / 'models', exp / 'training_states'
    assert loads(models / 'net_g_2.pth') and loads(states / '2.state')
    if disable:  # BasicSR: "Just ignore it", exit 0, and a truncated checkpoint under its final name
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert 'Just ignore it' in latest_log(exp)
        assert (models / 'net_g_4.pth').is_file() and not loads(models / 'net_g_4.pth')
        return
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('srprune train: error: cannot save the model') and str(models / 'net_g_4.pth') in last
    assert 'No space left on device (ENOSPC)' in last and '--auto_resume' in last, last
    assert 'No space left on device (ENOSPC)' in latest_log(exp)  # the log says it too
    assert sorted(p.name for p in models.iterdir()) == ['net_g_2.pth']  # nothing partial, nothing truncated
    assert sorted(p.name for p in states.iterdir()) == ['2.state']


SAVE_BOTH = '''import sys
import types

import torch

import srprune_basicsr  # noqa: F401
from basicsr.models.base_model import BaseModel

torch.manual_seed(0)
net, ema = torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(3, 8, 3)
optimizer = torch.optim.Adam(net.parameters())
net(torch.ones(1, 3, 4, 4)).sum().backward()
optimizer.step()
model = types.SimpleNamespace(opt={'path': {'models': sys.argv[1], 'training_states': sys.argv[1]}},
                              get_bare_model=lambda n: BaseModel.get_bare_model(None, n), optimizers=[optimizer],
                              schedulers=[torch.optim.lr_scheduler.MultiStepLR(optimizer, [10])])
BaseModel.save_network(model, [net, ema], 'net_g', -1, param_key=['params', 'params_ema'])
BaseModel.save_network(model, torch.nn.DataParallel(net), 'net_d', 7)
BaseModel.save_training_state(model, 3, 7)
BaseModel.save_training_state(model, 3, -1)  # the 'latest' call of train.py saves no state
'''


def test_a_saved_checkpoint_is_what_basicsr_saves(tmp_path: Path) -> None:
    (tmp_path / 'save_both.py').write_text(SAVE_BOTH)
    saved = {}
    for disable in ('', 'atomic_saves'):
        out = tmp_path / (disable or 'fixed')
        out.mkdir()
        proc = run_cli(['save_both.py', str(out)], tmp_path, disable=disable, launcher=[sys.executable])
        assert proc.returncode == 0, proc.stderr[-3000:]
        saved[disable] = {p.name: p for p in out.iterdir()}
    fixed, basicsr_files = saved[''], saved['atomic_saves']
    assert sorted(fixed) == sorted(basicsr_files) == ['7.state', 'net_d_7.pth', 'net_g_latest.pth']
    for name in fixed:
        with zipfile.ZipFile(fixed[name]) as a, zipfile.ZipFile(basicsr_files[name]) as b:
            assert a.namelist() == b.namelist()  # the records too: net_g_latest/data.pkl ...
        mine, theirs = (torch.load(f[name], map_location='cpu', weights_only=True) for f in (fixed, basicsr_files))
        assert_same(mine, theirs)
    assert set(torch.load(fixed['net_g_latest.pth'], weights_only=True)) == {'params', 'params_ema'}
    assert oct(fixed['net_g_latest.pth'].stat().st_mode & 0o777) == oct(basicsr_files['net_g_latest.pth'].stat()
                                                                          .st_mode & 0o777)


def assert_same(a: object, b: object) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b


FILE_SIZE_LIMIT = '''import resource
import sys
from pathlib import Path

import torch

import srprune_basicsr  # noqa: F401
from srprune_basicsr._basicsr.fixes import atomic_saves as compat

path = Path(sys.argv[1]) / 'net_g_2.pth'
compat.save_checkpoint({'params': torch.nn.Conv2d(3, 4, 3).state_dict()}, path)
before = path.read_bytes()
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
compat.SAVE_TRIES = 1
try:
    compat.save_or_raise({'params': torch.nn.Conv2d(64, 64, 9).state_dict()}, str(path), 'model')
except compat.CheckpointSaveError as err:
    print(err)
print('unchanged', path.read_bytes() == before, sorted(p.name for p in path.parent.iterdir()))
'''


def test_a_real_write_failure_is_named_and_leaves_the_previous_file(tmp_path: Path) -> None:
    """A file size limit (EFBIG) fails torch's own file writer for real; its cause is found and named."""
    (tmp_path / 'limit.py').write_text(FILE_SIZE_LIMIT)
    (tmp_path / 'models').mkdir()
    proc = run_cli(['limit.py', str(tmp_path / 'models')], tmp_path, launcher=[sys.executable])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'cannot save the model {tmp_path / "models" / "net_g_2.pth"}: File too large (EFBIG)' in proc.stdout
    assert "unchanged True ['net_g_2.pth']" in proc.stdout
