"""``fused_act_native``: basicsr's fused leaky ReLU runs without its CUDA kernel.

Needs ``basicsr/ops/fused_act``: copies of basicsr without ``ops/`` skip it.
"""

from __future__ import annotations

import torch

from srprune_basicsr._basicsr.fixes.base import Fix


def native_fused_leaky_relu(input: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2,
                            scale: float = 2 ** 0.5) -> torch.Tensor:
    """What basicsr's ``fused_bias_act`` kernel computes, in PyTorch: leaky ReLU of ``input + bias`` times ``scale``."""
    from torch.nn import functional as F

    rest = [1] * (input.ndim - bias.ndim - 1)
    return F.leaky_relu(input + bias.view(1, bias.shape[0], *rest), negative_slope) * scale


def fused_act_anywhere() -> None:
    """basicsr's fused leaky ReLU (StyleGAN2 archs and discriminator, GFPGAN's archs) runs without its CUDA kernel.

    ``basicsr.ops.fused_act`` needs the compiled ``fused_act_ext``, which a pip-installed basicsr
    lacks (it is built only with ``BASICSR_EXT=True`` or ``BASICSR_JIT=True`` and nvcc) and which has
    no CPU code: every forward of those networks raised ``NameError: fused_act_ext``. Where the kernel
    is loaded and the tensor is on a GPU it still runs; elsewhere PyTorch computes the same function.
    """
    from basicsr.ops.fused_act import fused_act

    function = fused_act.FusedLeakyReLUFunction
    if getattr(function.apply, '_srprune_any_device', False):
        return
    kernel_apply = function.apply

    def apply(input: torch.Tensor, bias: torch.Tensor, negative_slope: float, scale: float) -> torch.Tensor:
        if input.is_cuda and getattr(fused_act, 'fused_act_ext', None) is not None:
            return kernel_apply(input, bias, negative_slope, scale)
        return native_fused_leaky_relu(input, bias, negative_slope, scale)

    apply._srprune_any_device = True
    function.apply = staticmethod(apply)


FIX = Fix('fused_act_native', 'version', 'the fused leaky ReLU of StyleGAN2/GFPGAN archs exists only as a CUDA kernel',
          ('basicsr.ops.fused_act.fused_act:FusedLeakyReLUFunction',), fused_act_anywhere)
