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
