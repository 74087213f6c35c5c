"""``srprune report``: what a score file says, as a histogram, a sample grid and a summary.

Written next to each other in ``--out``: ``score_hist.png`` (the kept samples shaded when a keep
list is given), ``samples.png`` (the 16 hardest, 16 median and 16 easiest GT sub-images) and
``summary.md`` (counts and quantiles, and the rank correlation with another scorer if asked).
Dynamic-uncertainty scores also get ``trajectories.png``: the histogram beside the PSNR over
training of the most and the least uncertain samples (read from the recorded history).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from srprune_basicsr.formats.atomic import atomic_output_dir  # noqa: E402
from srprune_basicsr.formats.history import History  # noqa: E402
from srprune_basicsr.formats.keep import read_keep_list  # noqa: E402
from srprune_basicsr.formats.keys import is_lmdb, key_bytes  # noqa: E402
from srprune_basicsr.formats.lmdb import open_source, read_meta_info  # noqa: E402
from srprune_basicsr.formats.scores import Scores, match_dataset, read_scores  # noqa: E402

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


def rank_correlation(a: Scores, b: Scores) -> float:
    """Spearman's rank correlation of two scorers over the same keys."""
    return float(spearmanr(a.values, match_dataset(b, a.keys)).statistic)


def plot_histogram(scores: Scores, kept: set[str] | None, path: Path, bins: int = 60) -> None:
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    draw_histogram(ax, scores, kept, bins)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def draw_histogram(ax: plt.Axes, scores: Scores, kept: set[str] | None, bins: int = 60) -> None:
    values = scores.values
    skewed = (values > 0).all() and values.max() > 20 * np.median(values)
    if skewed:  # loss values span decades: log-spaced bins show the bulk and the tail
        edges = np.geomspace(values.min(), values.max(), bins + 1)
        ax.set_xscale('log')
    else:
        edges = np.histogram_bin_edges(values, bins=bins)
    ax.hist(values, bins=edges, color='0.7', label=f'all ({len(scores)})')
    if kept is not None:
        mask = np.array([k in kept for k in scores.keys])
        ax.hist(values[mask], bins=edges, color='tab:blue', alpha=0.8, label=f'kept ({mask.sum()})')
    method = scores.meta.get('method', 'unknown method')
    meaning = 'more uncertain' if method == 'dynamic_uncertainty' else 'harder'
    ax.set_xlabel(f'score ({method}; larger = {meaning})')
    ax.set_ylabel('samples')
    ax.legend()
    ax.set_title(scores.path.name if scores.path else 'scores')


def _load_gt(lmdb_path: Path, keys: Sequence[str]) -> list[np.ndarray]:
    with open_source(lmdb_path) as env, env.begin() as txn:
        images = []
        for key in keys:
            data = txn.get(key_bytes(key))
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
            images.append(np.zeros((8, 8, 3), np.uint8) if img is None else img[:, :, ::-1])
        return images


def plot_samples(scores: Scores, gt_lmdb: Path, path: Path, per_row: int = 16) -> None:
    """Rows of the hardest, median and easiest GT sub-images with their scores."""
    order = np.argsort(-scores.values, kind='stable')
    mid = len(order) // 2 - per_row // 2
    rows = {'hardest': order[:per_row], 'median': order[max(0, mid):max(0, mid) + per_row],
            'easiest': order[::-1][:per_row]}
    fig, axes = plt.subplots(3, per_row, figsize=(per_row * 1.1, 3 * 1.35), dpi=110, squeeze=False)
    for r, (label, idx) in enumerate(rows.items()):
        images = _load_gt(gt_lmdb, [scores.keys[i] for i in idx])
        for c in range(per_row):
            ax = axes[r][c]
            ax.axis('off')
            if c < len(idx):
                ax.imshow(images[c])
                ax.set_title(f'{scores.values[idx[c]]:.3g}', fontsize=6)
        axes[r][0].text(-0.1, 0.5, label, transform=axes[r][0].transAxes, ha='right', va='center', fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_trajectories(scores: Scores, history: History, kept: set[str] | None, path: Path, count: int = 6) -> None:
    """The score histogram beside the PSNR over training of the most and the least uncertain samples."""
    order = np.argsort(-match_dataset(scores, history.keys), kind='stable')
    iters = np.asarray(history.snapshot_iters)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4), dpi=110)
    draw_histogram(axes[0], scores, kept)
    for ax, label, columns in ((axes[1], 'most uncertain', order[:count]), (axes[2], 'least uncertain',
                                                                             order[::-1][:count])):
        for column in columns:
            values, seen = history.rows(int(column), int(column) + 1)
            mask = seen[:, 0]
            ax.plot(iters[mask], values[mask, 0], marker='.', label=history.keys[column])
        ax.set_title(f'{label}: PSNR over training')
        ax.set_xlabel('iteration')
        ax.set_ylabel('PSNR (dB)')
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def summary(scores: Scores, kept: set[str] | None, correlation: tuple[Path, float] | None) -> str:
    q = np.quantile(scores.values, QUANTILES)
    lines = [f'# Scores: {scores.path}', '', f"- method: {scores.meta.get('method', '?')}",
             f'- samples: {len(scores)}']
    if kept is not None:
        lines.append(f'- kept: {len(kept)} ({len(kept) / len(scores):.1%})')
    if correlation:
        lines.append(f'- Spearman rank correlation with {correlation[0]}: {correlation[1]:.4f}')
    lines += ['', '| quantile | ' + ' | '.join(f'{p:g}' for p in QUANTILES) + ' |',
              '|---' * (len(QUANTILES) + 1) + '|', '| score | ' + ' | '.join(f'{v:.4g}' for v in q) + ' |', '']
    return '\n'.join(lines)


