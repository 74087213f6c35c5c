"""``pool_models_cpu``: Real-ESRGAN-style models (a training-pair pool) start on hosts without CUDA.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.fixes.base import Fix


@contextmanager
def cuda_means(device: torch.device) -> Iterator[None]:
    """Within the block, ``.cuda()`` on modules and tensors moves them to ``device`` (nothing changes for a GPU)."""
    if device.type == 'cuda':
        yield
        return
    module_cuda, tensor_cuda = torch.nn.Module.cuda, torch.Tensor.cuda
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self.to(device)
    torch.Tensor.cuda = lambda self, *args, **kwargs: self.to(device)
    try:
        yield
    finally:
        torch.nn.Module.cuda, torch.Tensor.cuda = module_cuda, tensor_cuda


def _options_device(opt: dict) -> torch.device:
    """The device BasicSR's BaseModel will pick for these options (the CPU with ``num_gpu: 0`` or no CUDA)."""
    return torch.device('cuda' if opt.get('num_gpu', 0) != 0 and torch.cuda.is_available() else 'cpu')


def _init_on_model_device(init: Callable) -> Callable:
    @functools.wraps(init)
    def __init__(self: Any, opt: dict, *args: Any, **kwargs: Any) -> None:
        with cuda_means(_options_device(opt)):
            init(self, opt, *args, **kwargs)

    return __init__


def _pool_on_model_device(pool: Callable) -> Callable:
    @functools.wraps(pool)
    def _dequeue_and_enqueue(self: Any) -> None:
        with cuda_means(self.device):
            pool(self)

    return _dequeue_and_enqueue


def _filter2d_any_layout(filter2d: Callable) -> Callable:
    @functools.wraps(filter2d)
    def filter2D(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:  # noqa: N802  (basicsr's name)
        return filter2d(img.contiguous(), kernel)

    return filter2D


def pool_models_on_cpu(opt: dict) -> None:
    """Before-model callback: Real-ESRGAN-style models (a training-pair pool) run where BasicSR put the model.

    basicsr's RealESRNetModel/RealESRGANModel, the ``realesrgan`` package's copies and models
    written from them call ``.cuda()`` on their JPEG and sharpening operators and on the pool
    tensors, so on a host without CUDA their constructor fails. Within those two methods ``.cuda()``
    now means the model's device; on a GPU it is what it always was. On the CPU, ``F.pad`` keeps
    the permuted layout of the JPEG operator's output, which basicsr's ``filter2D`` then cannot
    ``view``: the models' ``filter2D`` gets a contiguous input (a no-op where it already is).
    """
    from basicsr.utils.registry import MODEL_REGISTRY

    name = str(opt.get('model_type'))
    cls = MODEL_REGISTRY._obj_map.get(name) or MODEL_REGISTRY._obj_map.get(f'{name}_basicsr')  # noqa: SLF001
    if cls is None:
        return  # BasicSR's own lookup reports the unknown type
    if not hasattr(cls, '_dequeue_and_enqueue') or '_srprune_cpu_pool' in vars(cls):
        return
    cls.__init__ = _init_on_model_device(cls.__init__)
    cls._dequeue_and_enqueue = _pool_on_model_device(cls._dequeue_and_enqueue)
    cls._srprune_cpu_pool = True
    for klass in cls.__mro__:
        module = sys.modules.get(klass.__module__)
        filter2d = getattr(module, 'filter2D', None)
        if callable(filter2d) and not hasattr(filter2d, '__wrapped__'):
            module.filter2D = _filter2d_any_layout(filter2d)


def apply() -> None:
    """Register the before-model callback."""
    hooks.register('before_model', pool_models_on_cpu)


FIX = Fix('pool_models_cpu', 'version', 'RealESRNet/RealESRGAN models call `.cuda()`: they cannot start on a '
          'CPU-only host', ('basicsr.utils.registry:MODEL_REGISTRY', 'basicsr.models:build_model'), apply)
