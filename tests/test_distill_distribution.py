"""Distribution-matching distillation: allocation, distance, teacher checks, SRDistributionDistillModel end to end."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs import build_network
from conftest import REPO, run_cli, train_run, write_options
from test_compat import train_two_ranks

from srprune_basicsr.bicubic import imresize_tensor
from srprune_basicsr.distill.allocation import patch_counts, share_out
from srprune_basicsr.distill.distribution import FourierDraw, distribution_distance, mean_embedding_distance
from srprune_basicsr.distill.teacher import FeatureTap, check_scale, default_layers, load_teacher

EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 2, 'upscale': 2,
        'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}


# ---------------------------------------------------------------------- allocation
def test_share_out_keeps_the_total_and_follows_the_source_sizes() -> None:
    sizes = [6, 5, 5, 6, 30]
    counts = share_out(sizes, 0.2, seed=0)
    assert counts.sum() == round(0.2 * sum(sizes)) == 10
    assert counts[4] == 6 and (counts <= np.asarray(sizes)).all()
    assert share_out(sizes, 1.0).tolist() == sizes


def test_a_ratio_that_leaves_sources_without_a_patch_is_refused_with_the_numbers() -> None:
    sizes = [5, 6] * 45 + [5]  # like T91 cut into 504 sub-images... 91 sources
    with pytest.raises(ValueError) as err:
        patch_counts(sizes, 0.1, None)
    message = str(err.value)
    assert 'ratio 0.1 gives 50 synthetic patches for 91 source images, so 41 of them get none' in message
    assert 'min_per_source: 1' in message and '91 patches' in message
    assert patch_counts(sizes, 0.1, 0).sum() == 50
    at_least_one = patch_counts(sizes, 0.1, 1)
    assert at_least_one.min() == 1 and at_least_one.sum() == 91


@pytest.mark.parametrize('ratio', [0, -0.1, 1.5])
def test_ratio_outside_zero_one_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match=r'distill:ratio must be in \(0, 1\]'):
        patch_counts([4, 4], ratio, None)


# ---------------------------------------------------------------------- distance
def test_distance_is_zero_in_the_mean_for_the_same_features_and_grows_with_the_difference() -> None:
    torch.manual_seed(0)
    real = torch.randn(32, 8, 16, 16) + 1
    assert float(mean_embedding_distance(real, real.clone())) == pytest.approx(0, abs=1e-9)
    draw = FourierDraw(window=8, windows=4, frequencies=128)
    same = distribution_distance([real], [real[torch.randperm(32)]], draw, torch.Generator().manual_seed(1))
    smooth = torch.nn.functional.avg_pool2d(real, 3, 1, 1)  # same mean, less high frequency
    other = distribution_distance([real], [smooth], draw, torch.Generator().manual_seed(1))
    assert float(other[1]) > 3 * float(same[1])  # the local Fourier term sees the lost detail
    assert float(other[0]) < 0.01  # the mean term does not


def test_distance_backpropagates_into_the_synthetic_features() -> None:
    real, syn = torch.rand(8, 4, 12, 12), torch.rand(2, 4, 12, 12).requires_grad_()
    mean, fourier = distribution_distance([real], [syn], FourierDraw(4, 2, 32), torch.Generator().manual_seed(0))
    (mean + fourier).backward()
    assert syn.grad is not None and syn.grad.abs().sum() > 0


# ---------------------------------------------------------------------- teacher
def save_teacher(path: Path, arch: dict) -> Path:
    torch.manual_seed(0)
    torch.save({'params': build_network(dict(arch)).state_dict()}, path)
    return path


def test_teacher_of_another_scale_or_arch_is_refused(tmp_path: Path) -> None:
    x4 = save_teacher(tmp_path / 'x4.pth', dict(EDSR, upscale=4))
    opt = {'scale': 2, 'network_teacher': dict(EDSR), 'path': {'pretrain_network_teacher': str(x4)}}
    with pytest.raises(ValueError, match=r'does not fit network_teacher EDSR .*upsample.*another arch or scale'):
        load_teacher(opt, torch.device('cpu'))
    opt['network_teacher'] = dict(EDSR, upscale=4)  # the checkpoint's own arch, but the data is x2
    with pytest.raises(ValueError, match=r'upsamples x4 but the data \(scale\) is x2'):
        load_teacher(opt, torch.device('cpu'))
    rrdb = save_teacher(tmp_path / 'rrdb.pth', {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': 2,
                                                 'num_feat': 8, 'num_block': 1, 'num_grow_ch': 4})
    opt = {'scale': 2, 'network_teacher': dict(EDSR), 'path': {'pretrain_network_teacher': str(rrdb)}}
    with pytest.raises(ValueError, match=r'does not fit network_teacher EDSR \(\d+ difference\(s\): missing'):
        load_teacher(opt, torch.device('cpu'))


def test_unknown_layer_lists_the_teachers_layers() -> None:
    net = build_network(dict(EDSR))
    with pytest.raises(ValueError, match=r"no layer\(s\) \['body.7'\]; its layers: \['conv_first', 'body', 'body.0'"):
        FeatureTap(net, ['conv_first', 'body.7'])
    assert default_layers(net) == ['conv_first', 'body', 'conv_after_body', 'upsample', 'conv_last']
    check_scale(net, 2, 'EDSR')


# ---------------------------------------------------------------------- the model, through srprune train
def distribution_options(data: Path, folder: Path, name: str, total_iter: int = 4, **distill: object) -> dict:
    opt = yaml.safe_load((REPO / 'options' / 'distill' / 'distill_distribution_x2.yml').read_text())
    folder.mkdir(parents=True, exist_ok=True)
    opt.update(name=name, num_gpu=0, network_teacher=dict(EDSR))
    opt['datasets']['train'].update(dataroot_gt=str(data / 'train_sub' / 'HR_sub.lmdb'), batch_size_per_gpu=4)
    opt['distill'].update(ratio=0.5, real_batch=4, group_batch=2, fourier_frequencies=64, **distill)
    opt['path']['pretrain_network_teacher'] = str(save_teacher(folder / 'teacher.pth', EDSR))
    opt['train']['total_iter'] = total_iter
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    return opt


def read_rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path))[:, :, ::-1].copy()


def test_distilled_pairs_are_teacher_labelled_and_trace_to_their_sources(tiny_data: Path, tmp_path: Path) -> None:
    from basicsr.data.paired_image_dataset import PairedImageDataset

    opt = distribution_options(tiny_data, tmp_path, 'idc')
    exp = train_run(tmp_path, opt)
    out = exp / 'distilled'
    record = yaml.safe_load((out / 'distilled.json').read_text())
    assert record['objective'] == 'distribution' and record['images'] == 8 and record['lr'] == 'learned'
    for patch in record['patches']:
        assert patch['name'].startswith(patch['source'] + '_syn') and patch['init_key'].startswith(patch['source'])
    dataset = PairedImageDataset({'dataroot_gt': str(out / 'HR.lmdb'), 'dataroot_lq': str(out / 'LR_X2.lmdb'),
                                  'io_backend': {'type': 'lmdb'}, 'scale': 2, 'phase': 'val'})
    assert len(dataset) == 8 and tuple(dataset[0]['lq'].shape) == (3, 24, 24)
    teacher = build_network(dict(EDSR))
    teacher.load_state_dict(torch.load(tmp_path / 'teacher.pth', weights_only=True)['params'])
    name = record['patches'][0]['name']
    lr = torch.from_numpy(read_rgb(out / 'LR' / 'X2' / f'{name}.png')).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        label = teacher.eval()(lr).clamp(0, 1)[0].permute(1, 2, 0).mul(255).round().numpy()
    assert np.abs(label - read_rgb(out / 'HR' / f'{name}.png')).max() <= 1
    assert (exp / 'visualization' / 'contact_end.png').is_file()


def test_bicubic_labels_downscale_to_their_lr(tiny_data: Path, tmp_path: Path) -> None:
    exp = train_run(tmp_path, distribution_options(tiny_data, tmp_path, 'idc_bic', total_iter=2, labels='bicubic'))
    record = yaml.safe_load((exp / 'distilled' / 'distilled.json').read_text())
    assert record['bicubic_residual_mean'] < 0.5  # of 255, before the labels' own rounding
    teacher = yaml.safe_load((train_run(tmp_path / 't', distribution_options(
        tiny_data, tmp_path / 't', 'idc_bic', total_iter=2)) / 'distilled' / 'distilled.json').read_text())
    assert teacher['bicubic_residual_mean'] > 10 * record['bicubic_residual_mean']
    name = record['patches'][0]['name']
    hr = torch.from_numpy(read_rgb(exp / 'distilled' / 'HR' / f'{name}.png')).permute(2, 0, 1)[None].float() / 255
    lr = read_rgb(exp / 'distilled' / 'LR' / 'X2' / f'{name}.png').astype(float)
    assert np.abs(imresize_tensor(hr, 0.5)[0].permute(1, 2, 0).numpy() * 255 - lr).mean() < 1


@pytest.mark.slow
def test_resume_gives_the_same_patches(tiny_data: Path, tmp_path: Path) -> None:
    whole = train_run(tmp_path / 'a', distribution_options(tiny_data, tmp_path / 'a', 'd'))
    train_run(tmp_path / 'b', distribution_options(tiny_data, tmp_path / 'b', 'd', total_iter=2))
    resumed = train_run(tmp_path / 'b', distribution_options(tiny_data, tmp_path / 'b', 'd'), '--auto_resume')
    a = torch.load(whole / 'models' / 'net_syn_latest.pth', weights_only=True)['params']['data']
    b = torch.load(resumed / 'models' / 'net_syn_latest.pth', weights_only=True)['params']['data']
    first = torch.load(resumed / 'models' / 'net_syn_2.pth', weights_only=True)['params']['data']
    assert torch.equal(a, b) and not torch.equal(a, first)


@pytest.mark.slow
def test_two_ranks_share_the_sources_and_agree(tiny_data: Path, tmp_path: Path) -> None:
    opt = distribution_options(tiny_data, tmp_path, 'idc_ranks', total_iter=3)
    opt['datasets']['train']['batch_size_per_gpu'] = 2
    opt['dist_params']['backend'] = 'gloo'
    proc = train_two_ranks(write_options(tmp_path / 'idc_ranks.yml', opt))
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'idc_ranks'
    start = torch.load(exp / 'models' / 'net_syn_2.pth', weights_only=True)['params']['data']
    end = torch.load(exp / 'models' / 'net_syn_latest.pth', weights_only=True)['params']['data']
    moved = (end - start).flatten(1).abs().sum(1) > 0
    assert moved.all()  # every source's patches were matched, on one rank or the other
    assert yaml.safe_load((exp / 'distilled' / 'distilled.json').read_text())['images'] == 8


@pytest.mark.parametrize('change,message', [
    ({'distill.inner_steps': 2}, r"distill:\['inner_steps'\] only apply to objective gradient"),
    ({'distill.ratio': 0.05}, r'gives 1 synthetic patches for 4 source images, so 3 of them get none'),
    ({'distill.layers': ['conv_first', 'tail']}, r"no layer\(s\) \['tail'\]; its layers:"),
    ({'model_type': 'SRDistillModel'}, r'distill:objective distribution runs with model_type: '
                                       r'SRDistributionDistillModel'),
])
def test_bad_options_are_refused_before_work(tiny_data: Path, tmp_path: Path, change: dict, message: str) -> None:
    opt = distribution_options(tiny_data, tmp_path, 'idc_bad')
    for key, value in change.items():
        block, _, field = key.rpartition('.')
        (opt[block] if block else opt)[field] = value
    write_options(tmp_path / 'idc_bad.yml', opt)
    proc = run_cli(['train', '-opt', 'idc_bad.yml'], tmp_path)
    assert proc.returncode != 0
    assert __import__('re').search(message, proc.stderr), proc.stderr[-2000:]
    assert not (tmp_path / 'experiments' / 'idc_bad' / 'distilled').exists()


# ---------------------------------------------------------------------- teacher of another scale, absent key
FSRCNN_X4 = {'type': 'FSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 4, 'd': 8, 's': 4, 'm': 1}


def trained_checkpoint(folder: Path, arch: dict, scale: int, keys: tuple[str, ...] = ('params',)) -> Path:
    """An experiment folder as BasicSR leaves it: models/net_g_latest.pth and the option file it trained with."""
    (folder / 'models').mkdir(parents=True)
    torch.manual_seed(0)
    state = build_network(dict(arch)).state_dict()
    torch.save(dict.fromkeys(keys, state), folder / 'models' / 'net_g_latest.pth')
    (folder / f'{folder.name}.yml').write_text(yaml.safe_dump({'name': folder.name, 'scale': scale,
                                                               'network_g': arch}))
    return folder / 'models' / 'net_g_latest.pth'


def test_an_fsrcnn_teacher_trained_at_x4_is_refused_for_x2_data(tiny_data: Path, tmp_path: Path) -> None:
    """FSRCNN's weights have the same shapes at every scale (only the deconvolution's stride differs),
    so strict loading and the output-size probe both pass: the teacher's recorded scale must be read."""
    from test_safety import refused

    x4 = trained_checkpoint(tmp_path / 'fsrcnn_x4', FSRCNN_X4, scale=4)
    opt = distribution_options(tiny_data, tmp_path, 'idc_x4')
    opt['network_teacher'] = dict(FSRCNN_X4, upscale=2)
    opt['path']['pretrain_network_teacher'] = str(x4)
    opt['distill']['layers'] = ['body']
    write_options(tmp_path / 'idc_x4.yml', opt)
    refused(run_cli(['train', '-opt', 'idc_x4.yml'], tmp_path), f'path:pretrain_network_teacher {x4}',
            'was trained at scale 4', 'fsrcnn_x4.yml', "this run's scale is 2")
    assert not (tmp_path / 'experiments' / 'idc_x4').exists()
    with pytest.raises(ValueError, match=r'pretrain_network_teacher .*net_g_latest.pth was trained at scale 4'):
        load_teacher(opt, torch.device('cpu'))  # the model checks it too (a run started without the preflight)


