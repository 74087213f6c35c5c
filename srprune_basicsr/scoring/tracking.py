"""``prune_tracking:``: record every sample's PSNR during training, write dynamic-uncertainty scores.

Switched on from YAML, for BasicSR's SRModel and any model derived from it, without editing the
model class::

    prune_tracking:
      method: dynamic_uncertainty
      view: fixed          # fixed: the whole LR sub-image (or a centre crop), net in eval mode
                           # train_crop: the PSNR of the training batch already computed (free, noisier)
      window: 10           # J of the paper
      every: epoch         # or an iteration count
      crop: ~              # fixed view: centre crop in GT pixels (default: whole sub-image)
      batch_size: 16       # fixed view forward batch
      out: scores_du.csv   # relative to experiments/<name>/

``attach_if_asked`` is a model callback of ``_basicsr.hooks``: when the options carry
``prune_tracking``, the built model's class is swapped for a subclass that adds the hooks
(feed_data remembers the batch's keys, optimize_parameters records/snapshots, save checkpoints
the tracker, resume_training restores it).
A snapshot is one history row; rows are numbered by iteration (row r is taken at iteration
(r+1)*every), so a resumed run rewrites exactly the rows it replays. The history lives in
``experiments/<name>/prune_tracking/`` (see ``formats.history``); the tracker's own state at
each BasicSR checkpoint goes to ``prune_tracking/states/<iter>.npz`` (BasicSR's auto-resume scans
``training_states/`` for ``*.state`` and must not see our files).

Under ``--launcher pytorch`` each rank measures its share (fixed view: the same consecutive-index
batches as one process, dealt round-robin; train_crop: the samples its loader gave it); sums and
counts are merged with ``all_reduce`` so an unseen sample stays unseen, never a 0 dB value.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from srprune_basicsr.checks import check_unit_range
from srprune_basicsr.formats.history import History, HistoryError, keys_digest
from srprune_basicsr.metrics import psnr_per_sample
from srprune_basicsr.options import option_block
from srprune_basicsr.scoring import dataset_pass
from srprune_basicsr.scoring.columns import SampleColumns, batch_identities
from srprune_basicsr.scoring.dynamic_uncertainty import METHOD, write_uncertainty_scores
from srprune_basicsr.scoring.pool import SamplePool

VIEWS = ('fixed', 'train_crop')
FOLDER = 'prune_tracking'
OPTION_CROP = 'prune_tracking:crop'


@dataclass(frozen=True)
class TrackingOptions:
    """The ``prune_tracking:`` block (see the module docstring); ``check(scale)`` validates the crop."""

    method: str = METHOD
    view: str = 'fixed'
    window: int = 10
    every: int | str = 'epoch'
    crop: int | None = None
    batch_size: int = 16
    out: str = 'scores_du.csv'

    def __post_init__(self) -> None:
        if self.method != METHOD:
            raise ValueError(f'prune_tracking:method must be {METHOD!r}, got {self.method!r}')
        if self.view not in VIEWS:
            raise ValueError(f'prune_tracking:view must be one of {VIEWS}, got {self.view!r}')
        if not isinstance(self.window, int) or self.window < 2:
            raise ValueError(f'prune_tracking:window must be an integer >= 2, got {self.window!r}')
        if self.every != 'epoch' and not (isinstance(self.every, int) and self.every > 0):
            raise ValueError(f"prune_tracking:every must be 'epoch' or a positive iteration count, got {self.every!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f'prune_tracking:batch_size must be a positive integer, got {self.batch_size!r}')

    def check(self, scale: int) -> TrackingOptions:
        crop = self.crop
        if crop is not None and (not isinstance(crop, int) or crop <= 0 or crop % scale):
            raise ValueError(f'prune_tracking:crop must be a positive multiple of the scale {scale}, got {crop!r}')
        return self


def tracking_options(block: Any, scale: int) -> TrackingOptions:
    """Validated ``prune_tracking`` options with defaults; errors name the key."""
    return option_block(TrackingOptions, block, 'prune_tracking').check(scale)


def check_tracked_range(opt: dict) -> None:
    """Tracking records PSNRs on [0, 1] images: a training set normalised with mean/std is refused."""
    check_unit_range(opt, 'prune_tracking', 'records',
                     'dynamic uncertainty cannot be tracked on it: score the set with a method that reads the '
                     'images (srprune score, method: loss_value or sobel), or train it without mean/std')


def check_train_crop_coverage(kept: int, per_epoch: int, every: int, window: int, opt: dict) -> None:
    """Refuse, before training, a ``train_crop`` run whose samples could not all be scored at its end.

    ``train_crop`` measures a sample only when the loader draws it: ``dataset_enlarge_ratio`` times
    in each of its epochs of ``per_epoch`` iterations (BasicSR's sampler repeats the set that often),
    so a window of ``window`` snapshots ``every`` iterations apart measures each sample about
    ``window * every * enlarge / per_epoch`` times, and a score needs two in one window. Below two
    expected, most samples would end unscored after the whole training.
    """
    enlarge = int(opt['datasets']['train'].get('dataset_enlarge_ratio') or 1)
    expected = window * every * enlarge / per_epoch
    if expected >= 2:
        return
    raise ValueError(
        f'prune_tracking: view train_crop would measure each of the {kept} training samples about {expected:.2f} '
        f'times per window ({window} snapshots x every {every} iterations, an epoch being {per_epoch} iterations '
        f'that draw each sample {enlarge} time(s)), and a score needs 2 in one window, so this run (total_iter '
        f"{opt['train']['total_iter']}) could not score them; set every: epoch, every >= "
        f'{math.ceil(2 * per_epoch / (window * enlarge))}, or window >= {math.ceil(2 * per_epoch / (every * enlarge))}')


def _dist() -> tuple[int, int, bool]:
    from basicsr.utils.dist_util import get_dist_info

    rank, world = get_dist_info()
    return rank, world, world > 1


class PruneTracker:
    """Per-sample PSNR bookkeeping for one training run (one per rank)."""

    def __init__(self, model: Any, opt: dict, loader: Any) -> None:
        from basicsr.utils import get_root_logger

        self.model, self.opt = model, opt
        self.options = tracking_options(opt['prune_tracking'], opt['scale'])
        check_tracked_range(opt)
        self.rank, self.world, self.distributed = _dist()
        if loader is None:
            raise ValueError('prune_tracking: no training loader recorded; it works inside BasicSR\'s train_pipeline '
                             '(srprune train, or a train.py that imports srprune_basicsr and calls train_pipeline)')
        self.dataset = loader.dataset
        self.num_workers = loader.num_workers  # the fixed view reads with as many workers as training
        where = f"prune_tracking: datasets:{opt['datasets']['train'].get('name', 'train')}"
        self.columns = SampleColumns(self.dataset, where, 'prune_tracking')
        self.keys = self.columns.keys
        if self.columns.samples.kind == 'lq_only':
            raise ValueError(f'{where}: {type(self.dataset).__name__} holds no GT images; PSNR needs a GT')
        self.pool = SamplePool.for_model(model, self.options.view, where)
        per_epoch = len(loader)
        every = self.options.every
        self.every = per_epoch if every == 'epoch' else int(every)
        if self.every < 1:
            raise ValueError('prune_tracking: an epoch has 0 iterations; the training set is smaller than a batch')
        self.planned = int(opt['train']['total_iter']) // self.every
        if self.planned < self.options.window:
            raise ValueError(f"prune_tracking: window {self.options.window} is larger than the {self.planned} "
                             f"snapshots this run takes (total_iter {opt['train']['total_iter']}, one every "
                             f'{self.every} iterations); lower the window, snapshot more often or train longer')
        if self.options.view == 'train_crop':
            check_train_crop_coverage(len(self.keys), per_epoch, self.every, self.options.window, opt)
        self.fixed_batches = dataset_pass.rank_batches(len(self.keys), self.options.batch_size, self.rank, self.world)
        self.root = Path(opt['path']['experiments_root']) / FOLDER
        self.history: History | None = None
        self.snapshots = 0
        # per-sample sums and counts of the open snapshot interval; batches wait in ``pending`` (PSNR
        # still on the model's device) until a snapshot or checkpoint, so training never waits for them
        self.sums = np.zeros(len(self.keys))
        self.counts = np.zeros(len(self.keys))
        self.pending: list[tuple[np.ndarray, torch.Tensor]] = []
        self._reader: Any = None
        self.batch_keys: list[str] | None = None
        self.batch_columns: np.ndarray | None = None
        get_root_logger().info(
            f"prune_tracking: {METHOD}, view {self.options.view}, a snapshot every {self.every} iterations"
            f"{' (1 epoch)' if every == 'epoch' else ''}, {self.planned} planned, window {self.options.window}, "
            f'{len(self.keys)} samples; history in {self.root}')

    # ----------------------------------------------------------------- metadata
    def _meta(self) -> dict:
        return {'method': METHOD, 'view': self.options.view, 'every': self.every, 'crop': self.options.crop,
                'scale': self.opt['scale'], 'experiment': self.opt['name'],
                'dataset': {k: str(self.opt['datasets']['train'].get(k)) for k in ('dataroot_gt', 'dataroot_lq')}}

    def _open_history(self) -> History:
        if self.history is None:
            self.history = History.create(self.root, self.keys, self.planned, self._meta())
        return self.history

    # ----------------------------------------------------------------- training hooks
    def remember_batch(self, data: dict) -> None:
        """Keep the fed batch's identities (validation batches pass through here too; resolved when recorded)."""
        self.batch_keys = batch_identities(data)
        self.batch_columns = None

    def _batch_columns(self) -> np.ndarray:
        """Columns of the last training batch: its ``key`` (a pruned set) or its GT paths (any BasicSR set)."""
        if self.batch_columns is not None:  # set by the pool: the pairs the model trained on this step
            return self.batch_columns
        return self.columns.of_batch(self.batch_keys)

    def pool_step(self, run_pool: Any) -> None:
        """Run the model's training-pair pool, carrying this batch's columns through it (train_crop only)."""
        if self.options.view != 'train_crop':
            run_pool()
            return
        columns = self._batch_columns()
        self.batch_columns = self.pool.step(self.model, run_pool, columns)

    def after_step(self, current_iter: int) -> None:
        if self.options.view == 'train_crop':
            self._record_train_crop()
        if current_iter % self.every == 0:
            self.snapshot(current_iter)

    def _record_train_crop(self) -> None:
        output, gt = getattr(self.model, 'output', None), getattr(self.model, 'gt', None)
        if output is None or gt is None:
            raise ValueError(f'prune_tracking: view train_crop needs the model to keep self.output and self.gt '
                             f'after optimize_parameters ({type(self.model).__name__} does not); use view: fixed')
        self._add(self._batch_columns(), psnr_per_sample(output, gt, self.opt['scale']))

    def _add(self, columns: np.ndarray, psnr: torch.Tensor) -> None:
        self.pending.append((columns, psnr))

    def _flush(self) -> None:
        """Fold the pending batches into sums and counts (one device-to-host copy)."""
        if not self.pending:
            return
        columns = np.concatenate([c for c, _ in self.pending])
        values = torch.cat([v for _, v in self.pending]).cpu().numpy()
        np.add.at(self.sums, columns, values)
        np.add.at(self.counts, columns, 1)
        self.pending.clear()

    @torch.no_grad()
    def _measure_fixed(self) -> None:
        """This rank's share of the fixed-view pass: consecutive-index batches, round-robin over ranks."""
        net = self.model.get_bare_model(self.model.net_g)
        was_training = net.training
        net.eval()
        batches = zip(self.fixed_batches, self._fixed_batches(), strict=True)
        for indices, groups in tqdm(batches, total=len(self.fixed_batches), unit='batch',
                                    desc='prune_tracking snapshot', leave=False, disable=self.rank != 0):
            for positions, lq, gt in groups:
                psnr = psnr_per_sample(net(lq.to(self.model.device, non_blocking=True)),
                                       gt.to(self.model.device, non_blocking=True), self.opt['scale'])
                self._add(np.asarray(indices)[positions], psnr)
        net.train(was_training)

    def _fixed_batches(self) -> Iterator[list[dataset_pass.Group]]:
        """This rank's fixed-view batches, read by as many loader workers as training uses.

        With workers, one persistent reader serves every snapshot (no start-up per snapshot; the
        LMDBs are opened in its workers, never in this process). Without, a view that shares the
        training set's file client is made for each pass.
        """
        crop, scale = self.options.crop, self.opt['scale']
        if self.num_workers == 0:
            with dataset_pass.fixed_view(self.dataset, scale) as view:
                for indices in self.fixed_batches:
                    yield dataset_pass.load_batch(view, indices, crop, scale, OPTION_CROP)
            return
        if self._reader is None:
            self._reader = dataset_pass.loader(self.dataset, self.fixed_batches, crop, scale, OPTION_CROP,
                                               self.num_workers, pin_memory=self.model.device.type == 'cuda')
        yield from self._reader

    def _merged(self) -> tuple[np.ndarray, np.ndarray]:
        """Sums and counts of all ranks (all_reduce: a sample no rank saw stays at count 0)."""
        self._flush()
        if not self.distributed:
            return self.sums, self.counts
        import torch.distributed as dist

        stacked = torch.from_numpy(np.stack([self.sums, self.counts])).to(self.model.device)
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)  # NCCL needs the tensor on the GPU
        merged = stacked.cpu().numpy()
        return merged[0], merged[1]

    def snapshot(self, current_iter: int) -> None:
        """Close one history row: measure (fixed view), merge the ranks, append, reset the accumulators."""
        if self.options.view == 'fixed':
            self._measure_fixed()
        sums, counts = self._merged()
        if self.rank == 0:
            history = self._open_history()
            if history.count != self.snapshots:
                raise HistoryError(f'{self.root}: history has {history.count} snapshots, expected {self.snapshots}')
            seen = counts > 0
            history.append(current_iter, np.divide(sums, counts, out=np.zeros_like(sums), where=seen), seen)
        self.snapshots += 1
        self.sums[:] = 0
        self.counts[:] = 0

    # ----------------------------------------------------------------- checkpoints
    def state_path(self, current_iter: int) -> Path:
        return self.root / 'states' / f'{current_iter}.npz'

    def save(self, current_iter: int) -> None:
        """Beside BasicSR's checkpoint: the partial window's accumulators (merged over ranks)."""
        sums, counts = self._merged()
        if self.rank != 0:
            return
        self._open_history().commit()
        path = self.state_path(current_iter)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f'{path.stem}.partial.npz')
        np.savez(tmp, sums=sums, counts=counts, snapshots=np.int64(self.snapshots),
                 keys_sha256=np.array(keys_digest(self.keys)))
        os.replace(tmp, path)

    def resume(self, resume_state: dict) -> None:
        """Restore the history to the checkpoint's iteration; a history of another dataset is refused."""
        from basicsr.utils import get_root_logger

        current_iter = int(resume_state['iter'])
        self.snapshots = current_iter // self.every
        if not (self.root / 'history.json').is_file():
            get_root_logger().warning(f'prune_tracking: no history in {self.root} to resume; snapshots before '
                                      f'iteration {current_iter} stay unseen')
            if self.rank == 0:
                self._open_history()
                for _ in range(self.snapshots):
                    self.history.append(0, np.zeros(len(self.keys)), np.zeros(len(self.keys), dtype=bool))
            return
        history = History.open(self.root, writable=self.rank == 0)
        if history.keys != self.keys:
            raise HistoryError(f'{self.root / "history.json"}: recorded on a different dataset ({len(history.keys)} '
                               f'samples, keys sha256 {keys_digest(history.keys)[:12]}) than this run '
                               f'({len(self.keys)} samples, {keys_digest(self.keys)[:12]}); refusing to resume')
        if history.meta.get('every') != self.every or history.meta.get('view') != self.options.view:
            raise HistoryError(f"{self.root / 'history.json'}: recorded with view {history.meta.get('view')}, every "
                               f"{history.meta.get('every')} iterations; this run has view {self.options.view}, "
                               f'every {self.every}; refusing to resume')
        if history.count < self.snapshots:
            raise HistoryError(f'{self.root}: {history.count} snapshots on disk, but the checkpoint at iteration '
                               f'{current_iter} needs {self.snapshots}')
        self._restore_accumulators(current_iter)
        if self.rank == 0:
            history.forget_after(self.snapshots)
            history.grow(self.planned)
            self.history = history

    def _restore_accumulators(self, current_iter: int) -> None:
        path = self.state_path(current_iter)
        if self.rank != 0 or self.options.view != 'train_crop' or current_iter % self.every == 0:
            return
        if not path.is_file():
            raise HistoryError(f'{path}: missing; the checkpoint at iteration {current_iter} is inside a '
                               'snapshot window and its partial measurements are needed to resume')
        with np.load(path) as state:
            if str(state['keys_sha256']) != keys_digest(self.keys):
                raise HistoryError(f'{path}: saved for a different dataset; refusing to resume')
            self.sums[:], self.counts[:] = state['sums'], state['counts']

    def finish(self) -> Path | None:
        """End of training: write the scores (rank 0); returns their path."""
        if self.rank != 0:
            return None
        from basicsr.utils import get_root_logger

        history = self._open_history()
        history.meta['window'] = self.options.window
        history.commit()
        out = Path(self.options.out)
        if not out.is_absolute():
            out = Path(self.opt['path']['experiments_root']) / out
        try:
            write_uncertainty_scores(history, self.options.window, out, progress=False, overwrite=True,
                                     dataset=history.meta.get('dataset'), sample_count=len(self.keys),
                                     scale=self.opt['scale'])
        except ValueError as err:
            raise ValueError(f'prune_tracking: training finished and its models are saved, and the PSNR history '
                             f'stays in {self.root}, but no scores were written: {err}. Score the history again '
                             f'with `srprune score` (method: dynamic_uncertainty, history: {self.root}, a smaller '
                             'window)') from None
        get_root_logger().info(f'prune_tracking: {history.count} snapshots -> dynamic uncertainty scores {out}')
        return out


