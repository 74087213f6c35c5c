"""study.csv, study.md and the plots of a study, from its per-run results.

study.md has one row per arm and, per benchmark, the mean ± std PSNR over seeds, the difference
to full data and to the random subset of the same keep ratio, and that difference in units of the
seed noise (the larger of the two arms' std; ``n/a`` with one seed). Plots: PSNR against keep
ratio per benchmark (each method and band a line, random dashed, full a horizontal line), and the
training loss of each arm's first seed.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from srprune_basicsr.formats.atomic import atomic_write_text
from srprune_basicsr.study.arms import slug_of


def _summary(results: list[dict], benchmarks: list[str]) -> dict[str, dict]:
    """arm label -> {'record': first result, bench: (mean, std, n)}."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    first: dict[str, dict] = {}
    for r in results:
        first.setdefault(r['arm'], r)
        for bench in benchmarks:
            values[r['arm']][bench].append(r['benchmarks'][bench]['psnr'])
    return {arm: {'record': first[arm], **{b: (float(np.mean(v[b])), float(np.std(v[b])), len(v[b]))
                                          for b in benchmarks}} for arm, v in values.items()}


def study_csv(results: list[dict], benchmarks: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(['arm', 'method', 'keep_ratio', 'band', 'seed', 'benchmark', 'psnr', 'ssim'])
    for r in results:
        for bench in benchmarks:
            m = r['benchmarks'][bench]
            writer.writerow([r['arm'], r['method'], r['keep_ratio'], r['band'], r['seed'], bench,
                             f"{m['psnr']:.4f}", f"{m['ssim']:.4f}"])
    return buf.getvalue()


def _delta(a: tuple, b: tuple | None) -> str:
    if b is None:
        return ''
    diff = a[0] - b[0]
    noise = max(a[1], b[1])
    sigma = f', {diff / noise:+.1f}σ' if a[2] > 1 and b[2] > 1 and noise > 0 else ''
    return f'{diff:+.3f}{sigma}'


def study_md(results: list[dict], benchmarks: list[str]) -> str:
    summary = _summary(results, benchmarks)
    head = '| arm | ' + ' | '.join(f'{b} PSNR | Δ full | Δ random' for b in benchmarks) + ' |'
    lines = ['# Study', '', 'PSNR (Y, border = scale), mean ± std over seeds; Δ random: against the random '
             'subset of the same keep ratio (σ = the larger seed std of the two arms).', '', head,
             '|---' * (1 + 3 * len(benchmarks)) + '|']
    for arm, row in summary.items():
        rec = row['record']
        random_arm = summary.get(f"random@{rec['keep_ratio']:g}") if rec['method'] not in ('full', 'random') else None
        cells = []
        for b in benchmarks:
            mean, std, n = row[b]
            cells += [f'{mean:.3f} ± {std:.3f} (n={n})', _delta(row[b], summary['full'][b]) if arm != 'full' else '',
                      _delta(row[b], random_arm[b]) if random_arm else '']
        lines.append(f'| {arm} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def plot_ratio(results: list[dict], bench: str, path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    summary = _summary(results, [bench])
    lines: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for row in summary.values():
        rec = row['record']
        if rec['method'] in ('full', 'distilled'):
            continue
        name = rec['method'] + (f"+{rec['band']:g}" if rec['band'] else '')
        lines[name].append((rec['keep_ratio'], *row[bench][:2]))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, points in sorted(lines.items()):
        points.sort()
        x, y, e = zip(*points, strict=True)
        ax.errorbar(x, y, yerr=e, marker='o', capsize=3, label=name, linestyle='--' if name == 'random' else '-')
    if 'full' in summary:
        ax.axhline(summary['full'][bench][0], color='k', linewidth=1, label='full')
    for arm, row in summary.items():
        if row['record']['method'] == 'distilled':
            ax.axhline(row[bench][0], color='tab:purple', linestyle=':', label=arm)
    ax.set_xscale('log')
    ax.set_xlabel('keep ratio')
    ax.set_ylabel(f'{bench} PSNR (dB, Y)')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_training(root: Path, results: list[dict], path: Path) -> None:
    """Training loss (BasicSR's logged l_pix) of each arm's first seed."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    seen = set()
    for r in results:
        if r['arm'] in seen:
            continue
        seen.add(r['arm'])
        logs = sorted((root / 'experiments').glob(f"*_{slug_of(r['arm'])}_s{r['seed']}/train_*.log"))
        if not logs:
            continue
        points = re.findall(r'iter:\s*([\d,]+),.*?l_pix: ([0-9.e+-]+)', logs[-1].read_text())
        if points:
            ax.plot([int(i.replace(',', '')) for i, _ in points], [float(v) for _, v in points], label=r['arm'])
    ax.set_xlabel('iteration')
    ax.set_ylabel('training loss (l_pix)')
    ax.set_yscale('log')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(results: list[dict], root: Path, benchmarks: list[str]) -> dict[str, Path]:
    written = {'csv': root / 'study.csv', 'md': root / 'study.md', 'training': root / 'training_curves.png'}
    atomic_write_text(written['csv'], study_csv(results, benchmarks))
    atomic_write_text(written['md'], study_md(results, benchmarks))
    for bench in benchmarks:
        written[bench] = root / f'psnr_vs_ratio_{bench}.png'
        plot_ratio(results, bench, written[bench])
    plot_training(root, results, written['training'])
    return written
