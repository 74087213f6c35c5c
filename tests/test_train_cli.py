"""`srprune train` / `srprune test` through BasicSR's real pipelines, as users run them."""

from pathlib import Path

import pytest
import torch
from conftest import latest_log, psnr_values, run_cli, train_options, write_options

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-iteration SRCNN run in its own working directory (checkpoints at 2 and 4)."""
    cwd = tmp_path_factory.mktemp('train_run')
    write_options(cwd / 'train.yml', train_options(tiny_data, 'srcnn_tiny', total_iter=4))
    proc = run_cli(['train', '-opt', 'train.yml'], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd


def test_train_writes_checkpoints_and_validation_psnr_under_cwd(trained: Path) -> None:
    exp = trained / 'experiments' / 'srcnn_tiny'
    assert (exp / 'models' / 'net_g_4.pth').is_file()
    assert (exp / 'models' / 'net_g_latest.pth').is_file()
    assert (exp / 'training_states' / '4.state').is_file()
    psnrs = psnr_values(latest_log(exp))
    assert psnrs and all(10 < p < 60 for p in psnrs)
    state = torch.load(exp / 'models' / 'net_g_4.pth', weights_only=True)
    assert 'conv1.weight' in state['params']


def test_auto_resume_continues_from_the_last_state(trained: Path, tiny_data: Path) -> None:
    write_options(trained / 'train_more.yml', train_options(tiny_data, 'srcnn_tiny', total_iter=6))
    proc = run_cli(['train', '-opt', 'train_more.yml', '--auto_resume'], trained)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = latest_log(trained / 'experiments' / 'srcnn_tiny')
    assert 'Resuming training from epoch' in log and 'iter: 4.' in log
    assert 'iter:       5,' in log and 'iter:       6,' in log and 'iter:       1,' not in log
    assert (trained / 'experiments' / 'srcnn_tiny' / 'training_states' / '6.state').is_file()


def test_test_command_writes_results_and_psnr(trained: Path, tiny_data: Path) -> None:
    opt = {
        'name': 'test_srcnn_tiny', 'model_type': 'SRModel', 'scale': 2, 'num_gpu': 0,
        'datasets': {'test_1': {'name': 'tiny_val', 'type': 'PairedImageDataset',
                                'dataroot_gt': str(tiny_data / 'val' / 'GTmod12'),
                                'dataroot_lq': str(tiny_data / 'val' / 'LRbicx2'), 'io_backend': {'type': 'disk'}}},
        'network_g': {'type': 'SRCNN', 'upscale': 2},
        'path': {'pretrain_network_g': str(trained / 'experiments' / 'srcnn_tiny' / 'models' / 'net_g_4.pth'),
                 'strict_load_g': True},
        'val': {'save_img': True, 'suffix': None, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 2,
                                                        'test_y_channel': True}}},
    }
    write_options(trained / 'test.yml', opt)
    proc = run_cli(['test', '-opt', 'test.yml'], trained)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = trained / 'results' / 'test_srcnn_tiny'
    assert psnr_values(latest_log(results, 'test'))
    assert len(list((results / 'visualization' / 'tiny_val').glob('*.png'))) == 2


def test_help_lists_basicsr_flags_and_an_example(tmp_path: Path) -> None:
    for command in ('train', 'test'):
        proc = run_cli([command, '--help'], tmp_path)
        assert proc.returncode == 0
        assert '--auto_resume' in proc.stdout and 'example: srprune' in proc.stdout


def test_study_evaluation_equals_basicsrs_test_pipeline(trained: Path, tiny_data: Path) -> None:
    import re

    from basicsr.archs import build_network

    from srprune_basicsr.study.evaluate import evaluate

    checkpoint = trained / 'experiments' / 'srcnn_tiny' / 'models' / 'net_g_4.pth'
    metrics = {'psnr': {'type': 'calculate_psnr', 'crop_border': 2, 'test_y_channel': True},
               'ssim': {'type': 'calculate_ssim', 'crop_border': 2, 'test_y_channel': True}}
    opt = {'name': 'eval_vs_pipeline', 'model_type': 'SRModel', 'scale': 2, 'num_gpu': 0,
           'datasets': {'test_1': {'name': 'tiny_val', 'type': 'PairedImageDataset', 'io_backend': {'type': 'disk'},
                                   'dataroot_gt': str(tiny_data / 'val' / 'GTmod12'),
                                   'dataroot_lq': str(tiny_data / 'val' / 'LRbicx2')}},
           'network_g': {'type': 'SRCNN', 'upscale': 2},
           'path': {'pretrain_network_g': str(checkpoint), 'strict_load_g': True},
           'val': {'save_img': False, 'suffix': None, 'metrics': metrics}}
    write_options(trained / 'eval.yml', opt)
    proc = run_cli(['test', '-opt', 'eval.yml'], trained)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = latest_log(trained / 'results' / 'eval_vs_pipeline', 'test')
    pipeline_psnr = float(re.search(r'# psnr: ([0-9.]+)', log).group(1))
    pipeline_ssim = float(re.search(r'# ssim: ([0-9.]+)', log).group(1))

    net = build_network({'type': 'SRCNN', 'upscale': 2})
    net.load_state_dict(torch.load(checkpoint, weights_only=True)['params'])
    result = evaluate(net, tiny_data / 'val', scale=2)
    assert result.psnr == pytest.approx(pipeline_psnr, abs=1e-4)
    assert result.ssim == pytest.approx(pipeline_ssim, abs=1e-4)
    assert len(result.per_image) == 2
    hr_only = evaluate(net, tiny_data / 'hr_val', scale=2)  # LR made on the fly from HR-only folders
    assert len(hr_only.per_image) == 2 and 20 < hr_only.psnr < 60


def test_a_finished_pipeline_tears_its_process_group_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BasicSR never destroys the group it starts; left to the interpreter's exit, a gloo rank can abort after
    training ended (torchrun then reports a failed job). ``srprune train`` ends it once every rank is done."""
    import socket

    import torch.distributed as dist

    from srprune_basicsr.cli.train import run_basicsr_pipeline

    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(port))
    seen = []

    def pipeline(root: str) -> None:  # stands for train_pipeline: it starts the group, as init_dist does
        dist.init_process_group('gloo', rank=0, world_size=1)
        seen.append(dist.is_initialized())

    try:
        assert run_basicsr_pipeline(pipeline, 'srprune train', []) == 0
        assert seen == [True] and not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