def test_a_teacher_param_key_absent_from_the_checkpoint_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    from test_safety import refused

    checkpoint = trained_checkpoint(tmp_path / 'edsr', EDSR, scale=2)  # only 'params'
    opt = distribution_options(tiny_data, tmp_path, 'idc_key')
    opt['path'].update(pretrain_network_teacher=str(checkpoint), param_key_teacher='params_ema')
    write_options(tmp_path / 'idc_key.yml', opt)
    refused(run_cli(['train', '-opt', 'idc_key.yml'], tmp_path), str(checkpoint), 'param_key_teacher',
            "'params_ema'", "['params']")
    assert not (tmp_path / 'experiments' / 'idc_key').exists()
    with pytest.raises(ValueError, match=r"net_g_latest.pth has no 'params_ema' .*\['params'\]"):
        load_teacher(opt, torch.device('cpu'))
    opt['path']['param_key_teacher'] = 'params'
    assert load_teacher(opt, torch.device('cpu')) is not None


def test_a_teacher_param_key_present_in_the_checkpoint_is_the_one_loaded(tmp_path: Path) -> None:
    checkpoint = trained_checkpoint(tmp_path / 'edsr', EDSR, scale=2, keys=('params', 'params_ema'))
    state = torch.load(checkpoint, weights_only=True)
    state['params_ema'] = {k: v + 1 for k, v in state['params_ema'].items()}
    torch.save(state, checkpoint)
    opt = {'scale': 2, 'network_teacher': dict(EDSR),
           'path': {'pretrain_network_teacher': str(checkpoint), 'param_key_teacher': 'params_ema'}}
    net = load_teacher(opt, torch.device('cpu'))
    assert torch.equal(net.conv_first.weight, state['params_ema']['conv_first.weight'])


def test_a_run_reading_params_ema_resumes_from_its_own_teacher_copy(tiny_data: Path, tmp_path: Path) -> None:
    """On resume BasicSR points the teacher at models/net_teacher_<iter>.pth (saved under ``params``) and
    sets param_key_teacher to params: the absent-key refusal must not stop that resume."""
    checkpoint = trained_checkpoint(tmp_path / 'edsr', EDSR, scale=2, keys=('params', 'params_ema'))
    opt = distribution_options(tiny_data, tmp_path, 'idc_ema', total_iter=2)
    opt['path'].update(pretrain_network_teacher=str(checkpoint), param_key_teacher='params_ema')
    exp = train_run(tmp_path, opt)
    opt['train']['total_iter'] = 4
    train_run(tmp_path, opt, '--auto_resume')
    assert (exp / 'models' / 'net_syn_4.pth').is_file() or (exp / 'models' / 'net_syn_latest.pth').is_file()
