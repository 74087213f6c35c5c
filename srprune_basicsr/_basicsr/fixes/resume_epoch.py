"""``resume_epoch``: a checkpoint taken at the end of epoch e resumes at epoch e + 1, as the run would have gone on.
"""

from __future__ import annotations

from typing import Any

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.fixes.base import Fix


def next_epoch_on_resume(model: Any, resume_state: dict, train_loader: Any) -> None:
    """Resume callback: a checkpoint taken at the end of an epoch resumes at the next one.

    BasicSR stores the epoch the checkpoint's iteration belongs to and restarts that epoch, so a
    run resumed from the end of epoch e replays e's data order (EnlargedSampler seeds it with e)
    where the uninterrupted run goes on with e + 1. train_pipeline reads ``resume_state['epoch']``
    after ``model.resume_training(resume_state)``, so advancing it here makes the resumed run see
    the same data order. (A checkpoint inside an epoch still restarts that epoch, as in BasicSR.)
    """
    per_epoch = len(train_loader) if train_loader is not None else 0
    if per_epoch and resume_state['iter'] % per_epoch == 0:
        resume_state['epoch'] += 1


def apply() -> None:
    """Register the resume callback."""
    hooks.register('resume', next_epoch_on_resume, order=0)


FIX = Fix('resume_epoch', 'semantics', 'a checkpoint taken at the end of epoch e resumes epoch e again',
          ('basicsr.models.base_model:BaseModel.resume_training',), apply)
