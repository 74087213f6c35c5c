"""The registered archs: names, output shapes at x2/x3/x4, and the papers' parameter counts."""

import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

import srprune_basicsr  # noqa: F401


def conv_weight_count(net: torch.nn.Module) -> int:
    """Filter weights only (no biases, no PReLU slopes): what the papers count."""
    return sum(p.numel() for name, p in net.named_parameters() if p.dim() == 4)


@pytest.mark.parametrize('name', ['SRCNN', 'FSRCNN'])
def test_import_registers_arch(name: str) -> None:
    assert name in ARCH_REGISTRY


@pytest.mark.parametrize('name', ['SRCNN', 'FSRCNN'])
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_output_shape(name: str, scale: int) -> None:
    net = build_network({'type': name, 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': scale})
    out = net(torch.rand(2, 3, 11, 17))
    assert out.shape == (2, 3, 11 * scale, 17 * scale)


def test_srcnn_955_has_the_papers_57184_weights() -> None:
    # Dong et al. TPAMI 2016, 9-5-5 with n1=64, n2=32 on the Y channel: 8,032 + ... = 57,184
    net = build_network({'type': 'SRCNN', 'num_in_ch': 1, 'num_out_ch': 1, 'upscale': 3})
    assert conv_weight_count(net) == 9 * 9 * 64 + 5 * 5 * 64 * 32 + 5 * 5 * 32 == 57184


def test_fsrcnn_56_12_4_has_the_papers_12464_weights() -> None:
    # Dong et al. ECCV 2016, Table 1: FSRCNN(56, 12, 4) has 12,464 parameters
    for scale in (2, 3, 4):
        net = build_network({'type': 'FSRCNN', 'num_in_ch': 1, 'num_out_ch': 1, 'upscale': scale})
        assert conv_weight_count(net) == 12464


def test_srcnn_upsamples_like_matlab_bicubic_before_refining() -> None:
    from basicsr.utils.matlab_functions import imresize

    net = build_network({'type': 'SRCNN', 'upscale': 2})
    x = torch.rand(1, 3, 8, 10)
    expected = imresize(x[0], 2)
    assert torch.allclose(net.upsample(x)[0], expected, atol=1e-5)


def test_bad_scale_is_refused_with_the_arch_name() -> None:
    with pytest.raises(ValueError, match='FSRCNN: upscale'):
        build_network({'type': 'FSRCNN', 'upscale': 5})


def test_srcnn_identity_init_starts_as_bicubic() -> None:
    import skimage.data

    torch.manual_seed(0)
    net = build_network({'type': 'SRCNN', 'upscale': 2, 'init': 'identity'})
    x = torch.from_numpy(skimage.data.astronaut()[:48, :48]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        diff = (net(x) - net.upsample(x).clamp(min=0)).abs()
    assert diff.mean() < 1e-3 and diff.max() < 0.01


def test_fsrcnn_bicubic_skip_starts_as_bicubic_and_keeps_the_weight_count() -> None:
    import skimage.data

    from srprune_basicsr.bicubic import imresize_tensor

    torch.manual_seed(0)
    net = build_network({'type': 'FSRCNN', 'upscale': 2, 'bicubic_skip': True})
    x = torch.from_numpy(skimage.data.astronaut()[:48, :48]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        diff = (net(x) - imresize_tensor(x, 2)).abs()
    assert diff.mean() < 5e-3  # the N(0, 0.001) deconvolution adds about 1/400 of the range at the start
    plain = build_network({'type': 'FSRCNN', 'upscale': 2})
    assert conv_weight_count(net) == conv_weight_count(plain)


# the pruning paper's target archs (issue 7): small configurations for CPU tests, paper sizes for counts
SMALL = {'DRRN': {'num_feat': 32, 'num_unit': 3}, 'IDN': {'num_feat': 32, 'num_block': 2, 'd': 8},
         'RDN': {'num_feat': 32, 'num_block': 3, 'num_layer': 3, 'growth': 16}}


@pytest.mark.parametrize('name', sorted(SMALL))
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_target_archs_output_shape(name: str, scale: int) -> None:
    net = build_network({'type': name, 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': scale, **SMALL[name]})
    out = net(torch.rand(2, 3, 11, 13))
    assert out.shape == (2, 3, 11 * scale, 13 * scale)
    out.mean().backward()


@pytest.mark.parametrize('name,channels,count', [
    ('DRRN', 1, 297_601),     # Tai et al. 2017: DRRN_B1U25, 297K parameters (recursion shares weights)
    ('IDN', 1, 552_769),      # Hui et al. 2018: about 553K at x3
    ('RDN', 3, 22_308_035),   # Zhang et al. 2018: D=16, C=8, G=G0=64, about 22M at x3
])
def test_target_archs_paper_sizes(name: str, channels: int, count: int) -> None:
    net = build_network({'type': name, 'num_in_ch': channels, 'num_out_ch': channels, 'upscale': 3})
    assert sum(p.numel() for p in net.parameters()) == count


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(SMALL))
def test_target_arch_trains_and_evaluates_through_srprune_train(name: str, tiny_data, tmp_path) -> None:  # noqa: ANN001
    from conftest import latest_log, psnr_values, run_cli, train_options, write_options

    opt = train_options(tiny_data, f'{name}_tiny', total_iter=2,
                        network_g={'type': name, 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, **SMALL[name]})
    write_options(tmp_path / 'opt.yml', opt)
    proc = run_cli(['train', '-opt', 'opt.yml'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    values = psnr_values(latest_log(tmp_path / 'experiments' / f'{name}_tiny'))
    assert values and all(0 < v < 60 for v in values)  # two iterations: far from trained, but evaluated
