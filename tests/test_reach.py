"""Any BasicSR dataset, any BasicSR-based repo: prune, score and track Real-ESRGAN-style GT-only sets and more."""

import json
import os
import shutil
import socket
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import latest_log, meta_info_folder, realesrnet_options, run_cli, write_options

from srprune_basicsr.formats.keys import root_keys
from srprune_basicsr.formats.scores import read_scores

CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available(), reason='the failure only shows on a host without CUDA')
DEGRADE = {k: v for k, v in realesrnet_options('x', Path('x'))['datasets']['train'].items()
           if k.startswith(('blur', 'kernel', 'sinc', 'beta', 'final'))}


@pytest.fixture(scope='module')
def df2k(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A DF2K+OST-style GT folder (two sub-folders, same file names) and its meta_info file."""
    root = tmp_path_factory.mktemp('df2k')
    return root, meta_info_folder(root)


def write_keep_list(path: Path, keys: list[str]) -> Path:
    path.write_text(''.join(f'{k}\n' for k in keys))
    return path


def build(opt: dict):  # noqa: ANN201
    from basicsr.data import build_dataset

    return build_dataset(dict(opt, phase='train', scale=opt.get('scale', 4)))


def dataset_options(kind: str, tiny_data: Path) -> dict:
    """Options of each BasicSR dataset type on the tiny LMDBs."""
    sub = tiny_data / 'train_sub'
    lmdb = {'type': 'lmdb'}
    common = {'name': kind, 'type': kind, 'io_backend': lmdb, 'gt_size': 32, 'use_hflip': False, 'use_rot': False}
    return {
        'PairedImageDataset': dict(common, dataroot_gt=str(sub / 'HR_sub.lmdb'),
                                   dataroot_lq=str(sub / 'LR_bicubic_X4_sub.lmdb')),
        'RealESRGANPairedDataset': dict(common, dataroot_gt=str(sub / 'HR_sub.lmdb'),
                                        dataroot_lq=str(sub / 'LR_bicubic_X4_sub.lmdb')),
        'RealESRGANDataset': dict(common, dataroot_gt=str(sub / 'HR_sub.lmdb'), **DEGRADE),
        'FFHQDataset': dict(common, dataroot_gt=str(sub / 'HR_sub.lmdb'), mean=[0.5] * 3, std=[0.5] * 3),
        'SingleImageDataset': dict(common, dataroot_lq=str(sub / 'LR_bicubic_X4_sub.lmdb')),
    }[kind]


# ------------------------------------------------------------------ prune: on every dataset type
@pytest.mark.parametrize('kind', ['PairedImageDataset', 'RealESRGANPairedDataset', 'RealESRGANDataset',
                                  'FFHQDataset', 'SingleImageDataset'])
def test_prune_keeps_the_listed_samples_of_every_dataset_type(kind: str, tiny_data: Path, tmp_path: Path) -> None:
    keys = root_keys(tiny_data / 'train_sub' / 'HR_sub.lmdb')
    keep = write_keep_list(tmp_path / 'keep.txt', [keys[5], keys[1], keys[9]])
    dataset = build(dict(dataset_options(kind, tiny_data), prune={'keep': str(keep)}))
    assert len(dataset) == 3
    assert dataset.keys == [keys[1], keys[5], keys[9]]
    item = dataset[1]
    assert (item['key'], item['index']) == (keys[5], 1)
    image = item.get('gt', item.get('lq'))
    assert image.ndim == 3
    path = item.get('gt_path', item.get('lq_path'))
    assert path == keys[5]  # the LMDB key is what BasicSR read


def test_meta_info_keys_are_paths_below_the_root_so_folders_never_collide(df2k: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    root, meta = df2k
    opt = dict(name='df2k', type='RealESRGANDataset', dataroot_gt=str(root), meta_info=str(meta),
               io_backend={'type': 'disk'}, **DEGRADE, gt_size=32, use_hflip=False, use_rot=False)
    keep = write_keep_list(tmp_path / 'keep.txt', ['DF2K_HR_sub/img000_s001', 'OST/img000_s001'])
    dataset = build(dict(opt, prune={'keep': str(keep)}))
    assert dataset.keys == ['DF2K_HR_sub/img000_s001', 'OST/img000_s001']
    assert [Path(dataset[i]['gt_path']).parent.name for i in range(2)] == ['DF2K_HR_sub', 'OST']
    assert not np.allclose(dataset[0]['gt'].numpy(), dataset[1]['gt'].numpy())


def test_two_samples_with_one_key_are_refused_naming_both(df2k: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = df2k
    meta = tmp_path / 'meta_info.txt'
    meta.write_text('OST/img000_s001.png (48,48,3)\nOST/img000_s001.jpg (48,48,3)\n')
    opt = dict(name='dup', type='RealESRGANDataset', dataroot_gt=str(root), meta_info=str(meta),
               io_backend={'type': 'disk'}, **DEGRADE, prune={'keep': 'keep.txt'})
    with pytest.raises(ValueError, match=r"datasets:dup: two samples have the key 'OST/img000_s001': "
                                         r'.*OST/img000_s001.png and .*OST/img000_s001.jpg'):
        build(opt)


def test_a_video_dataset_with_prune_is_refused_naming_the_option_file(tiny_data: Path, tmp_path: Path) -> None:
    from conftest import train_options

    for folder in ('sharp', 'blur'):
        (tmp_path / folder).mkdir()
    (tmp_path / 'meta.txt').write_text('001 100 (720,1280,3)\n')
    (tmp_path / 'keep.txt').write_text('001/00000001\n')
    opt = train_options(tiny_data, 'reds_prune', total_iter=2)
    opt['datasets']['train'] = dict(
        name='REDS', type='REDSDataset', dataroot_gt=str(tmp_path / 'sharp'), dataroot_lq=str(tmp_path / 'blur'),
        dataroot_flow=None, meta_info_file=str(tmp_path / 'meta.txt'), val_partition='REDS4',
        io_backend={'type': 'disk'}, num_frame=5, gt_size=64, interval_list=[1], random_reverse=False,
        use_hflip=True, use_rot=True, num_worker_per_gpu=0, batch_size_per_gpu=2, prune={'keep': 'keep.txt'})
    write_options(tmp_path / 'reds.yml', opt)
    proc = run_cli(['train', '-opt', 'reds.yml'], tmp_path)
    assert proc.returncode == 2
    assert ('reds.yml: datasets:REDS: cannot key the samples of REDSDataset: its samples are video clips '
            '(num_frame)') in proc.stderr
    assert not (tmp_path / 'experiments').exists()  # refused before BasicSR creates its folders


def test_flat_folder_and_lmdb_keys_are_as_before(tiny_data: Path) -> None:
    from srprune_basicsr.formats.keys import dataset_samples

    val = tiny_data / 'val'
    folder = build(dict(name='v', type='PairedImageDataset', dataroot_gt=str(val / 'GTmod12'),
                        dataroot_lq=str(val / 'LRbicx2'), io_backend={'type': 'disk'}, scale=2))
    assert dataset_samples(folder).keys == root_keys(val / 'GTmod12')  # file stems, as scores files hold them
    lmdb = build(dataset_options('PairedImageDataset', tiny_data))
    assert dataset_samples(lmdb).keys == root_keys(tiny_data / 'train_sub' / 'HR_sub.lmdb')


def test_a_scores_file_of_another_dataset_names_the_mismatch(tiny_data: Path, tmp_path: Path) -> None:
    from srprune_basicsr.formats.scores import write_scores

    scores = write_scores(tmp_path / 'scores.csv', ['other_a', 'other_b'], [1.0, 2.0], method='sobel')
    opt = dict(dataset_options('RealESRGANDataset', tiny_data), prune={'scores': str(scores), 'keep_ratio': 0.5})
    with pytest.raises(ValueError, match=r"datasets:RealESRGANDataset:prune: .*scores.csv: 2 key\(s\) not in the "
                                         r"dataset \(e.g. \['other_a', 'other_b'\]\); 16 dataset key\(s\) without a "
                                         r"score \(e.g. \['img000_s001'"):
        build(opt)


# ------------------------------------------------------------------ scoring GT-only and LQ-only sets
def score_file(tmp_path: Path, name: str, method: str, dataset: dict, **extra: object) -> Path:
    opt = {'name': name, 'method': method, 'scale': 4, 'num_gpu': 0, 'dataset': dataset, **extra}
    return write_options(tmp_path / f'{name}.yml', opt)


def test_sobel_of_a_gt_only_set_equals_sobel_of_the_paired_set(tiny_data: Path, tmp_path: Path) -> None:
    for name, kind in (('paired', 'PairedImageDataset'), ('gt_only', 'RealESRGANDataset')):
        score_file(tmp_path, name, 'sobel', dataset_options(kind, tiny_data))
        proc = run_cli(['score', '-opt', f'{name}.yml'], tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    paired, gt_only = (read_scores(tmp_path / 'experiments' / n / 'scores.csv') for n in ('paired', 'gt_only'))
    assert paired.keys == gt_only.keys and np.array_equal(paired.values, gt_only.values)
    record = json.loads((tmp_path / 'experiments' / 'gt_only' / 'scores.json').read_text())
    assert record['lr'] == 'not used' and record['dataset']['type'] == 'RealESRGANDataset'


def test_bicubic_psnr_of_a_gt_only_set_uses_the_bicubic_of_the_gt(tiny_data: Path, tmp_path: Path) -> None:
    from basicsr.utils import img2tensor

    from srprune_basicsr.bicubic import imresize_tensor, imresize_uint8
    from srprune_basicsr.formats.lmdb import iter_values
    from srprune_basicsr.metrics import interior, per_sample_error

    score_file(tmp_path, 'bic', 'bicubic_psnr', dataset_options('RealESRGANDataset', tiny_data))
    proc = run_cli(['score', '-opt', 'bic.yml'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = read_scores(tmp_path / 'experiments' / 'bic' / 'scores.csv')
    record = json.loads((tmp_path / 'experiments' / 'bic' / 'scores.json').read_text())
    assert record['lr'].startswith('MATLAB bicubic of the GT, x4')
    import cv2

    key, png = next(iter_values(tiny_data / 'train_sub' / 'HR_sub.lmdb'))
    gt = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    lq = imresize_uint8(gt, 1 / 4)
    gt_t, lq_t = (img2tensor(x.astype(np.float32) / 255, bgr2rgb=True)[None].double() for x in (gt, lq))
    up = imresize_tensor(lq_t, 4).clamp(0, 1)
    expected = per_sample_error(interior(up, 4), interior(gt_t, 4), 'psnr')[0]
    assert scores.values[scores.keys.index(key)] == pytest.approx(expected, abs=1e-9)


def test_an_lq_only_set_scores_with_sobel_and_refuses_a_proxy(tiny_data: Path, tmp_path: Path) -> None:
    score_file(tmp_path, 'lq_sobel', 'sobel', dataset_options('SingleImageDataset', tiny_data))
    assert run_cli(['score', '-opt', 'lq_sobel.yml'], tmp_path).returncode == 0
    score_file(tmp_path, 'lq_bic', 'bicubic_psnr', dataset_options('SingleImageDataset', tiny_data))
    proc = run_cli(['score', '-opt', 'lq_bic.yml'], tmp_path)
    assert proc.returncode == 2
    assert 'lq_bic.yml: dataset: SingleImageDataset holds only LQ images, and bicubic_psnr compares' in proc.stderr
    assert not (tmp_path / 'experiments' / 'lq_bic' / 'scores.csv').exists()


# ------------------------------------------------------------------ imports:
@pytest.mark.parametrize('verb', ['score', 'train'])
def test_imports_naming_a_missing_package_is_an_error(verb: str, tiny_data: Path, tmp_path: Path) -> None:
    if verb == 'score':
        score_file(tmp_path, 'x', 'sobel', dataset_options('RealESRGANDataset', tiny_data), imports=['no_such_pkg'])
    else:
        write_options(tmp_path / 'x.yml', dict(realesrnet_options('x', tiny_data), imports=['no_such_pkg']))
    proc = run_cli([verb, '-opt', 'x.yml'], tmp_path)
    assert proc.returncode == 2
    assert "x.yml: imports: package 'no_such_pkg' is not installed" in proc.stderr
    assert not (tmp_path / 'experiments').exists()


# ------------------------------------------------------------------ the training-pair pool
def test_pool_columns_follow_their_pairs_through_the_stock_pool() -> None:
    """A pair's pixels hold its sample id: after every pool step the credited ids must be the trained pairs'."""
    import inspect

    from basicsr.models.realesrnet_model import RealESRNetModel

    from srprune_basicsr._basicsr.compat import cuda_means
    from srprune_basicsr.scoring.pool import SamplePool

    class Stub:
        queue_size, device = 6, torch.device('cpu')

    model, pool, rng = Stub(), SamplePool(), np.random.default_rng(0)
    stock = inspect.unwrap(RealESRNetModel._dequeue_and_enqueue)
    shuffled = 0
    for _ in range(12):
        ids = rng.choice(50, size=2, replace=False)
        model.lq = torch.from_numpy(ids).float().view(2, 1, 1, 1).expand(2, 3, 2, 2).clone()
        model.gt = model.lq.repeat(1, 1, 2, 2) * 10
        shuffled += hasattr(model, 'queue_ptr') and model.queue_ptr == model.queue_size
        with cuda_means(model.device):
            trained = pool.step(model, lambda: stock(model), ids)
        assert trained.tolist() == (model.gt[:, 0, 0, 0] / 10).long().tolist()
        assert trained.tolist() == model.lq[:, 0, 0, 0].long().tolist()
    assert shuffled == 9  # the pool was full, and shuffled, from the fourth step on


def test_a_model_with_its_own_pool_is_refused_for_train_crop() -> None:
    from basicsr.models.sr_model import SRModel

    from srprune_basicsr.scoring.pool import SamplePool

    class MyPoolModel(SRModel):
        def _dequeue_and_enqueue(self) -> None:
            self.lq = self.lq.flip(0)

    model = object.__new__(MyPoolModel)
    with pytest.raises(ValueError, match='MyPoolModel overrides the training-pair pool'):
        SamplePool.for_model(model, 'train_crop', 'prune_tracking: datasets:train')
    assert SamplePool.for_model(model, 'fixed', 'x') is not None  # the fixed view does not follow batches


# ------------------------------------------------------------------ slurm
def stub_scontrol(folder: Path, output: str = 'localhost', rc: int = 0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / 'scontrol'
    script.write_text(f'#!/bin/sh\necho "{output}"\nexit {rc}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {'PATH': f'{folder}{os.pathsep}{os.environ["PATH"]}'}


@pytest.mark.parametrize('env,message', [
    ({}, 'SLURM_PROCID is not set; start the job with srun'),
    ({'SLURM_PROCID': '0', 'SLURM_NTASKS': 'two', 'SLURM_NODELIST': 'n1'}, "SLURM_NTASKS='two' is not an integer"),
    ({'SLURM_PROCID': '2', 'SLURM_NTASKS': '2', 'SLURM_NODELIST': 'n1'}, 'SLURM_PROCID=2 does not fit SLURM_NTASKS=2'),
    ({'SLURM_PROCID': '0', 'SLURM_NTASKS': '2'}, 'SLURM_NODELIST is not set'),
])
def test_a_malformed_slurm_environment_is_named(env: dict, message: str) -> None:
    from srprune_basicsr._basicsr.compat import slurm_task

    with pytest.raises(ValueError, match=message):
        slurm_task(env)


def test_the_master_host_comes_from_scontrol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from srprune_basicsr._basicsr.compat import slurm_master

    monkeypatch.setenv('PATH', stub_scontrol(tmp_path / 'ok', 'node07\nnode08')['PATH'])
    assert slurm_master('node[07-08]') == 'node07'
    monkeypatch.setenv('PATH', stub_scontrol(tmp_path / 'bad', 'invalid node list', rc=1)['PATH'])
    with pytest.raises(ValueError, match="scontrol show hostnames 'x' failed: invalid node list"):
        slurm_master('x')
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='scontrol is not on PATH'):
        slurm_master('x')


ARRAY = {'SLURM_ARRAY_TASK_ID': '3', 'SLURM_ARRAY_TASK_COUNT': '4', 'SLURM_ARRAY_TASK_MIN': '1',
         'SLURM_ARRAY_TASK_MAX': '4'}


@pytest.mark.parametrize('env,shard', [({}, None), (ARRAY, (2, 4)), (dict(ARRAY, SLURM_ARRAY_TASK_STEP='1'), (2, 4))])
def test_a_study_shard_defaults_to_the_slurm_array_task(env: dict, shard: tuple | None) -> None:
    from srprune_basicsr.cli.study import slurm_array_shard

    assert slurm_array_shard(env) == shard


@pytest.mark.parametrize('change,message', [
    ({'SLURM_ARRAY_TASK_STEP': '2', 'SLURM_ARRAY_TASK_MAX': '7'}, r'tasks 1..7 \(step 2, 4 tasks\) are not one '),
    ({'SLURM_ARRAY_TASK_MAX': '9'}, 'are not one contiguous range'),
    ({'SLURM_ARRAY_TASK_COUNT': 'x'}, "SLURM_ARRAY_TASK_COUNT='x'.* must all be integers"),
])
def test_a_job_array_that_cannot_be_numbered_as_shards_is_refused(change: dict, message: str) -> None:
    from srprune_basicsr.cli.study import slurm_array_shard

    with pytest.raises(ValueError, match=message):
        slurm_array_shard(dict(ARRAY, **change))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def srun(args: list[str], cwd: Path, tasks: int = 2, timeout: int = 600) -> list:
    """What ``srun --ntasks=N srprune ...`` starts: N processes with the slurm variables, scontrol on PATH."""
    import subprocess

    env = dict(os.environ, SLURM_NTASKS=str(tasks), SLURM_NODELIST='node01', SLURM_JOB_ID='1',
               MASTER_PORT=str(free_port()), CUDA_VISIBLE_DEVICES='', **stub_scontrol(cwd / 'bin'))
    procs = [subprocess.Popen([sys.executable, '-m', 'srprune_basicsr', *args], cwd=cwd, text=True,
                              env=dict(env, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for rank in range(tasks)]
    return [(p.wait(timeout), *p.communicate()) for p in procs]


@pytest.mark.slow
def test_slurm_scoring_on_two_tasks_equals_one_process(tiny_data: Path, tmp_path: Path) -> None:
    score_file(tmp_path, 'one', 'bicubic_psnr', dataset_options('RealESRGANDataset', tiny_data),
               score={'batch_size': 3})
    score_file(tmp_path, 'two', 'bicubic_psnr', dataset_options('RealESRGANDataset', tiny_data),
               score={'batch_size': 3})
    assert run_cli(['score', '-opt', 'one.yml'], tmp_path).returncode == 0
    results = srun(['score', '-opt', 'two.yml', '--launcher', 'slurm'], tmp_path)
    assert all(rc == 0 for rc, _, _ in results), results[0][2][-2000:] + results[1][2][-2000:]
    one, two = ((tmp_path / 'experiments' / n / 'scores.csv').read_bytes() for n in ('one', 'two'))
    assert one == two


@pytest.mark.slow
def test_slurm_training_with_tracking_on_two_tasks(tiny_data: Path, tmp_path: Path) -> None:
    from conftest import train_options

    opt = train_options(tiny_data, 'slurm_du', total_iter=6)
    opt['prune_tracking'] = {'view': 'fixed', 'every': 2, 'window': 2}
    write_options(tmp_path / 'du.yml', opt)
    results = srun(['train', '-opt', 'du.yml', '--launcher', 'slurm'], tmp_path)
    assert all(rc == 0 for rc, _, _ in results), results[0][2][-3000:]
    log = latest_log(tmp_path / 'experiments' / 'slurm_du')
    assert 'iter:       6,' in log and 'world_size: 2' in log
    assert len(read_scores(tmp_path / 'experiments' / 'slurm_du' / 'scores_du.csv').keys) == 16


# ------------------------------------------------------------------ Real-ESRGAN end to end
@CPU_ONLY
@pytest.mark.slow
@pytest.mark.parametrize('disable,ok', [('', True), ('pool_models_cpu', False)])
def test_realesrnet_needs_the_cpu_fix_on_a_host_without_cuda(tiny_data: Path, tmp_path: Path, disable: str,
                                                             ok: bool) -> None:
    opt = realesrnet_options('cpu_fix', tiny_data / 'train_sub' / 'HR_sub.lmdb', total_iter=2)
    write_options(tmp_path / 'cpu.yml', opt)
    proc = run_cli(['train', '-opt', 'cpu.yml'], tmp_path, disable=disable)
    assert (proc.returncode == 0) is ok, proc.stderr[-2000:]
    if not ok:
        assert 'NVIDIA' in proc.stderr or 'CUDA' in proc.stderr


@pytest.mark.slow
def test_realesrnet_trains_on_a_pruned_gt_only_lmdb_and_tracks_it(tiny_data: Path, tmp_path: Path) -> None:
    """``srprune train`` with realesrgan's own model (imports:), a scorer-pruned GT-only LMDB and the fixed view."""
    opt = realesrnet_options('re_lmdb', tiny_data / 'train_sub' / 'HR_sub.lmdb', total_iter=6)
    opt['imports'] = ['realesrgan']
    opt['datasets']['train']['prune'] = {'score': {'method': 'sobel'}, 'keep_ratio': 0.5}
    opt['prune_tracking'] = {'view': 'fixed', 'every': 2, 'window': 3}
    write_options(tmp_path / 're.yml', opt)
    proc = run_cli(['train', '-opt', 're.yml'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / 're_lmdb'
    log = latest_log(exp)
    assert 'RealESRGANDataset [gt_only]: kept 8 of 16 samples' in log and 'iter:       6,' in log
    assert 'Model [RealESRNetModel] is created' in log
    sobel = read_scores(tmp_path / 'experiments' / 'score_gt_only_sobel' / 'scores.csv')
    kept = [sobel.keys[i] for i in np.argsort(-sobel.values, kind='stable')[:8]]
    du = read_scores(exp / 'scores_du.csv')
    assert sorted(du.keys) == sorted(kept) and np.isfinite(du.values).all()


@pytest.mark.slow
def test_a_realesrgan_style_train_py_prunes_a_meta_info_folder_then_scores_it(df2k: tuple[Path, Path],
                                                                             tmp_path: Path) -> None:
    """A train.py that imports only realesrgan: the plugin comes in by auto-registration; a proxy then scores it."""
    root, meta = df2k
    (tmp_path / 'train.py').write_text(
        'import os.path as osp\nfrom basicsr.train import train_pipeline\n\n'
        'import realesrgan.archs  # noqa: F401\nimport realesrgan.data  # noqa: F401\n'
        'import realesrgan.models  # noqa: F401\n\n'
        "if __name__ == '__main__':\n    train_pipeline(osp.dirname(osp.abspath(__file__)))\n")
    opt = realesrnet_options('re_meta', root, meta, total_iter=4)
    opt['datasets']['train']['prune'] = {'score': {'method': 'bicubic_psnr'}, 'keep_ratio': 0.5}
    opt['prune_tracking'] = {'view': 'train_crop', 'every': 2, 'window': 2}
    write_options(tmp_path / 're.yml', opt)
    proc = run_cli(['train.py', '-opt', 're.yml'], tmp_path, launcher=[sys.executable])
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / 're_meta'
    assert 'RealESRGANDataset [gt_only]: kept 3 of 6 samples' in latest_log(exp)
    from srprune_basicsr.formats.history import History

    history = History.open(exp / 'prune_tracking')
    assert history.count == 2 and set(history.keys) <= {f'{f}/img00{i}_s001' for f in ('DF2K_HR_sub', 'OST')
                                                         for i in range(3)}
    shutil.copy(exp / 'models' / 'net_g_latest.pth', tmp_path / 'proxy.pth')
    score_file(tmp_path, 'proxy', 'loss_value', opt['datasets']['train'] | {'prune': None},
               network_g=opt['network_g'], path={'pretrain_network_g': 'proxy.pth'})
    proc = run_cli(['score', '-opt', 'proxy.yml'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = read_scores(tmp_path / 'experiments' / 'proxy' / 'scores.csv')
    assert len(scores.keys) == 6 and scores.keys[3].startswith('OST/')
    record = json.loads((tmp_path / 'experiments' / 'proxy' / 'scores.json').read_text())
    assert record['lr'].startswith('MATLAB bicubic of the GT, x4')
