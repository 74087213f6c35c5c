"""``adam_betas``: torch 2's Adam refuses betas that mix ints and floats; ``get_optimizer`` passes floats.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from srprune_basicsr._basicsr.fixes.base import Fix


def _float_betas(get_optimizer: Callable) -> Callable:
    @functools.wraps(get_optimizer)
    def get_optimizer_float_betas(self: Any, optim_type: str, params: Any, lr: float, **kwargs: Any) -> Any:
        betas = kwargs.get('betas')
        if isinstance(betas, (list, tuple)) and all(isinstance(b, (int, float)) and not isinstance(b, bool)
                                                    for b in betas):
            kwargs['betas'] = tuple(float(b) for b in betas)
        return get_optimizer(self, optim_type, params, lr, **kwargs)

    get_optimizer_float_betas._srprune_float_betas = True
    return get_optimizer_float_betas


def adam_betas_as_floats() -> None:
    """``BaseModel.get_optimizer`` hands Adam its ``betas`` as floats.

    torch 2 refuses betas that mix ints and floats ("betas must be either both floats or both
    Tensors"): GFPGAN's GFPGANModel computes ``(0**ratio, 0.99**ratio)``, an int and a float, and an
    option file's ``betas: [0, 0.99]`` is the same. ``0`` and ``0.0`` train alike.
    """
    from basicsr.models.base_model import BaseModel

    if not getattr(BaseModel.get_optimizer, '_srprune_float_betas', False):
        BaseModel.get_optimizer = _float_betas(BaseModel.get_optimizer)


FIX = Fix('adam_betas', 'version', 'torch 2\'s Adam refuses betas such as (0, 0.99)',
          ('basicsr.models.base_model:BaseModel.get_optimizer',), adam_betas_as_floats)
