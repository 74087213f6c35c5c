"""`srprune score`: loss-value and baseline scores, resumable, equal under torchrun, clear errors."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from basicsr.archs import build_network
from conftest import run_cli
from test_compat import free_port

from srprune_basicsr.bicubic import imresize_tensor
from srprune_basicsr.formats.scores import read_scores
from srprune_basicsr.scoring import dataset_pass
from srprune_basicsr.scoring.runner import build_score_dataset, load_options, run_scoring


@pytest.fixture
def score_setup(tiny_data: Path, tmp_path: Path) -> tuple[Path, dict]:
    """A (random-init) SRCNN proxy checkpoint in BasicSR's format and a score option file."""
    torch.manual_seed(0)
    net = build_network({'type': 'SRCNN', 'upscale': 2, 'init': 'identity'})
    torch.save({'params': net.state_dict()}, tmp_path / 'proxy.pth')
    opt = {'name': 'score_tiny', 'method': 'loss_value', 'scale': 2, 'num_gpu': 0,
           'dataset': {'name': 'tiny', 'type': 'PairedImageDataset', 'io_backend': {'type': 'lmdb'},
                       'dataroot_gt': str(tiny_data / 'train_sub' / 'HR_sub.lmdb'),
                       'dataroot_lq': str(tiny_data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')},
           'network_g': {'type': 'SRCNN', 'upscale': 2},
           'path': {'pretrain_network_g': str(tmp_path / 'proxy.pth')},
           'score': {'loss': 'mse', 'border': 'auto', 'batch_size': 3}}
    (tmp_path / 'score.yml').write_text(yaml.safe_dump(opt))
    return tmp_path / 'score.yml', opt


def test_loss_value_scores_are_the_proxys_interior_mse(score_setup: tuple[Path, dict], tmp_path: Path) -> None:
    path, opt = score_setup
    proc = run_cli(['score', '-opt', str(path), '--out', 'out/scores.csv'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = read_scores(tmp_path / 'out' / 'scores.csv')
    assert len(scores) == 16 and scores.meta['method'] == 'loss_value' and scores.meta['border'] == 8
    assert len(scores.meta['proxy_sha256']) == 64
    dataset = build_score_dataset(opt)
    net = build_network({'type': 'SRCNN', 'upscale': 2})
    net.load_state_dict(torch.load(tmp_path / 'proxy.pth', weights_only=True)['params'])
    item = dataset[5]
    with torch.no_grad():
        pred = net(item['lq'][None]).clamp(0, 1)[0]
    expected = ((pred - item['gt']).double()[:, 8:-8, 8:-8] ** 2).mean().item()
    assert scores.keys[5] == item['gt_path'] and scores.values[5] == pytest.approx(expected, rel=1e-5)
    assert not list((tmp_path / 'out').glob('*.progress.*'))


def test_interrupted_scoring_resumes_byte_identical(score_setup: tuple[Path, dict], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _, opt = score_setup
    clean = run_scoring(load_options(score_setup[0]), tmp_path / 'clean' / 'scores.csv', progress=False)
    real, calls = dataset_pass.load_batch, []

    def crash_on_fourth(*args, **kwargs):  # noqa: ANN002,ANN003
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(dataset_pass, 'load_batch', crash_on_fourth)
    out = tmp_path / 'resumed' / 'scores.csv'
    with pytest.raises(KeyboardInterrupt):
        run_scoring(load_options(score_setup[0]), out, progress=False)
    assert not out.exists()
    progress = out.with_name('scores.csv.progress.rank0')
    assert len(progress.read_text().splitlines()) == 1 + 9  # fingerprint + 3 finished batches of 3
    calls.clear()
    run_scoring(load_options(score_setup[0]), out, progress=False)
    assert len(calls) == 3  # 16 samples = 6 batches; 3 were done
    assert out.read_bytes() == clean.read_bytes()


@pytest.mark.slow
def test_two_ranks_give_the_single_process_values(score_setup: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = score_setup
    single = run_cli(['score', '-opt', str(path), '--out', 'single.csv'], tmp_path)
    assert single.returncode == 0, single.stderr[-2000:]
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
                '-m', 'srprune_basicsr']
    proc = run_cli(['score', '-opt', str(path), '--out', 'ddp.csv', '--launcher', 'pytorch'], tmp_path,
                   launcher=launcher)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = read_scores(tmp_path / 'single.csv'), read_scores(tmp_path / 'ddp.csv')
    assert a.keys == b.keys and np.array_equal(a.values, b.values)


def test_baselines(score_setup: tuple[Path, dict], tmp_path: Path) -> None:
    _, opt = score_setup
    base = {k: v for k, v in opt.items() if k not in ('network_g', 'path')}
    rand = [read_scores(run_scoring(dict(base, method='random', score={'seed': s}), tmp_path / f'r{s}.csv',
                                    progress=False, overwrite=True)) for s in (0, 0, 1)]
    assert np.array_equal(rand[0].values, rand[1].values) and not np.array_equal(rand[0].values, rand[2].values)
    sobel = read_scores(run_scoring(dict(base, method='sobel', score={}), tmp_path / 'sobel.csv', progress=False))
    assert (sobel.values > 0).all()
    bic = read_scores(run_scoring(dict(base, method='bicubic_psnr', score={}), tmp_path / 'bic.csv', progress=False))
    item = build_score_dataset(opt)[2]
    up = imresize_tensor(item['lq'][None].double(), 2).clamp(0, 1)[0]
    mse = ((up - item['gt'].double())[:, 2:-2, 2:-2] ** 2).mean().item()
    assert bic.values[2] == pytest.approx(10 * np.log10(mse), rel=1e-9)


def test_mismatched_checkpoint_and_unknown_keys_are_named(score_setup: tuple[Path, dict], tmp_path: Path) -> None:
    path, opt = score_setup
    torch.save({'params': build_network({'type': 'FSRCNN', 'upscale': 2}).state_dict()}, tmp_path / 'fsrcnn.pth')
    bad = dict(opt, path={'pretrain_network_g': str(tmp_path / 'fsrcnn.pth')})
    with pytest.raises(ValueError, match='fsrcnn.pth does not match network_g'):
        run_scoring(bad, tmp_path / 'x.csv', progress=False)
    (tmp_path / 'typo.yml').write_text(yaml.safe_dump(dict(opt, scroe={'loss': 'mse'})))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['scroe'\]"):
        load_options(tmp_path / 'typo.yml')
    assert not (tmp_path / 'x.csv').exists()
