"""How an online-pruned run maps onto the full run: epochs, steps, and the schedule's iterations.

The online run covers the epochs the full run would cover (BasicSR's ``train_pipeline`` counts
them from 0: ``total_epochs`` of ``per_epoch`` iterations, the last one cut where ``total_iter``
ends, and an epoch after it with nothing left, which takes no step). An epoch that keeps m samples takes the
steps its loader gives (``ceil(m * enlarge / world) // batch``), scaled in the last epoch by the
share of it the full run trains. Step t of an epoch of s steps stands for the full run's iteration
``start + floor(t * span / s)``: the LR schedule (milestones, cosine periods, warm-up) is stepped up
to that iteration, so it is stretched onto the steps actually taken and ends where the full run's ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class EpochPlan:
    """One epoch of the online run."""

    epoch: int        # BasicSR's epoch number (train_pipeline counts from 0)
    kept: int         # samples drawn from
    steps: int        # iterations this epoch takes
    start: int        # the full run's iteration count before this epoch
    span: int         # the full run's iterations in this epoch

    def virtual_iter(self, step: int) -> int:
        """The full run's iteration that step ``step`` (1..steps) of this epoch stands for."""
        return self.start + (min(step, self.steps) * self.span) // self.steps


@dataclass(frozen=True)
class RunShape:
    """What the full run would be: its iterations per epoch, epochs and total; the loader's batch and ranks."""

    per_epoch: int
    total_iter: int
    total_epochs: int
    batch: int
    world: int
    enlarge: int

    def samples_per_rank(self, kept: int) -> int:
        """EnlargedSampler's per-rank count for a set of ``kept`` samples."""
        return math.ceil(kept * self.enlarge / self.world)

    def loader_steps(self, kept: int) -> int:
        return self.samples_per_rank(kept) // self.batch

    def pruning(self, epoch: int, anneal: float) -> bool:
        """Epochs in the first ``anneal`` share of the run may prune; the rest use all data."""
        return epoch < anneal * self.total_epochs

    def plan(self, epoch: int, kept: int) -> EpochPlan:
        start = epoch * self.per_epoch
        span = max(0, min(self.per_epoch, self.total_iter - start))
        steps = self.loader_steps(kept)
        if span < self.per_epoch:
            steps = max(1, round(steps * span / self.per_epoch)) if span else 0
        return EpochPlan(epoch, kept, steps, start, span)
