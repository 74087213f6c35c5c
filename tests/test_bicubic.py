"""The matrix form of MATLAB-style bicubic equals BasicSR's imresize and is differentiable."""

import numpy as np
import pytest
import torch
from basicsr.utils.matlab_functions import imresize

import srprune_basicsr  # noqa: F401
from srprune_basicsr.bicubic import MatlabBicubic, imresize_np, imresize_uint8


@pytest.mark.parametrize('shape,scale', [((48, 60, 3), 1 / 2), ((96, 96, 3), 1 / 3), ((97, 61, 3), 1 / 4),
                                         ((24, 30, 3), 2), ((13, 16, 1), 3), ((16, 16, 3), 4)])
def test_matches_basicsr_imresize(shape: tuple, scale: float) -> None:
    img = np.random.default_rng(0).random(shape).astype(np.float32)
    expected = imresize(img, scale)
    got = imresize_np(img.astype(np.float64), scale)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5


def test_uint8_rounding_agrees_with_basicsr_on_real_photo() -> None:
    import skimage.data

    hr = skimage.data.astronaut()[:120, :120]
    ours = imresize_uint8(hr, 1 / 4)
    theirs = np.clip(np.round(imresize(hr / 255.0, 1 / 4) * 255), 0, 255).astype(np.uint8)
    assert (ours != theirs).mean() < 1e-3  # only float summation order can flip a .5 rounding


def test_resize_runs_on_one_blas_thread_whatever_the_caller_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenBLAS's summation order, and so the rounding of .5 ties, depends on its thread count
    from threadpoolctl import threadpool_info, threadpool_limits

    seen, tensordot = [], np.tensordot

    def recording(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.extend(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas')
        return tensordot(*args, **kwargs)

    monkeypatch.setattr(np, 'tensordot', recording)
    img = np.random.default_rng(0).integers(0, 256, (60, 48, 3), dtype=np.uint8)
    with threadpool_limits(limits=2, user_api='blas'):
        before = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']
        out = imresize_uint8(img, 1 / 2)
        after = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']
    assert out.shape == (30, 24, 3)
    assert seen and set(seen) == {1}
    assert after == before  # the caller's setting is back afterwards


def test_layer_is_differentiable() -> None:
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(MatlabBicubic(0.5), (x,))
