"""The model side of ``prune_online:``: per-sample records, weighted pixel loss, schedule, checkpoints.

``attach_if_asked`` (a model callback of ``_basicsr.hooks``) swaps a training model's class for a
subclass with ``OnlineMixin`` in front, as ``prune_tracking:`` does, so SRModel and every model
derived from it (EDSR, SwinIR and HAT configurations, RealESRNet and RealESRGAN with their
training-pair pool) work unedited:

- ``update_learning_rate``: the schedule is stepped through the full run's iterations that this
  step stands for (``plan``), so milestones, cosine periods and warm-up stretch onto the steps taken;
- ``optimize_parameters``: with ``criterion: loss`` the pixel loss (``cri_pix``) is computed per
  sample, recorded, weighted by the epoch's weights and averaged; perceptual and GAN terms are
  untouched. With ``criterion: uncertainty`` each trained sample's PSNR is recorded;
- ``save``/``resume_training``: the pruner's state goes with every BasicSR checkpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from srprune_basicsr.metrics import psnr_per_sample
from srprune_basicsr.online.options import BLOCK
from srprune_basicsr.online.pruner import OnlinePruner
from srprune_basicsr.scoring.columns import batch_identities
from srprune_basicsr.scoring.pool import SamplePool


class WeightedPixelLoss:
    """A BasicSR pixel loss (L1, MSE, Charbonnier...) computed per sample, recorded and weighted.

    The loss runs with ``reduction='none'``; each sample's value is the mean over its pixels (what
    the loss with ``reduction='mean'`` averages), so with weights of 1 the result equals the plain
    loss. ``reduction='sum'`` is kept as a sum.
    """

    def __init__(self, loss: Any, weights: torch.Tensor, recorded: list[torch.Tensor]) -> None:
        self.loss, self.weights, self.recorded = loss, weights, recorded

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        reduction = self.loss.reduction
        self.loss.reduction = 'none'
        try:
            elementwise = self.loss(pred, target, *args, **kwargs)
        finally:
            self.loss.reduction = reduction
        if elementwise.shape[0] != len(self.weights):
            raise RuntimeError(f'{BLOCK}: the pixel loss saw a batch of {elementwise.shape[0]}, the batch fed has '
                               f'{len(self.weights)} samples')
        per_sample = elementwise.flatten(1).mean(1)
        self.recorded.append(per_sample.detach())
        weighted = per_sample * self.weights.to(per_sample.dtype)
        if reduction == 'sum':
            return weighted.sum() * elementwise[0].numel()
        return weighted.mean()

    def __getattr__(self, name: str) -> Any:
        if name == 'loss':
            raise AttributeError(name)
        return getattr(self.loss, name)


@contextmanager
def weighted_pixel_loss(model: Any, weights: torch.Tensor) -> Iterator[list[torch.Tensor]]:
    """``model.cri_pix`` per sample and weighted for one step; yields the per-sample values it computed."""
    original, recorded = model.cri_pix, []
    model.cri_pix = WeightedPixelLoss(original, weights, recorded)
    try:
        yield recorded
    finally:
        model.cri_pix = original


def check_model(model: Any, criterion: str, where: str) -> None:
    """Refuse, before training, a model that cannot give what the criterion records per sample."""
    kind = type(model).__name__
    if not hasattr(model, 'optimize_parameters') or not hasattr(model, 'update_learning_rate'):
        raise ValueError(f'{where}: {kind} is not a BasicSR training model (no optimize_parameters)')
    if criterion != 'loss':
        return
    loss = getattr(model, 'cri_pix', None)
    if loss is None:
        raise ValueError(f"{where}: criterion loss scores each sample by its pixel loss, but the model {kind} "
                         'has none (no cri_pix: set train:pixel_opt), so it gives no per-sample loss; use '
                         'criterion: uncertainty or add a pixel loss')
    if not isinstance(getattr(loss, 'reduction', None), str):
        raise ValueError(f"{where}: criterion loss needs a per-sample pixel loss, but {kind}'s pixel loss "
                         f"{type(loss).__name__} has no reduction option to compute one (BasicSR's L1Loss, "
                         'MSELoss and CharbonnierLoss have)')


class OnlineMixin:
    """The hooks, placed before the model's own class in the MRO (so ``super()`` is its code)."""

    online_pruner: OnlinePruner
    online_identities: Any = None
    online_columns: np.ndarray | None = None

    def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None:
        for position in self.online_pruner.advance():
            super().update_learning_rate(position, warmup_iter)  # type: ignore[misc]

    def feed_data(self, data: dict) -> None:
        self.online_identities, self.online_columns = batch_identities(data), None
        super().feed_data(data)  # type: ignore[misc]

    def _trained_columns(self) -> np.ndarray:
        if self.online_columns is None:  # no pool: the pairs trained are the batch fed
            self.online_columns = self.online_pruner.columns.of_batch(self.online_identities)
        return self.online_columns

    def optimize_parameters(self, current_iter: int) -> None:
        pruner = self.online_pruner
        columns = self._trained_columns()
        if pruner.criterion.needs == 'loss':
            with weighted_pixel_loss(self, pruner.batch_weights(columns, self.device)) as recorded:
                super().optimize_parameters(current_iter)  # type: ignore[misc]
            if recorded:  # a GAN step that trains only the discriminator computes no pixel loss
                pruner.record(columns, torch.stack(recorded).sum(0))
            return
        super().optimize_parameters(current_iter)  # type: ignore[misc]
        output, gt = getattr(self, 'output', None), getattr(self, 'gt', None)
        if output is None or gt is None:
            raise ValueError(f'{BLOCK}: criterion uncertainty records the PSNR of each trained sample, but '
                             f'{type(self).__name__} keeps no self.output and self.gt after optimize_parameters')
        pruner.record(columns, psnr_per_sample(output, gt, pruner.opt['scale']))

    def save(self, epoch: int, current_iter: int) -> None:
        super().save(epoch, current_iter)  # type: ignore[misc]
        if current_iter == -1:
            self.online_pruner.finish()
        else:
            self.online_pruner.save(current_iter)

    def resume_training(self, resume_state: dict) -> None:
        super().resume_training(resume_state)  # type: ignore[misc]
        self.online_pruner.resume(resume_state)


