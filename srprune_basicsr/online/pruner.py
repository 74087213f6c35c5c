"""The state of one online-pruned run: records per sample, the epoch's subset and weights, checkpoints.

One ``OnlinePruner`` per rank, shared by the training loader's sampler (``sampler``) and the model
(``model``). The model records a value per trained sample each step (``record``); at each epoch
start the sampler calls ``start_epoch``, which merges the finished epoch's records over the ranks
(``all_reduce``: every rank then holds the same scores), lets the criterion draw the new epoch's
subset with a generator seeded by (seed, epoch), so every rank draws the same subset, and plans
the epoch's steps (``plan``). With every BasicSR checkpoint the state is saved to
``experiments/<name>/prune_online/states/<iter>.npz``; a resumed run restores it and continues the
interrupted epoch where it stopped, so it sees the same subsets, weights and order as an
uninterrupted run. The state holds the options the run was started with; a resume under other
options is refused (the interrupted epoch would mix two subsets).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from srprune_basicsr.formats.history import keys_digest
from srprune_basicsr.online import random_state
from srprune_basicsr.online import record as run_record
from srprune_basicsr.online.loss import LossCriterion
from srprune_basicsr.online.options import BLOCK, OnlineOptions, changes, compared
from srprune_basicsr.online.plan import EpochPlan, RunShape
from srprune_basicsr.online.uncertainty import UncertaintyCriterion
from srprune_basicsr.scoring.columns import SampleColumns

FOLDER = 'prune_online'


def make_criterion(options: OnlineOptions, size: int) -> LossCriterion | UncertaintyCriterion:
    if options.criterion == 'loss':
        return LossCriterion(options.ratio, size, options.rescale)
    return UncertaintyCriterion(options.keep, options.window, size)


class OnlinePruner:
    """Per-sample records, the current epoch's subset and weights, and the schedule position of one run."""

    def __init__(self, options: OnlineOptions, columns: SampleColumns, shape: RunShape, opt: dict,
                 rank: int = 0, world: int = 1, source: str = 'option file') -> None:
        self.options, self.columns, self.shape, self.opt = options, columns, shape, opt
        self.source = source  # the option file, for errors
        self.rank, self.world = rank, world
        self.size = len(columns)
        self.criterion = make_criterion(options, self.size)
        self.seed = int(options.seed if options.seed is not None else (opt.get('manual_seed') or 0))
        self.root = Path(opt['path']['experiments_root'])
        self.device = torch.device('cpu')
        self.epoch: int | None = None
        self.plan: EpochPlan | None = None
        self.kept_columns = np.arange(self.size)
        self.weights = np.ones(self.size)
        self.info: dict = {}
        self.step = 0          # steps taken in the current epoch
        self.first_step = 0    # where the current epoch (re)started: > 0 after a resume inside it
        self.resumed = False
        self.pending_random_state: dict | None = None  # restored when the resumed epoch draws its first sample
        self.virtual_done = 0  # the full run's iterations the schedule has been stepped through
        self.sums, self.counts = np.zeros(self.size), np.zeros(self.size)
        self.pending: list[tuple[np.ndarray, torch.Tensor]] = []
        self.records: list[dict] = []
        self.clock = self.last_step = time.perf_counter()
        self.step_seconds: list[float] = []
        self.check_feasible()

    # ----------------------------------------------------------------- set-up checks
    def check_feasible(self) -> None:
        """Refuse at start a run that could never prune, or some epoch of which could keep less than one batch."""
        first = self.options.window if self.options.criterion == 'uncertainty' else 1  # epochs with records first
        if self._prunes_at_all() and not self.shape.pruning(first, self.options.anneal):
            raise ValueError(
                f'{self.source}: {BLOCK}: no epoch would be pruned: this run has {self.shape.total_epochs} epochs '
                f'(total_iter {self.shape.total_iter}, {self.shape.per_epoch} iterations each), pruning may start at '
                f'epoch {first} (counted from 0) and must end before epoch {self.options.anneal:g} x '
                f'{self.shape.total_epochs} (anneal); train longer, raise anneal'
                + (' or lower window' if self.options.criterion == 'uncertainty' else ''))
        fewest = self.criterion.smallest_kept() if self._prunes_at_all() else self.size
        if self.shape.loader_steps(fewest) >= 1:
            return
        shape = self.shape
        raise ValueError(
            f'{self.source}: {BLOCK}: an epoch may keep as few as {fewest} of the {self.size} training samples '
            f'({self._what_is_kept()}), {shape.samples_per_rank(fewest)} per rank with dataset_enlarge_ratio '
            f'{shape.enlarge} and {shape.world} rank(s): less than one batch of batch_size_per_gpu={shape.batch}. '
            f'{"Lower ratio" if self.options.criterion == "loss" else "Raise keep"}, lower the batch size or '
            'raise dataset_enlarge_ratio')

    def _prunes_at_all(self) -> bool:
        return self.options.criterion == 'uncertainty' or self.options.ratio > 0

    def _what_is_kept(self) -> str:
        if self.options.criterion == 'loss':
            return f'criterion loss leaves out ratio {self.options.ratio:g} of the samples below the mean'
        return f'criterion uncertainty keeps keep={self.options.keep:g}'

    # ----------------------------------------------------------------- epochs
    def start_epoch(self, epoch: int) -> None:
        """Sampler's ``set_epoch``: close the epoch that ended, then draw and plan ``epoch``."""
        if self.epoch is not None and epoch != self.epoch:
            self._finish_epoch()
        inside = self.resumed and epoch == self.epoch
        if self.resumed and not inside:  # resumed at an epoch's end: before BasicSR builds the next iterator
            self.restore_random_state()
        self.epoch = epoch
        self._draw(epoch)
        self.first_step = self.step if inside else 0
        self.step = self.first_step
        self.resumed = False
        self.clock = self.last_step = time.perf_counter()
        self.step_seconds = []

    def _draw(self, epoch: int) -> None:
        pruning = self.shape.pruning(epoch, self.options.anneal)
        if pruning and self._prunes_at_all() and self.criterion.ready():
            rng = np.random.default_rng([self.seed, epoch])
            kept, self.weights, self.info = self.criterion.select(rng)
            self.kept_columns = np.flatnonzero(kept)
        else:
            self.kept_columns, self.weights = np.arange(self.size), np.ones(self.size)
            self.info = {'all_data': 'annealing' if not pruning else ('no pruning' if not self._prunes_at_all()
                                                                       else 'warming up')}
        self.plan = self.shape.plan(epoch, len(self.kept_columns))
        self.info['kept_sha256'] = self._kept_digest()
        self._check_ranks_agree(epoch)
        if self.plan.span and self.plan.steps < 1:
            raise ValueError(f'{self.source}: {BLOCK}: epoch {epoch} keeps {len(self.kept_columns)} samples, less '
                             f'than one batch of batch_size_per_gpu={self.shape.batch} per rank')

    def _kept_digest(self) -> str:
        """A fingerprint of the epoch's subset and weights (the same on every rank, and after a resume)."""
        digest = hashlib.sha256(self.kept_columns.astype(np.int64).tobytes())
        digest.update(self.weights.astype(np.float64).tobytes())
        return digest.hexdigest()[:16]

    def _check_ranks_agree(self, epoch: int) -> None:
        """Every rank must draw the same subset; a rank that did not is an error, not a silent skew."""
        if self.world == 1:
            return
        import torch.distributed as dist

        mine = int(self.info['kept_sha256'][:15], 16)
        both = torch.tensor([mine, -mine], dtype=torch.int64, device=self.device)
        dist.all_reduce(both, op=dist.ReduceOp.MAX)
        if int(both[0]) != mine or -int(both[1]) != mine:
            raise RuntimeError(f'{BLOCK}: epoch {epoch}: the ranks drew different subsets (their per-sample records '
                               'were not merged alike); refusing to train on them')

    def epoch_order(self, generator: torch.Generator) -> list[int]:
        """This rank's sample indices for the current epoch, as EnlargedSampler deals them, cut to the plan."""
        kept, batch = self.kept_columns, self.shape.batch
        total = self.shape.samples_per_rank(len(kept)) * self.world
        order = torch.randperm(total, generator=generator).tolist()
        mine = [int(kept[v % len(kept)]) for v in order][self.rank:total:self.world]
        return mine[self.first_step * batch:self.plan.steps * batch]

    def advance(self) -> range:
        """One step starts: the full run's iterations the schedule must be stepped through before it."""
        now = time.perf_counter()
        if self.step > self.first_step:
            self.step_seconds.append(now - self.last_step)
        self.last_step = now
        self.step += 1
        target = self.plan.virtual_iter(self.step)
        positions = range(self.virtual_done + 1, target + 1)
        self.virtual_done = max(self.virtual_done, target)
        return positions

    # ----------------------------------------------------------------- per-sample records
    def record(self, columns: np.ndarray, values: torch.Tensor) -> None:
        if len(columns) != len(values):
            raise RuntimeError(f'{BLOCK}: {len(values)} per-sample values for a batch of {len(columns)} samples')
        self.pending.append((columns, values.detach()))

    def batch_weights(self, columns: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(self.weights[columns], dtype=torch.float32, device=device)

    def _flush(self) -> None:
        if not self.pending:
            return
        columns = np.concatenate([c for c, _ in self.pending])
        values = torch.cat([v.float().reshape(-1) for _, v in self.pending]).cpu().numpy()
        np.add.at(self.sums, columns, values)
        np.add.at(self.counts, columns, 1)
        self.pending.clear()

    def _merged(self) -> tuple[np.ndarray, np.ndarray]:
        """Sums and counts of all ranks (a sample no rank trained stays at count 0)."""
        self._flush()
        if self.world == 1:
            return self.sums.copy(), self.counts.copy()
        import torch.distributed as dist

        stacked = torch.from_numpy(np.stack([self.sums, self.counts])).to(self.device)
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)  # NCCL needs the tensor on the GPU
        merged = stacked.cpu().numpy()
        return merged[0], merged[1]

    def _finish_epoch(self) -> None:
        sums, counts = self._merged()
        seen = counts > 0
        self.criterion.update(np.divide(sums, counts, out=np.zeros_like(sums), where=seen), seen)
        self.sums[:], self.counts[:] = 0, 0
        if self.plan.span:  # the empty epoch after the last iteration is not a row
            self.records.append(self._epoch_record(int(seen.sum())))
            self._write_record(finished=False)

    def _epoch_record(self, trained: int) -> dict:
        plan, taken = self.plan, self.step - self.first_step
        median = float(np.median(self.step_seconds)) if self.step_seconds else None
        row = {'epoch': plan.epoch, 'samples': len(self.kept_columns), 'of': self.size, 'trained': trained,
               'steps': plan.steps, 'full_steps': plan.span, 'saved_steps': plan.span - plan.steps,
               'seconds': round(time.perf_counter() - self.clock, 3), 'steps_timed': taken,
               'step_seconds_median': median,
               'saved_seconds_estimate': None if median is None else round((plan.span - plan.steps) * median, 3),
               **self.info}
        if self.first_step:
            row['resumed_at_step'] = self.first_step
        if self.options.log_every_epoch and self.rank == 0:
            from basicsr.utils import get_root_logger

            get_root_logger().info(run_record.epoch_line(row))
        return row

    # ----------------------------------------------------------------- outputs
    def _write_record(self, finished: bool) -> None:
        if self.rank != 0:
            return
        shape = self.shape
        run_record.write(self.root / run_record.FILE, {
            'criterion': self.options.criterion, 'options': self.options.__dict__, 'samples': self.size,
            'full_run': {'per_epoch': shape.per_epoch, 'total_iter': shape.total_iter,
                         'total_epochs': shape.total_epochs, 'batch_size_per_gpu': shape.batch,
                         'world_size': shape.world, 'dataset_enlarge_ratio': shape.enlarge},
            'finished': finished, 'epochs': self.records, 'totals': run_record.totals(self.records)})

    def finish(self) -> Path | None:
        """End of training: close the last epoch, write the record and its plot (rank 0)."""
        if self.epoch is not None and (not self.records or self.records[-1]['epoch'] != self.epoch):
            self._finish_epoch()
        self._write_record(finished=True)
        if self.rank != 0:
            return None
        path = self.root / run_record.FILE
        run_record.plot(self.records, path.with_suffix('.png'))
        from basicsr.utils import get_root_logger

        get_root_logger().info(run_record.summary_line(run_record.totals(self.records)) + f'; record in {path}')
        return path

    # ----------------------------------------------------------------- checkpoints
    def _check_same_options(self, saved: dict, path: Path) -> None:
        """Refuse a resume under other options than the run was started with.

        The interrupted epoch would be finished on a subset drawn with the new options after part of
        it trained on the old one, and ``prune_online.json`` would record the new ones for the whole run.
        """
        diff = changes(saved, compared(self.options, self.seed))
        if diff:
            raise ValueError(f'{self.source}: {BLOCK}: changed since the run started ({"; ".join(diff)}; the '
                             f'started options are saved in {path}): resuming would finish the interrupted epoch '
                             'on another subset and record the new options for the whole run; restore them to '
                             'resume, or start a new run under another name')

    def state_path(self, current_iter: int) -> Path:
        return self.root / FOLDER / 'states' / f'{current_iter}.npz'

    def random_state_path(self, current_iter: int) -> Path:
        """Each rank's random streams at a checkpoint (every rank draws its own crops and flips)."""
        return self.root / FOLDER / 'states' / f'{current_iter}.random{self.rank}.npz'

    def save(self, current_iter: int) -> None:
        """Beside BasicSR's checkpoint: everything a resumed run needs to continue this epoch exactly."""
        random_state.save(self.random_state_path(current_iter))
        sums, counts = self._merged()
        if self.rank != 0:
            return
        path = self.state_path(current_iter)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f'{path.stem}.partial.npz')
        arrays = {f'criterion_{k}': v for k, v in self.criterion.state().items()}
        np.savez(tmp, sums=sums, counts=counts, epoch=np.int64(self.epoch or 0), step=np.int64(self.step),
                 plan_steps=np.int64(self.plan.steps if self.plan else 0), virtual_done=np.int64(self.virtual_done),
                 records=np.array(json.dumps(self.records)), keys_sha256=np.array(keys_digest(self.columns.keys)),
                 options=np.array(json.dumps(compared(self.options, self.seed))), **arrays)
        os.replace(tmp, path)

    def resume(self, resume_state: dict) -> None:
        """Restore the state saved with the checkpoint; the interrupted epoch goes on where it stopped."""
        current_iter = int(resume_state['iter'])
        path = self.state_path(current_iter)
        if not path.is_file():
            raise FileNotFoundError(f'{path}: missing; {BLOCK} saves its state with every checkpoint and needs the '
                                    f'one of iteration {current_iter} to resume with the same subsets')
        with np.load(path) as state:
            if 'options' in state.files:  # states saved before the options were stored resume unchecked
                self._check_same_options(json.loads(str(state['options'])), path)
            if str(state['keys_sha256']) != keys_digest(self.columns.keys):
                raise ValueError(f'{path}: saved for a different training set; refusing to resume')
            self.criterion.load({k[len('criterion_'):]: state[k] for k in state.files if k.startswith('criterion_')})
            if self.rank == 0:  # the merged partial epoch lives on one rank; the next merge sums it once
                self.sums[:], self.counts[:] = state['sums'], state['counts']
            self.epoch, self.step = int(state['epoch']), int(state['step'])
            self.virtual_done = int(state['virtual_done'])
            self.records = json.loads(str(state['records']))
            epoch_done = self.step >= int(state['plan_steps'])
        self._draw(self.epoch)  # the criterion state saved is the one that drew this epoch
        self.first_step, self.resumed = self.step, True
        self.pending_random_state = random_state.load(self.random_state_path(current_iter))
        resume_state['epoch'] = self.epoch + 1 if epoch_done else self.epoch

    def restore_random_state(self) -> None:
        """Once after a resume: the random streams as they were at the checkpoint.

        Not at resume itself: BasicSR then builds the loader's iterator, which draws from torch's
        stream. Resumed inside an epoch, the uninterrupted run drew that at the epoch's start, before
        the checkpoint, so the streams go back as the resumed epoch's first sample is drawn (the
        sampler's ``__iter__``); resumed at an epoch's end, it draws it after the checkpoint, so they go
        back as the next epoch starts (``start_epoch``), before the iterator is built.
        """
        if self.pending_random_state is not None:
            random_state.restore(self.pending_random_state)
            self.pending_random_state = None
