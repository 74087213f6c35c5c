"""Which sample each trained pair came from, through a model's training-pair pool.

RealESRNet/RealESRGAN models (basicsr's and the ``realesrgan`` package's, the same code) keep a
pool of ``queue_size`` synthesised pairs: once it is full, every step shuffles it with
``torch.randperm``, trains on its first ``b`` pairs and puts the fed batch in their place. The
PSNR of ``self.output`` against ``self.gt`` then belongs to samples of earlier batches.
``SamplePool`` runs the model's own pool, records the permutation it drew, and applies the same
moves to the batch's sample columns, so every PSNR is credited to the sample it was measured on.

Only the stock pool's moves are known; a class that overrides ``_dequeue_and_enqueue`` with other
code is refused for the ``train_crop`` view instead of being credited to the wrong samples.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _code_of(cls: type) -> tuple:
    code = inspect.unwrap(cls._dequeue_and_enqueue).__code__  # under the CPU fix's wrapper, if any
    return code.co_code, code.co_names, code.co_consts


def stock_pools() -> set[tuple]:
    """The code of the pools whose moves ``SamplePool`` knows (basicsr's RealESRNet/RealESRGAN models)."""
    from basicsr.models.realesrgan_model import RealESRGANModel
    from basicsr.models.realesrnet_model import RealESRNetModel

    return {_code_of(RealESRNetModel), _code_of(RealESRGANModel)}


class SamplePool:
    """The sample columns held in a model's pool, moved as the pool moves its pairs."""

    TRACKING_HINT = 'use view: fixed (it reads every sample itself) or the stock RealESRNet/RealESRGAN pool'

    def __init__(self, block: str = 'prune_tracking') -> None:
        self.columns: np.ndarray | None = None
        self.block = block  # the option block following the pool, for its errors

    @classmethod
    def for_model(cls, model: Any, view: str, where: str, block: str = 'prune_tracking',
                  hint: str = TRACKING_HINT) -> SamplePool | None:
        """A pool tracker for a model with a stock pool (None without a pool); other pools are refused.

        ``view`` train_crop follows the trained pairs; ``block`` and ``hint`` word the errors of the
        feature that follows them (tracking, or in-run pruning).
        """
        for klass in type(model).__mro__:
            if '_dequeue_and_enqueue' in vars(klass) and not klass.__module__.startswith('srprune_basicsr'):
                model_class = klass
                break
        else:
            return None
        if view == 'train_crop' and _code_of(model_class) not in stock_pools():
            raise ValueError(f'{where}: {model_class.__module__}.{model_class.__name__} overrides the training-pair '
                             "pool (_dequeue_and_enqueue) with code this tracker does not know, so the PSNR of a "
                             f'trained pair cannot be credited to its sample; {hint}')
        return cls(block)

    def step(self, model: Any, run_pool: Callable[[], None], columns: np.ndarray) -> np.ndarray:
        """Run the model's pool on a fed batch with ``columns``; returns the columns of the pairs it trains on."""
        size, batch = int(model.queue_size), len(columns)
        filled = int(model.queue_ptr) if hasattr(model, 'queue_lr') else 0
        drawn = self._run_recording_permutations(run_pool)
        if self.columns is None:
            self.columns = np.full(size, -1, dtype=np.int64)
        if filled < size:
            if int(model.queue_ptr) != filled + batch or drawn:
                raise RuntimeError(self._lost('filling the pool did not append the batch'))
            self.columns[filled:filled + batch] = columns
            return columns
        if len(drawn) != 1 or drawn[0].numel() != size:
            raise RuntimeError(self._lost(f'a full pool drew {len(drawn)} permutation(s), expected one of {size}'))
        self.columns = self.columns[drawn[0].cpu().numpy()]
        trained = self.columns[:batch].copy()
        self.columns[:batch] = columns
        if (trained < 0).any():
            raise RuntimeError(self._lost('the pool handed out a pair it was never given'))
        return trained

    @staticmethod
    def _run_recording_permutations(run_pool: Callable[[], None]) -> list[torch.Tensor]:
        drawn: list[torch.Tensor] = []
        original, owner = torch.randperm, threading.get_ident()

        def recording_randperm(*args: Any, **kwargs: Any) -> torch.Tensor:
            order = original(*args, **kwargs)
            if threading.get_ident() == owner:  # a prefetch thread's own draws are not the pool's
                drawn.append(order.clone())
            return order

        torch.randperm = recording_randperm
        try:
            run_pool()
        finally:
            torch.randperm = original
        return drawn

    def _lost(self, what: str) -> str:
        return (f'{self.block}: the training-pair pool did not move as the stock pool does ({what}); '
                'refusing to credit PSNR to samples it cannot follow')
