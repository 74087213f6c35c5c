"""Dynamic uncertainty (He et al. 2023) for SR: the spread of each sample's PSNR over training.

A training run with ``prune_tracking:`` records every sample's PSNR at each snapshot into a
history (``formats.history``). The score of a sample is the paper's U = mean over sliding windows
k of std(PSNR[k : k+J]) (population std), with unseen entries left out of a window rather than
counted as 0, and windows with fewer than two measurements skipped. Larger U = more uncertain =
kept first by ``select --order hardest``.

As a registered scorer (``method: dynamic_uncertainty``, ``history:`` a prune_tracking folder,
``score: window: J``) it scores the option file's dataset from that history, so it plugs into
``prune: score:`` and study methods like any other scorer; ``srprune score --from-history``
writes the same scores without a dataset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from srprune_basicsr.formats.history import HEADER, History, keys_digest
from srprune_basicsr.formats.scores import write_scores
from srprune_basicsr.scoring.base import Scorer, ScorerContext, register_scorer

METHOD = 'dynamic_uncertainty'


def dynamic_uncertainty(values: np.ndarray, seen: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over sliding windows of the masked population std; returns (scores, windows counted).

    ``values``/``seen`` are [T, n]. A window contributes for a sample when it holds at least two of
    its measurements; a sample with no such window gets NaN and a count of 0.
    """
    t = values.shape[0]
    if window < 2:
        raise ValueError(f'window must be at least 2 snapshots, got {window}')
    if window > t:
        raise ValueError(f'window {window} is larger than the {t} snapshots taken')
    mask = seen.astype(np.float64)
    counts_all = mask.sum(0)
    centre = np.divide((values * mask).sum(0), counts_all, out=np.zeros(values.shape[1]), where=counts_all > 0)
    x = (values - centre) * mask  # centred: the running sums below do not lose the small spread
    zero = np.zeros((1, values.shape[1]))
    s0 = np.concatenate([zero, np.cumsum(mask, 0)])
    s1 = np.concatenate([zero, np.cumsum(x, 0)])
    s2 = np.concatenate([zero, np.cumsum(x * x, 0)])
    n = s0[window:] - s0[:-window]
    mean = np.divide(s1[window:] - s1[:-window], n, out=np.zeros_like(n), where=n > 0)
    var = np.divide(s2[window:] - s2[:-window], n, out=np.zeros_like(n), where=n > 0) - mean * mean
    std = np.sqrt(np.clip(var, 0, None))
    valid = n >= 2
    counted = valid.sum(0)
    total = np.where(valid, std, 0).sum(0)
    scores = np.divide(total, counted, out=np.full(values.shape[1], np.nan), where=counted > 0)
    return scores, counted


def score_history(history: History, window: int, chunk: int = 65536,
                  progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """dynamic_uncertainty over the whole history, ``chunk`` samples at a time (bounded memory)."""
    if window > history.count:
        raise ValueError(f'{history.root / HEADER}: window {window} is larger than the {history.count} '
                         'snapshots taken; lower the window or record more snapshots')
    n = len(history.keys)
    scores, counted = np.empty(n), np.empty(n, dtype=np.int64)
    for start in tqdm(range(0, n, chunk), desc='dynamic uncertainty', unit='chunk', disable=not progress,
                      leave=False):
        stop = min(start + chunk, n)
        scores[start:stop], counted[start:stop] = dynamic_uncertainty(*history.rows(start, stop), window)
    return scores, counted


def checked_scores(history: History, window: int, progress: bool = True) -> np.ndarray:
    """Every sample's uncertainty; samples never measured twice in a window are an error naming them."""
    scores, counted = score_history(history, window, progress=progress)
    missing = [history.keys[i] for i in np.flatnonzero(counted == 0)]
    if missing:
        raise ValueError(f'{history.root}: {len(missing)} sample(s) have no window of {window} snapshots with two '
                         f'or more measurements, e.g. {missing[:5]}; use a longer run or a smaller window')
    return scores


def history_parameters(history: History, window: int) -> dict[str, Any]:
    return {'window': window, **{k: history.meta[k] for k in ('view', 'every', 'crop') if k in history.meta}}


def write_uncertainty_scores(history: History, window: int, out: str | os.PathLike, progress: bool = True,
                             overwrite: bool = False, **provenance: Any) -> Path:
    """Score the history and write scores.csv + scores.json (apart from the history folder)."""
    scores = checked_scores(history, window, progress)
    return write_scores(out, history.keys, scores, method=METHOD, parameters=history_parameters(history, window),
                        overwrite=overwrite, inputs=[history.root], history=str(history.root.resolve()),
                        snapshots=history.count,
                        snapshot_iters=history.snapshot_iters, **provenance)


@register_scorer(METHOD)
class DynamicUncertaintyScorer(Scorer):
    """Scores read from a recorded PSNR history (no image is read); the history must hold the dataset's keys."""

    reads_images = False
    options = frozenset({'window'})

    def __init__(self, history: History, window: int, keys: list[str]) -> None:
        if history.keys != keys:
            raise ValueError(f'{history.root / HEADER}: recorded on another dataset ({len(history.keys)} samples, keys '
                             f'sha256 {keys_digest(history.keys)[:12]}) than the one scored ({len(keys)} samples, '
                             f'{keys_digest(keys)[:12]})')
        self.history, self.window = history, window
        self.values = checked_scores(history, window, progress=False)

    @classmethod
    def from_options(cls, context: ScorerContext) -> DynamicUncertaintyScorer:
        path = context.opt.get('history')
        if not path:
            raise ValueError('method dynamic_uncertainty needs history: (a prune_tracking folder, or its experiment '
                             'folder)')
        history = History.open(path)
        window = context.score.get('window', history.meta.get('window', 10))
        return cls(history, int(window), context.keys)

    def provenance(self) -> dict:
        return {'history': str(self.history.root.resolve()), 'snapshots': self.history.count,
                'snapshot_iters': self.history.snapshot_iters}

    def parameters(self, score: dict) -> dict:
        return {**history_parameters(self.history, self.window), **score}

    def score_batch(self, lq: None, gt: None, indices: np.ndarray) -> np.ndarray:
        return self.values[indices]