class PoolOnlineMixin(OnlineMixin):
    """RealESRNet/RealESRGAN: the sample columns travel through the training-pair pool with their pairs."""

    online_pool: SamplePool

    def _dequeue_and_enqueue(self) -> None:
        fed = self.online_pruner.columns.of_batch(self.online_identities)
        self.online_columns = self.online_pool.step(self, super()._dequeue_and_enqueue, fed)  # type: ignore[misc]


@functools.cache
def online_class(cls: type) -> type:
    mixin = PoolOnlineMixin if hasattr(cls, '_dequeue_and_enqueue') else OnlineMixin
    return type(f'{cls.__name__}WithPruneOnline', (mixin, cls), {})


def attach_if_asked(model: Any, opt: dict, loader: Any) -> Any:
    """Model callback: a training model whose options carry ``prune_online:`` gets the hooks."""
    if not (opt.get(BLOCK) and opt.get('is_train')):
        return model
    from srprune_basicsr._basicsr import hooks

    where = f"{hooks.option_file() or 'option file'}: {BLOCK}"
    pruner = getattr(getattr(loader, 'sampler', None), 'online_pruner', None)
    if pruner is None:
        raise ValueError(f"{where}: no online training loader recorded; it works inside BasicSR's train_pipeline "
                         '(srprune train, or a train.py that imports srprune_basicsr and calls train_pipeline)')
    check_model(model, pruner.options.criterion, where)
    pool = SamplePool.for_model(model, 'train_crop', where, BLOCK,
                                hint='in-run pruning follows the stock RealESRNet/RealESRGAN pool only')
    model.__class__ = online_class(type(model))
    model.online_pruner = pruner
    if pool is not None:
        model.online_pool = pool
    pruner.device = getattr(model, 'device', torch.device('cpu'))
    return model
