"""GFPGAN (the ``gfpgan`` package, built on BasicSR): ``prune:`` and scoring on its GT-only FFHQDegradationDataset.

Everything runs against the installed package, on the CPU: its option files as GFPGAN writes
them (``options/train_gfpgan_v1_simple.yml``, shrunk to 64 px faces), with ``imports: [gfpgan]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import latest_log, photo_crops, run_cli, write_options

from srprune_basicsr.formats.scores import read_scores, write_scores

FACES = 6
SIZE = 64
STEMS = [f'img{i:03d}' for i in range(FACES)]


@pytest.fixture(scope='module')
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of six 64 px face-sized PNG crops of photos, as FFHQ's ``ffhq_512`` folder holds faces."""
    root = tmp_path_factory.mktemp('ffhq') / 'ffhq_64'
    photo_crops(root, FACES, SIZE)
    return root


def ffhq_options(dataroot: Path, **extra: object) -> dict:
    """GFPGAN's FFHQDegradationDataset block (train_gfpgan_v1.yml's degradations) on ``dataroot``."""
    return dict(
        name='FFHQ', type='FFHQDegradationDataset', dataroot_gt=str(dataroot), io_backend={'type': 'disk'},
        use_hflip=True, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], out_size=SIZE,
        blur_kernel_size=41, kernel_list=['iso', 'aniso'], kernel_prob=[0.5, 0.5], blur_sigma=[0.1, 10],
        downsample_range=[0.8, 8], noise_range=[0, 20], jpeg_range=[60, 100],
        color_jitter_prob=0.3, color_jitter_shift=20, color_jitter_pt_prob=0.3, gray_prob=0.01,
        use_shuffle=True, num_worker_per_gpu=0, batch_size_per_gpu=2, dataset_enlarge_ratio=1, prefetch_mode=None,
        **extra)


def gfpgan_options(name: str, dataroot: Path, total_iter: int = 4, **dataset_extra: object) -> dict:
    """GFPGAN's train_gfpgan_v1_simple.yml for a CPU: no ``scale`` (faces are restored at their size), tiny
    GFPGANv1Clean and StyleGAN2 discriminator at 64 px, no perceptual loss (it downloads VGG19 weights)."""
    return dict(
        name=name, model_type='GFPGANModel', num_gpu=0, manual_seed=0, imports=['gfpgan'],
        datasets={'train': ffhq_options(dataroot, **dataset_extra)},
        network_g=dict(type='GFPGANv1Clean', out_size=SIZE, num_style_feat=32, channel_multiplier=1,
                       decoder_load_path=None, fix_decoder=False, num_mlp=2, input_is_latent=True, different_w=True,
                       narrow=0.125, sft_half=True),
        network_d=dict(type='StyleGAN2Discriminator', out_size=SIZE, channel_multiplier=1,
                       resample_kernel=[1, 3, 3, 1], narrow=0.125),
        path=dict(pretrain_network_g=None, param_key_g='params_ema', strict_load_g=None, pretrain_network_d=None,
                  resume_state=None),
        train=dict(optim_g=dict(type='Adam', lr=2e-3), optim_d=dict(type='Adam', lr=2e-3),
                   scheduler=dict(type='MultiStepLR', milestones=[600000, 700000], gamma=0.5),
                   total_iter=total_iter, warmup_iter=-1,
                   pixel_opt=dict(type='L1Loss', loss_weight=0.1, reduction='mean'),
                   L1_opt=dict(type='L1Loss', loss_weight=1, reduction='mean'),
                   pyramid_loss_weight=1, remove_pyramid_loss=50000,
                   gan_opt=dict(type='GANLoss', gan_type='wgan_softplus', loss_weight=0.1),
                   r1_reg_weight=10, net_d_iters=1, net_d_init_iters=0, net_d_reg_every=2),
        logger=dict(print_freq=1, save_checkpoint_freq=1000, use_tb_logger=False, wandb=None),
        dist_params=dict(backend='nccl', port=29500), find_unused_parameters=True)