def kept_keys(scores: Scores, keep: str | os.PathLike | None) -> set[str] | None:
    """The keys of a keep list, all of which must be scored."""
    if not keep:
        return None
    kept = read_keep_list(keep)
    unknown = sorted(set(kept) - set(scores.keys))
    if unknown:
        raise ValueError(f'{keep}: {len(unknown)} kept key(s) are not in {scores.path}, e.g. {unknown[:5]}')
    return set(kept)


def sample_source(scores: Scores, gt_lmdb: str | os.PathLike | None) -> Path | None:
    """The GT LMDB of the sample grid (given, else the one scores.json names); it must hold every scored key."""
    gt = gt_lmdb or (scores.meta.get('dataset') or {}).get('dataroot_gt')
    if not gt or not (is_lmdb(gt) and Path(gt).is_dir()):
        if gt_lmdb:
            raise ValueError(f'--gt-lmdb {gt_lmdb}: not an LMDB folder')
        return None
    missing = sorted(set(scores.keys) - {e.key for e in read_meta_info(gt)})
    if missing:
        raise ValueError(f'{gt}: {len(missing)} scored key(s) are not in this GT LMDB (another dataset?), e.g. '
                         f'{missing[:5]}')
    return Path(gt)


def write_report(scores_path: str | os.PathLike, out: str | os.PathLike, keep: str | os.PathLike | None = None,
                 gt_lmdb: str | os.PathLike | None = None, compare: str | os.PathLike | None = None,
                 overwrite: bool = False) -> tuple[dict[str, Path], float | None]:
    """Write the report folder ``out``; returns (name -> path, Spearman correlation with ``compare``).

    ``gt_lmdb`` (for the sample grid) defaults to the GT LMDB recorded in scores.json; without one
    the grid is left out and ``written`` says why (key ``samples_skipped``). The folder is written
    atomically and, like every output, replaced only with ``overwrite`` (see ``formats.atomic``).
    """
    scores = read_scores(scores_path)
    out = Path(out)
    kept = kept_keys(scores, keep)
    gt = sample_source(scores, gt_lmdb)
    history = scores.meta.get('history')
    correlation = (Path(compare), rank_correlation(scores, read_scores(compare))) if compare else None
    written: dict[str, Path] = {}
    with atomic_output_dir(out, overwrite, inputs=[scores_path, keep, gt, compare], kind='report') as tmp:
        plot_histogram(scores, kept, tmp / 'score_hist.png')
        written['histogram'] = out / 'score_hist.png'
        if gt is not None:
            plot_samples(scores, gt, tmp / 'samples.png')
            written['samples'] = out / 'samples.png'
        else:
            written['samples_skipped'] = Path('no GT LMDB (give --gt-lmdb)')
        if history and Path(history).is_dir():
            plot_trajectories(scores, History.open(history), kept, tmp / 'trajectories.png')
            written['trajectories'] = out / 'trajectories.png'
        (tmp / 'summary.md').write_text(summary(scores, kept, correlation))
        written['summary'] = out / 'summary.md'
    return written, correlation[1] if correlation else None
