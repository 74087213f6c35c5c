"""``gloo_launcher``: ``--launcher pytorch`` on hosts without CUDA (gloo, DDP without device ids).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from srprune_basicsr._basicsr.fixes.base import Fix


def _patched_init_dist_pytorch(backend: str, **kwargs: Any) -> None:
    """basicsr's ``_init_dist_pytorch`` that falls back to gloo on hosts without CUDA.

    The original always calls ``torch.cuda.set_device(rank % num_gpus)`` (a ZeroDivisionError
    with no GPU) and uses NCCL, which has no CPU support. NCCL stays the default with GPUs.
    """
    import torch.distributed as dist

    rank = int(os.environ['RANK'])
    num_gpus = torch.cuda.device_count()
    if num_gpus > 0:
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', rank)) % num_gpus)
    elif backend == 'nccl':
        backend = 'gloo'
    dist.init_process_group(backend=backend, **kwargs)


def _patched_model_to_device(self: Any, net: torch.nn.Module) -> torch.nn.Module:
    """BaseModel.model_to_device that wraps CPU models in DDP without GPU device ids."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    net = net.to(self.device)
    if self.opt['dist']:
        find_unused = self.opt.get('find_unused_parameters', False)
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        return DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
    if self.opt['num_gpu'] > 1:
        return DataParallel(net)
    return net


def apply() -> None:
    """Replace basicsr's ``_init_dist_pytorch`` and ``BaseModel.model_to_device``."""
    import basicsr.utils.dist_util
    from basicsr.models.base_model import BaseModel

    basicsr.utils.dist_util._init_dist_pytorch = _patched_init_dist_pytorch
    BaseModel.model_to_device = _patched_model_to_device


FIX = Fix('gloo_launcher', 'version', '`--launcher pytorch` divides by the GPU count and hard-codes NCCL',
          ('basicsr.utils.dist_util:_init_dist_pytorch', 'basicsr.models.base_model:BaseModel.model_to_device'), apply)
