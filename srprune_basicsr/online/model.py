"""The model side of ``prune_online:``: per-sample records, weighted pixel loss, schedule, checkpoints.

``attach_if_asked`` (a model callback of ``_basicsr.hooks``) swaps a training model's class for a
subclass with ``OnlineMixin`` in front, as ``prune_tracking:`` does, so SRModel and every model
derived from it (EDSR, SwinIR and HAT configurations, RealESRNet and RealESRGAN with their
training-pair pool) work unedited:

- ``update_learning_rate``: the schedule is stepped through the full run's iterations that this
  step stands for (``plan``), so milestones, cosine periods and warm-up stretch onto the steps taken;
- ``optimize_parameters``: with ``criterion: loss`` the pixel loss (``cri_pix``) is computed per
  sample, recorded, weighted by the epoch's weights and averaged; perceptual, GAN, pyramid,
  facial-component and identity terms (GFPGAN's, through its own ``cri_l1``) are untouched. A
  model whose ``cri_pix`` is not one per-sample loss of its output per step (applied several times,
  or to resized outputs) is refused at its first step (``check_pixel_loss_calls``). With
  ``criterion: uncertainty`` each trained sample's PSNR is recorded;
- ``save``/``resume_training``: the pruner's state goes with every BasicSR checkpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from srprune_basicsr.checks import check_unit_range
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
        self.shapes: list[tuple[int, ...]] = []  # of each prediction it was called on (see check_pixel_loss_calls)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.shapes.append(tuple(pred.shape))
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
def weighted_pixel_loss(model: Any, weights: torch.Tensor) -> Iterator[WeightedPixelLoss]:
    """``model.cri_pix`` per sample and weighted for one step; yields the wrapper (its ``recorded`` values)."""
    original = model.cri_pix
    model.cri_pix = WeightedPixelLoss(original, weights, [])
    try:
        yield model.cri_pix
    finally:
        model.cri_pix = original


def model_type(model: Any) -> str:
    """The model's own class name (without the ``WithPruneOnline`` of the class the hooks give it)."""
    return type(model).__name__.removesuffix('WithPruneOnline')


def check_pixel_loss_calls(model: Any, shapes: list[tuple[int, ...]], where: str) -> None:
    """Refuse a model whose ``cri_pix`` in one step is not one per-sample loss of its output.

    ``criterion: loss`` scores a sample by its pixel loss and weights that loss: it must be the
    loss of the sample's own output against its GT, computed once. A model that applies ``cri_pix``
    several times per step (deep supervision, an image pyramid) or to a resized output would record
    a sum of unlike terms as the sample's loss and weight each of them. (GFPGAN's pyramid and
    identity losses go through its own ``cri_l1`` and are left unweighted, as perceptual and GAN terms are.)
    """
    if len(shapes) > 1:
        raise ValueError(f'{where}: criterion loss weights one per-sample pixel loss of each step, but the model '
                         f'{model_type(model)} applies its pixel loss (cri_pix) {len(shapes)} times in one step (to '
                         f'{shapes}), so a sample\'s recorded loss would be a sum of unlike terms; use criterion: '
                         'uncertainty, or a model that applies cri_pix once to its output')
    output = getattr(model, 'output', None)
    if shapes and isinstance(output, torch.Tensor) and tuple(output.shape) != shapes[0]:
        raise ValueError(f'{where}: criterion loss scores each sample by the pixel loss of its output, but the model '
                         f'{model_type(model)} applies its pixel loss (cri_pix) to a {shapes[0]} tensor, not to its '
                         f'output {tuple(output.shape)} (a resized or partial output); use criterion: uncertainty')


def check_model(model: Any, criterion: str, where: str, opt: dict | None = None) -> None:
    """Refuse, before training, a model that cannot give what the criterion records per sample."""
    kind = type(model).__name__
    if not hasattr(model, 'optimize_parameters') or not hasattr(model, 'update_learning_rate'):
        raise ValueError(f'{where}: {kind} is not a BasicSR training model (no optimize_parameters)')
    if criterion != 'loss':
        check_psnr_inputs(opt or {}, kind, where)
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


def check_psnr_inputs(opt: dict, kind: str, where: str) -> None:
    """``criterion: uncertainty`` records PSNRs of outputs in [0, 1] with ``scale`` border pixels shaved.

    A training set normalised with ``mean``/``std`` (GFPGAN's FFHQ sets: [-1, 1]) gives outputs the
    PSNR clamps to [0, 1], so the recorded values would not be the samples' PSNRs; options without
    ``scale`` (face restoration) name no border. Both are refused before training.
    """
    check_unit_range(opt, where, 'criterion uncertainty records', f'use criterion: loss ({kind})')
    if opt and opt.get('scale') is None:
        raise ValueError(f'{where}: criterion uncertainty shaves scale pixels off each output before its PSNR, but '
                         f'the options set no scale ({kind}); set scale:, or use criterion: loss')


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
            with weighted_pixel_loss(self, pruner.batch_weights(columns, self.device)) as loss:
                super().optimize_parameters(current_iter)  # type: ignore[misc]
            check_pixel_loss_calls(self, loss.shapes, f'{pruner.source}: {BLOCK}')
            if loss.recorded:  # a GAN step that trains only the discriminator computes no pixel loss
                pruner.record(columns, loss.recorded[0])
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
    check_model(model, pruner.options.criterion, where, opt)
    pool = SamplePool.for_model(model, 'train_crop', where, BLOCK,
                                hint='in-run pruning follows the stock RealESRNet/RealESRGAN pool only')
    model.__class__ = online_class(type(model))
    model.online_pruner = pruner
    if pool is not None:
        model.online_pool = pool
    pruner.device = getattr(model, 'device', torch.device('cpu'))
    return model