class TrackingMixin:
    """The hooks, placed before the user's model class in the MRO (so ``super()`` is their code)."""

    prune_tracker: PruneTracker

    def feed_data(self, data: dict) -> None:
        self.prune_tracker.remember_batch(data)
        super().feed_data(data)

    def optimize_parameters(self, current_iter: int) -> None:
        super().optimize_parameters(current_iter)
        self.prune_tracker.after_step(current_iter)

    def save(self, epoch: int, current_iter: int) -> None:
        super().save(epoch, current_iter)
        if current_iter == -1:
            self.prune_tracker.finish()
        else:
            self.prune_tracker.save(current_iter)

    def resume_training(self, resume_state: dict) -> None:
        super().resume_training(resume_state)
        self.prune_tracker.resume(resume_state)


class PoolTrackingMixin(TrackingMixin):
    """For models with a training-pair pool (RealESRNet/RealESRGAN): sample columns travel with their pairs."""

    def _dequeue_and_enqueue(self) -> None:
        self.prune_tracker.pool_step(super()._dequeue_and_enqueue)


@functools.cache
def tracked_class(cls: type) -> type:
    """``cls`` with the tracking hooks (one subclass per class, same name plus a suffix)."""
    mixin = PoolTrackingMixin if hasattr(cls, '_dequeue_and_enqueue') else TrackingMixin
    return type(f'{cls.__name__}WithPruneTracking', (mixin, cls), {})


def attach_if_asked(model: Any, opt: dict, loader: Any) -> Any:
    """Model callback: give a training model the tracking hooks when its options carry ``prune_tracking``."""
    if opt.get('prune_tracking') and opt.get('is_train'):
        model.__class__ = tracked_class(type(model))
        model.prune_tracker = PruneTracker(model, opt, loader)
    return model