def parse(tmp_path: Path, opt: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    """BasicSR's own parse_options on the option file, as GFPGAN's train.py calls it (imports: and checks run)."""
    from basicsr.utils.options import parse_options

    from srprune_basicsr._basicsr import hooks

    monkeypatch.setitem(hooks._state, 'option_file', None)  # noqa: SLF001  (restored after the test)
    path = write_options(tmp_path / f'{opt["name"]}.yml', opt)
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', str(path)])
    return parse_options(str(tmp_path), is_train=True)[0]


def gt_images(folder: Path) -> dict[str, torch.Tensor]:
    """Each face as the scorers see a GT: RGB, float in [0, 1], (1, C, H, W)."""
    from basicsr.utils import img2tensor

    return {p.stem: img2tensor(cv2.imread(str(p)).astype(np.float32) / 255.0, bgr2rgb=True, float32=True)[None]
            for p in sorted(folder.glob('*.png'))}


# ------------------------------------------------------------------ prune: on FFHQDegradationDataset
def test_prune_keeps_the_hardest_half_of_an_ffhq_degradation_set(faces: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from basicsr.data import build_dataset

    scores = write_scores(tmp_path / 'scores.csv', STEMS, [float(i) for i in range(FACES)], method='sobel')
    opt = parse(tmp_path, gfpgan_options('gfp_scores', faces, prune={'scores': str(scores), 'keep_ratio': 0.5}),
                monkeypatch)
    dataset = build_dataset(opt['datasets']['train'])
    assert type(dataset.dataset).__name__ == 'FFHQDegradationDataset'
    assert (len(dataset), dataset.total) == (3, FACES)
    assert len(set(dataset.keys)) == 3 and sorted(dataset.keys) == ['img003', 'img004', 'img005']
    for index in range(len(dataset)):
        item = dataset[index]
        assert (item['key'], item['index']) == (dataset.keys[index], index)
        assert Path(item['gt_path']).stem == item['key']  # the file GFPGAN's class read is the kept sample
        assert item['gt'].shape == item['lq'].shape == (3, SIZE, SIZE)
        assert item['gt'].min() >= -1 and item['gt'].max() <= 1  # its mean/std normalisation, unchanged
        assert not torch.equal(item['gt'], item['lq'])  # degraded on the fly, JPEG included


def test_prune_keep_list_on_an_ffhq_degradation_set(faces: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from basicsr.data import build_dataset

    (tmp_path / 'keep.txt').write_text('img004\nimg001\n')
    opt = parse(tmp_path, gfpgan_options('gfp_keep', faces, prune={'keep': str(tmp_path / 'keep.txt')}), monkeypatch)
    dataset = build_dataset(opt['datasets']['train'])
    assert len(dataset) == 2 and sorted(dataset.keys) == ['img001', 'img004']
    assert sorted(Path(dataset[i]['gt_path']).stem for i in range(2)) == ['img001', 'img004']


def test_prune_score_runs_sobel_on_an_ffhq_set_that_sets_no_scale(faces: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """GFPGAN's option files set no ``scale``: a GT-only scorer needs none, and scores inside the build."""
    from basicsr.data import build_dataset

    from srprune_basicsr.scoring.sobel import SobelScorer

    monkeypatch.chdir(tmp_path)
    opt = parse(tmp_path, gfpgan_options('gfp_sobel', faces, prune={'score': {'method': 'sobel'}, 'keep_ratio': 0.5}),
                monkeypatch)
    assert 'scale' not in opt['datasets']['train']
    dataset = build_dataset(opt['datasets']['train'])
    sobel = {k: SobelScorer().score_batch(None, gt, np.arange(1))[0] for k, gt in gt_images(faces).items()}
    hardest = sorted(sobel, key=sobel.get, reverse=True)[:3]
    assert len(dataset) == 3 and sorted(dataset.keys) == sorted(hardest)
    scores = read_scores(tmp_path / 'experiments' / 'score_FFHQ_sobel' / 'scores.csv')
    assert sorted(scores.keys) == STEMS


def test_prune_score_with_an_lr_scorer_and_no_scale_is_refused(faces: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    opt = gfpgan_options('gfp_bic', faces, prune={'score': {'method': 'bicubic_psnr'}, 'keep_ratio': 0.5})
    with pytest.raises(ValueError, match=r'datasets:FFHQ:prune:score: the options set no scale, and bicubic_psnr '
                                         r'compares the GT with its bicubic LR at a scale: give the score block a '
                                         r'`scale:`'):
        parse(tmp_path, opt, monkeypatch)
    assert not (tmp_path / 'experiments').exists()


# ------------------------------------------------------------------ srprune score on FFHQDegradationDataset
def score_options(tmp_path: Path, name: str, method: str, faces: Path, scale: int) -> Path:
    opt = {'name': name, 'method': method, 'scale': scale, 'num_gpu': 0, 'imports': ['gfpgan'],
           'dataset': ffhq_options(faces)}
    return write_options(tmp_path / f'{name}.yml', opt)


def test_srprune_score_sobel_of_an_ffhq_set_is_sobel_of_its_gt_files(faces: Path, tmp_path: Path) -> None:
    from srprune_basicsr.scoring.sobel import SobelScorer

    score_options(tmp_path, 'ffhq_sobel', 'sobel', faces, scale=1)
    proc = run_cli(['score', '-opt', 'ffhq_sobel.yml'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = read_scores(tmp_path / 'experiments' / 'ffhq_sobel' / 'scores.csv')
    assert len(scores.keys) == FACES and sorted(scores.keys) == STEMS
    got = dict(zip(scores.keys, scores.values.tolist(), strict=True))
    expected = {k: SobelScorer().score_batch(None, gt, np.arange(1))[0] for k, gt in gt_images(faces).items()}
    assert got == pytest.approx(expected, rel=1e-12)
    record = json.loads((tmp_path / 'experiments' / 'ffhq_sobel' / 'scores.json').read_text())
    assert record['lr'] == 'not used' and record['dataset']['type'] == 'FFHQDegradationDataset'
    assert record['sample_count'] == FACES


def test_srprune_score_bicubic_psnr_of_an_ffhq_set_uses_the_bicubic_of_its_gt(faces: Path, tmp_path: Path) -> None:
    from srprune_basicsr.bicubic import imresize_tensor, imresize_uint8
    from srprune_basicsr.metrics import checked_border, interior, per_sample_error

    score_options(tmp_path, 'ffhq_bic', 'bicubic_psnr', faces, scale=4)
    proc = run_cli(['score', '-opt', 'ffhq_bic.yml'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = read_scores(tmp_path / 'experiments' / 'ffhq_bic' / 'scores.csv')
    assert sorted(scores.keys) == STEMS
    border = checked_border('auto', 4)
    from basicsr.utils import img2tensor

    for key, value in zip(scores.keys, scores.values.tolist(), strict=True):
        gt = cv2.imread(str(faces / f'{key}.png'))
        lq = imresize_uint8(gt, 1 / 4)
        gt_t, lq_t = (img2tensor(x.astype(np.float32) / 255, bgr2rgb=True)[None].double() for x in (gt, lq))
        up = imresize_tensor(lq_t, 4).clamp(0, 1)
        assert value == pytest.approx(per_sample_error(interior(up, border), interior(gt_t, border), 'psnr')[0],
                                      abs=1e-9)
    record = json.loads((tmp_path / 'experiments' / 'ffhq_bic' / 'scores.json').read_text())
    assert record['lr'].startswith('MATLAB bicubic of the GT, x4')


# ------------------------------------------------------------------ GFPGANModel on a pruned set, on the CPU
@pytest.mark.slow
@pytest.mark.parametrize('disable,error', [
    pytest.param('', None, id='all_fixes'),
    # basicsr's float JPEG quality, refused by current OpenCV (FFHQDegradationDataset's first item)
    pytest.param('jpeg_quality', "Can't parse 'params'", id='no_jpeg_quality'),
    # GFPGANModel's (0, 0.99) betas, refused by torch 2's Adam
    pytest.param('adam_betas', 'betas must be either both floats', id='no_adam_betas'),
    # basicsr's fused leaky ReLU (StyleGAN2Discriminator) exists only as a CUDA kernel pip's basicsr lacks
    pytest.param('fused_act_native', "name 'fused_act_ext' is not defined", id='no_fused_act_native'),
])
def test_gfpgan_model_trains_on_a_sobel_pruned_ffhq_set_on_the_cpu(faces: Path, tmp_path: Path, disable: str,
                                                                   error: str | None) -> None:
    opt = gfpgan_options('gfp_cpu', faces, prune={'score': {'method': 'sobel'}, 'keep_ratio': 0.5})
    write_options(tmp_path / 'gfp.yml', opt)
    proc = run_cli(['train', '-opt', 'gfp.yml'], tmp_path, disable=disable)
    if error is not None:
        assert proc.returncode != 0 and error in proc.stderr, proc.stderr[-2000:]
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = latest_log(tmp_path / 'experiments' / 'gfp_cpu')
    assert 'FFHQDegradationDataset [FFHQ]: kept 3 of 6 samples' in log
    assert 'Model [GFPGANModel] is created' in log and 'iter:       4,' in log
    assert (tmp_path / 'experiments' / 'gfp_cpu' / 'models' / 'net_g_latest.pth').is_file()
    sobel = read_scores(tmp_path / 'experiments' / 'score_FFHQ_sobel' / 'scores.csv')
    assert sorted(sobel.keys) == STEMS


# ------------------------------------------------------------------ prune_online: on GFPGANModel
def online_gfpgan(faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """GFPGANModel with the prune_online: hooks and a run's pruner over the six faces (batch 2, 3 epochs of 3)."""
    from basicsr.data import build_dataset
    from basicsr.models import build_model

    from srprune_basicsr.online.model import online_class
    from srprune_basicsr.online.options import online_options
    from srprune_basicsr.online.plan import RunShape
    from srprune_basicsr.online.pruner import OnlinePruner
    from srprune_basicsr.scoring.columns import SampleColumns

    opt = parse(tmp_path, {**gfpgan_options('gfp_online', faces, total_iter=9), 'prune_online': {'ratio': 0.5}},
                monkeypatch)
    dataset = build_dataset(opt['datasets']['train'])
    model = build_model({k: v for k, v in opt.items() if k != 'prune_online'})  # the hooks are attached below
    model.__class__ = online_class(type(model))
    model.online_pruner = OnlinePruner(online_options(opt['prune_online'], 'gfp.yml'),
                                       SampleColumns(dataset, 'gfp.yml', 'prune_online'),
                                       RunShape(per_epoch=3, total_iter=9, total_epochs=3, batch=2, world=1, enlarge=1),
                                       opt, source='gfp.yml')
    return model, dataset


def gfpgan_step(model: object, dataset: object, indices: list[int], current_iter: int) -> torch.Tensor:
    """One training step on the samples ``indices``; returns each sample's L1 of the step's output (x 0.1)."""
    batch = torch.utils.data.default_collate([dataset[i] for i in indices])
    model.feed_data(batch)
    model.optimize_parameters(current_iter)
    return 0.1 * (model.output - model.gt).detach().abs().flatten(1).mean(1)  # pixel_opt: L1Loss, loss_weight 0.1


@pytest.mark.slow
def test_prune_online_on_gfpgan_records_and_weights_each_samples_pixel_loss(faces: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # GFPGANModel applies cri_pix once per generator step, to (output, gt) with the batch intact; its pyramid,
    # identity and facial-component losses go through its own cri_l1 and stay unweighted
    model, dataset = online_gfpgan(faces, tmp_path, monkeypatch)
    pruner = model.online_pruner
    pruner.start_epoch(0)
    losses = np.zeros(FACES)
    for step, pair in enumerate(([0, 1], [2, 3], [4, 5]), 1):  # epoch 0: every face, weight 1
        expected = gfpgan_step(model, dataset, pair, step)
        columns, recorded = pruner.pending[-1]
        assert columns.tolist() == pair and len(pruner.pending) == step
        torch.testing.assert_close(recorded, expected)
        assert model.log_dict['l_g_pix'] == pytest.approx(expected.mean().item(), rel=1e-5)
        losses[pair] = expected.numpy()
    pruner.start_epoch(1)  # the criterion scores each face by its recorded loss, leaves out half the below-mean
    np.testing.assert_allclose(pruner.criterion.scores, losses, rtol=1e-6)
    below, kept = losses < losses.mean(), np.isin(np.arange(FACES), pruner.kept_columns)
    kept_below = np.flatnonzero(below & kept)
    assert len(kept_below) == int(0.5 * below.sum()) >= 1 and kept[~below].all()
    assert pruner.weights[kept_below].tolist() == [2.0] * len(kept_below) and (pruner.weights[~below] == 1).all()
    hard = int(np.flatnonzero(~below)[0])
    pair = [int(kept_below[0]), hard]
    expected = gfpgan_step(model, dataset, pair, 4)
    torch.testing.assert_close(pruner.pending[-1][1], expected)
    assert model.log_dict['l_g_pix'] == pytest.approx((2 * expected[0] + expected[1]).item() / 2, rel=1e-5)
