"""Dataset distillation: bicubic, matching distance, grouping, SRDistillModel through `srprune train`."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from basicsr.utils.matlab_functions import imresize
from conftest import REPO, latest_log, psnr_values, run_cli, train_run

from srprune_basicsr.bicubic import imresize_tensor
from srprune_basicsr.distill.augment import Draw, augment_pair
from srprune_basicsr.distill.grouping import group_keys
from srprune_basicsr.distill.matching import gradient_distance
from srprune_basicsr.formats.keys import source_of


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_differentiable_bicubic_matches_basicsr_on_real_images(scale: int) -> None:
    import skimage.data

    for photo in (skimage.data.astronaut(), skimage.data.coffee()):
        hr = photo[:192, :192].astype(np.float64) / 255
        expected = imresize(hr, 1 / scale)
        tensor = torch.from_numpy(hr).permute(2, 0, 1)[None].float().requires_grad_()
        got = imresize_tensor(tensor, 1 / scale)
        assert np.abs(got[0].detach().permute(1, 2, 0).numpy() - expected).max() < 1e-4
        got.sum().backward()
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def test_matching_distance_is_zero_for_identical_gradients_and_rises_with_difference() -> None:
    torch.manual_seed(0)
    grads = [torch.randn(16, 3, 3, 3), torch.randn(16), torch.randn(3, 16, 5, 5), torch.randn(8, 4)]
    assert float(gradient_distance(grads, [g.clone() for g in grads])) == pytest.approx(0, abs=1e-4)
    scaled = [g * 3 for g in grads]  # cosine ignores magnitude
    assert float(gradient_distance(grads, scaled)) == pytest.approx(0, abs=1e-4)
    small = [g + 0.1 * torch.randn_like(g) for g in grads]
    large = [g + 2.0 * torch.randn_like(g) for g in grads]
    d_small, d_large = float(gradient_distance(grads, small)), float(gradient_distance(grads, large))
    assert 0 < d_small < d_large
    opposite = [-g for g in grads]  # 2 per output channel of every weight; biases are skipped
    assert float(gradient_distance(grads, opposite)) == pytest.approx(2 * (16 + 3 + 8), rel=1e-4)


def test_groups_are_source_images() -> None:
    keys = ['0001_s001', '0001_s002', '0002_s001', 'photo_a_s010', 'whole']
    assert [source_of(k) for k in keys] == ['0001', '0001', '0002', 'photo_a', 'whole']
    assert group_keys(keys) == {'0001': [0, 1], '0002': [2], 'photo_a': [3], 'whole': [4]}
    with pytest.raises(ValueError, match=r"1 group\(s\) have no sub-images .*\['0003'\]"):
        group_keys(keys, only=['0001', '0003'])


def test_augmentation_is_the_same_draw_on_both_sides_and_keeps_lr_aligned() -> None:
    hr = torch.arange(2 * 3 * 48 * 48, dtype=torch.float32).reshape(2, 3, 48, 48)
    lr = imresize_tensor(hr, 1 / 2)
    draw = Draw(hflip=True, vflip=False, rot90=1, u=0.7, v=0.2)
    hr_a, lr_a = augment_pair(hr, lr, draw, crop=16, scale=2)
    assert hr_a.shape[-2:] == (16, 16) and lr_a.shape[-2:] == (8, 8)
    # same draw on the real side: identical transform of identical data
    hr_b, lr_b = augment_pair(hr.clone(), lr.clone(), draw, crop=16, scale=2)
    assert torch.equal(hr_a, hr_b) and torch.equal(lr_a, lr_b)


# ---------------------------------------------------------------------- the model, through srprune train
def distill_options(data: Path, name: str, total_iter: int = 4, **distill: object) -> dict:
    opt = yaml.safe_load((REPO / 'options' / 'distill' / 'distill_pixel_x2.yml').read_text())
    opt['name'] = name
    opt['num_gpu'] = 0
    opt['datasets']['train'].update(dataroot_gt=str(data / 'train_sub' / 'HR_sub.lmdb'), batch_size_per_gpu=4)
    opt['distill'].update(crop=32, real_batch=4, **distill)
    opt['train']['total_iter'] = total_iter
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    return opt


distill = train_run


def build_model(opt: dict, root: Path):  # noqa: ANN201
    """SRDistillModel as train_pipeline builds it, in this process."""
    from basicsr.models import build_model as build

    for folder in ('models', 'visualization', 'training_states'):
        (root / folder).mkdir(parents=True, exist_ok=True)
    opt = dict(opt, is_train=True, dist=False, rank=0, world_size=1)
    opt['path'] = {**opt.get('path', {}), 'experiments_root': str(root), 'models': str(root / 'models'),
                   'visualization': str(root / 'visualization'), 'training_states': str(root / 'training_states')}
    return build(opt)


def test_short_cpu_distillation_lowers_the_matching_loss(tiny_data: Path, tmp_path: Path) -> None:
    model = build_model(distill_options(tiny_data, 'lower', init='noise'), tmp_path)
    before = model.matching_loss()
    for iteration in range(1, 16):
        model.feed_data({'group': torch.arange(4)})
        model.optimize_parameters(iteration)
    after = model.matching_loss()
    assert after < 0.9 * before, (before, after)
    assert (tmp_path / 'visualization' / 'contact_start.png').is_file()


@pytest.mark.slow
def test_distilled_set_loads_in_paired_dataset_and_trains_a_target(tiny_data: Path, tmp_path: Path) -> None:
    exp = distill(tmp_path, distill_options(tiny_data, 'dist'))
    out = exp / 'distilled'
    record = yaml.safe_load((out / 'distilled.json').read_text())
    assert record['images'] == 4 and record['source_images'] == 16 and record['image_ratio'] == 0.25
    assert sorted(p.name for p in (out / 'HR').iterdir()) == [f'img00{i}_syn00.png' for i in range(4)]
    for name in ('contact_start.png', 'contact_end.png'):
        assert (exp / 'visualization' / name).stat().st_size > 5_000

    from basicsr.data.paired_image_dataset import PairedImageDataset

    dataset = PairedImageDataset({'dataroot_gt': str(out / 'HR.lmdb'), 'dataroot_lq': str(out / 'LR_bicubic_X2.lmdb'),
                                  'io_backend': {'type': 'lmdb'}, 'phase': 'val', 'scale': 2})
    assert len(dataset) == 4 and dataset[0]['gt'].shape == (3, 48, 48) and dataset[0]['lq'].shape == (3, 24, 24)

    forced = [f'datasets:train:dataroot_gt={out}/HR.lmdb', f'datasets:train:dataroot_lq={out}/LR_bicubic_X2.lmdb',
              f'datasets:val:dataroot_gt={tiny_data}/val/GTmod12', f'datasets:val:dataroot_lq={tiny_data}/val/LRbicx2',
              'datasets:train:gt_size=32', 'datasets:train:num_worker_per_gpu=0', 'datasets:train:batch_size_per_gpu=2',
              'train:total_iter=4', 'val:val_freq=4', 'logger:use_tb_logger=false', 'num_gpu=0']
    path = REPO / 'options' / 'distill' / 'train_FSRCNN_x2_distilled.yml'
    proc = run_cli(['train', '-opt', str(path), '--force_yml', *forced], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert psnr_values(latest_log(tmp_path / 'experiments' / 'FSRCNN_x2_distilled'))


@pytest.mark.slow
def test_resume_gives_the_same_synthetic_set(tiny_data: Path, tmp_path: Path) -> None:
    whole = distill(tmp_path / 'a', distill_options(tiny_data, 'd'))
    distill(tmp_path / 'b', distill_options(tiny_data, 'd', total_iter=2))
    resumed = distill(tmp_path / 'b', distill_options(tiny_data, 'd'), '--auto_resume')
    a = torch.load(whole / 'models' / 'net_syn_latest.pth', weights_only=True)['params']['data']
    b = torch.load(resumed / 'models' / 'net_syn_latest.pth', weights_only=True)['params']['data']
    first = torch.load(resumed / 'models' / 'net_syn_2.pth', weights_only=True)['params']['data']
    assert torch.equal(a, b) and not torch.equal(a, first)
    assert sorted((whole / 'distilled' / 'HR').iterdir()) != []
    for p in (whole / 'distilled' / 'HR').iterdir():
        assert p.read_bytes() == (resumed / 'distilled' / 'HR' / p.name).read_bytes()


@pytest.mark.slow
def test_latent_space_with_a_trained_prior(tiny_data: Path, tmp_path: Path) -> None:
    forced = [f'datasets:train:dataroot_gt={tiny_data}/train_sub/HR_sub.lmdb', 'datasets:train:gt_size=32',
              'datasets:train:num_worker_per_gpu=0', 'datasets:train:batch_size_per_gpu=4', 'train:total_iter=4',
              'logger:save_checkpoint_freq=4', 'logger:use_tb_logger=false', 'num_gpu=0']
    proc = run_cli(['train', '-opt', str(REPO / 'options' / 'distill' / 'train_prior_ae.yml'), '--force_yml', *forced],
                   tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    prior = tmp_path / 'experiments' / 'prior_ae' / 'models' / 'net_g_latest.pth'
    opt = distill_options(tiny_data, 'latent', total_iter=2, space='latent')
    opt['network_prior'] = yaml.safe_load((REPO / 'options' / 'distill' / 'distill_latent_x2.yml').read_text())[
        'network_prior']
    opt['path']['pretrain_network_prior'] = str(prior)
    exp = distill(tmp_path, opt)
    codes = torch.load(exp / 'models' / 'net_syn_latest.pth', weights_only=True)['params']
    assert codes['data'].shape == (4, 1, 8, 12, 12)  # 48 px images, 8 channels at 1/4 resolution
    assert len(list((exp / 'distilled' / 'HR').iterdir())) == 4


def random_prior(opt: dict, path: Path) -> dict:
    """Switch ``opt`` to latent space with an untrained prior saved at ``path`` (enough to test the decoding)."""
    from basicsr.archs import build_network

    prior = yaml.safe_load((REPO / 'options' / 'distill' / 'distill_latent_x2.yml').read_text())['network_prior']
    torch.manual_seed(0)
    torch.save({'params': build_network(dict(prior)).state_dict()}, path)
    opt['network_prior'] = prior
    opt['path']['pretrain_network_prior'] = str(path)
    opt['distill']['space'] = 'latent'
    return opt


@pytest.mark.parametrize('space,network', [('pixel', 'EDSR'), ('pixel', 'FSRCNN'), ('latent', 'EDSR')])
def test_batched_matching_gives_the_loops_synthetic_set(tiny_data: Path, tmp_path: Path, space: str,
                                                       network: str) -> None:
    """Matching 3 groups per vmap pass (chunks of 3 and 1 of the 4 groups) equals matching one group at a time."""
    results = {}
    for group_batch in (1, 3):
        opt = distill_options(tiny_data, f'gb{group_batch}', init='noise', group_batch=group_batch)
        if network == 'FSRCNN':
            opt['network_match'] = {'type': 'FSRCNN', 'num_in_ch': 3, 'num_out_ch': 3}
        if space == 'latent':
            opt = random_prior(opt, tmp_path / 'prior.pth')
        model = build_model(opt, tmp_path / str(group_batch))
        before = model.syn.data.detach().clone()
        for iteration in (1, 2):
            model.feed_data({'group': torch.tensor([2, 0, 3, 1])})
            model.optimize_parameters(iteration)
        results[group_batch] = (before, model.syn.data.detach().clone(), model.log_dict['l_match'],
                                model.matching_loss(trials=2))
    (start_1, end_1, loss_1, yard_1), (start_3, end_3, loss_3, yard_3) = results[1], results[3]
    assert torch.equal(start_1, start_3) and not torch.allclose(start_1, end_1)
    torch.testing.assert_close(end_3, end_1, rtol=1e-4, atol=1e-5)
    assert loss_3 == pytest.approx(loss_1, rel=1e-5) and yard_3 == pytest.approx(yard_1, rel=1e-5)


@pytest.mark.parametrize('change,message', [
    ({'distill': {'space': 'fourier'}}, "distill:space must be one of"),
    ({'distill': {'images_per_group': 5}}, "images_per_group 5 is larger than group 'img000'"),
    ({'groups': ['img000', 'nope']}, r"have no sub-images in the training set, e.g. \['nope'\]"),
    ({'distill': {'crop': 64}}, 'distill:crop 64 must be at most syn_size 48 and a multiple of 2'),
    ({'distill': {'space': 'latent'}}, 'distill:space latent needs network_prior'),
    ({'distill': {'group_batch': 0}}, 'distill:group_batch must be a positive integer, got 0'),
])
def test_bad_distill_options_fail_clearly(tiny_data: Path, tmp_path: Path, change: dict, message: str) -> None:
    opt = distill_options(tiny_data, 'bad')
    opt['distill'].update(change.get('distill', {}))
    if 'groups' in change:
        opt['datasets']['train']['groups'] = change['groups']
    with pytest.raises(ValueError, match=message):
        build_model(opt, tmp_path)
