"""study.csv, study_images.csv, study.md and the plots of a study, from its per-run results.

study.md has, per benchmark, one row per arm: the mean PSNR over seeds with its 95% interval, and
the difference to the random subset of the same keep ratio and to full data, paired by seed
(``study.statistics``): mean, 95% interval and the seeds it wins, plus how many benchmark images
improve against random. A closing section says how much pairing narrows the intervals against
treating the runs as unpaired. Plots: PSNR against keep ratio per benchmark (each method and band a
line with 95% error bars, random dashed, full a horizontal line), each method's paired gain over
random against keep ratio, the yardstick (``yardstick.png`` and its section: random against full data
at each ratio, with the std of the paired differences) and the training loss of each arm's first
seed. study_images.csv keeps every image's PSNR, so all of it can be recomputed.
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
from srprune_basicsr.study.statistics import Difference, images_improved, mean_interval, paired_difference


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
    writer.writerow(['arm', 'method', 'keep_ratio', 'band', 'seed', 'benchmark', 'psnr', 'ssim', 'steps',
                     'train_seconds'])
    for r in results:
        for bench in benchmarks:
            m = r['benchmarks'][bench]
            writer.writerow([r['arm'], r['method'], r['keep_ratio'], r['band'], r['seed'], bench,
                             f"{m['psnr']:.4f}", f"{m['ssim']:.4f}", r.get('steps', ''), r.get('train_seconds', '')])
    return buf.getvalue()


def study_images_csv(results: list[dict], benchmarks: list[str]) -> str:
    """Every benchmark image's PSNR/SSIM of every run (results recorded before per-image values have none)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(['arm', 'seed', 'benchmark', 'image', 'psnr', 'ssim'])
    for r in results:
        for bench in benchmarks:
            for image, (psnr, ssim) in sorted((r['benchmarks'][bench].get('per_image') or {}).items()):
                writer.writerow([r['arm'], r['seed'], bench, image, f'{psnr:.4f}', f'{ssim:.4f}'])
    return buf.getvalue()


def by_seed(results: list[dict], bench: str) -> dict[str, dict[int, float]]:
    """arm label -> seed -> PSNR on ``bench``."""
    table: dict[str, dict[int, float]] = defaultdict(dict)
    for r in results:
        table[r['arm']][int(r['seed'])] = float(r['benchmarks'][bench]['psnr'])
    return table


def by_seed_image(results: list[dict], bench: str) -> dict[str, dict[int, dict[str, float]]]:
    """arm label -> seed -> image -> PSNR on ``bench`` (runs without per-image values left out)."""
    table: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for r in results:
        per_image = r['benchmarks'][bench].get('per_image')
        if per_image:
            table[r['arm']][int(r['seed'])] = {image: float(v[0]) for image, v in per_image.items()}
    return table


def _budget(record: dict) -> str:
    """The label suffix of a run's budget in a study with several (``~1200it``), else ''."""
    return f"~{record['iters']}it" if record.get('iters') else ''


def random_reference(record: dict) -> str | None:
    """The label of the random arm an arm is compared with (same keep ratio and budget), None for full and random."""
    if record['method'] in ('full', 'random') or record.get('online'):
        return None
    return f"random@{record['keep_ratio']:g}{_budget(record)}"


def full_reference(record: dict) -> str:
    """The label of full data at the same budget."""
    return f'full{_budget(record)}'


def comparisons(results: list[dict], bench: str) -> dict[str, dict[str, Difference | None]]:
    """arm label -> {'random': Δ against random of its ratio, 'full': Δ against full}, paired by seed."""
    seeds, records = by_seed(results, bench), {r['arm']: r for r in results}
    out = {}
    for arm, record in records.items():
        reference, full = random_reference(record), full_reference(record)
        out[arm] = {'random': paired_difference(seeds[arm], seeds[reference]) if reference in seeds else None,
                    'full': paired_difference(seeds[arm], seeds[full]) if full in seeds and arm != full else None}
    return out


def _psnr_cell(values: dict[int, float]) -> str:
    mean, half = mean_interval(list(values.values()))
    return f'{mean:.3f}' + (f' ± {half:.3f}' if half is not None else '') + f' (n={len(values)})'


def _images_cell(arm: str, record: dict, images: dict) -> str:
    reference = random_reference(record)
    if reference not in images or arm not in images:
        return ''
    better, total = images_improved(images[arm], images[reference])
    return f'{better}/{total}' if total else ''


def pairing_gain(results: list[dict], benchmarks: list[str]) -> tuple[list[float], int]:
    """Ratios paired/unpaired of the 95% half-widths over every Δ random and Δ full with two or more seeds."""
    ratios = []
    for bench in benchmarks:
        for row in comparisons(results, bench).values():
            for diff in row.values():
                if diff and diff.half_width is not None and diff.unpaired_half_width:
                    ratios.append(diff.half_width / diff.unpaired_half_width)
    return ratios, len(ratios)


def yardstick(results: list[dict], bench: str) -> list[tuple[str, float, Difference, float | None]]:
    """Random at each keep ratio against full data of its budget: (label, ratio, Δ full, std of the paired differences).

    The yardstick of a regime: a rule can only show that it helps where random data of its size is
    measurably below full data, i.e. where this Δ full is negative beyond its interval.
    """
    seeds, rows = by_seed(results, bench), []
    for arm, record in {r['arm']: r for r in results if r['method'] == 'random'}.items():
        full = full_reference(record)
        if full not in seeds:
            continue
        diff = paired_difference(seeds[arm], seeds[full])
        if diff is None:  # no seed in common yet (shards still running)
            continue
        shared = sorted(set(seeds[arm]) & set(seeds[full]))
        spread = float(np.std([seeds[arm][s] - seeds[full][s] for s in shared], ddof=1)) if len(shared) > 1 else None
        rows.append((arm, float(record['keep_ratio']), diff, spread))
    iters = {r['arm']: int(r.get('iters') or 0) for r in results}
    return sorted(rows, key=lambda row: (iters[row[0]], row[1]))


def yardstick_md(results: list[dict], benchmarks: list[str]) -> list[str]:
    """The yardstick section of study.md: how far each random subset is below full data, against its noise."""
    if not any(yardstick(results, bench) for bench in benchmarks):
        return []
    lines = ['## Yardstick: random subsets against full data', '',
             'Δ full of random at each keep ratio (paired by seed, 95% interval, seeds won), the std of the '
             'per-seed differences, and the gap |Δ| over that std: where Δ full is clearly below 0, the amount of '
             'data matters and a selection rule has room to show a gain.', '']
    for bench in benchmarks:
        rows = yardstick(results, bench)
        if not rows:
            continue
        lines += [f'### {bench}', '', '| arm | Δ full | std of differences | gap / std |', '|---|---|---|---|']
        for arm, _, diff, spread in rows:
            ratio = f'{abs(diff.mean) / spread:.1f}' if spread else ''
            lines.append(f"| {arm} | {diff.text()} | {'' if spread is None else f'{spread:.3f}'} | {ratio} |")
        lines.append('')
    return lines


def plot_yardstick(results: list[dict], benchmarks: list[str], path: Path) -> bool:
    """Δ full of random against keep ratio, one line per benchmark, with 95% intervals (the regime's yardstick)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    largest = _budget({'iters': max((int(r.get('iters') or 0) for r in results), default=0)})  # '' for one budget
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    drawn = False
    for number, bench in enumerate(benchmarks):
        rows = [row for row in yardstick(results, bench) if '~' not in row[0] or row[0].endswith(largest)]
        if not rows:
            continue
        shift = 1 + 0.02 * (number - len(benchmarks) / 2)  # benchmarks side by side at each ratio
        ax.errorbar([row[1] * shift for row in rows], [row[2].mean for row in rows],
                    yerr=[row[2].half_width or 0.0 for row in rows], marker='o', capsize=3, label=bench)
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.axhline(0, color='k', linewidth=1, label='full data')
    at = f' at {largest[1:]}' if largest else ''
    _finish_difference_plot(fig, ax, 'keep ratio (random subset)', 'PSNR against full data (dB)',
                            f'yardstick{at}: random subsets', path)
    return True


def _finish_difference_plot(fig: object, ax: object, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    """Axes, title and file of a plot of paired differences against keep ratio (log scale)."""
    import matplotlib.pyplot as plt

    ax.set_xscale('log')
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f'{title}: mean paired difference and 95% interval over seeds', fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def iterations_md(results: list[dict], benchmarks: list[str]) -> list[str]:
    """With several budgets: each arm's PSNR at each budget, and the smallest budget reaching full data's best."""
    budgets = sorted({int(r.get('iters') or 0) for r in results})
    if len(budgets) < 2:
        return []
    lines = ['## Iterations', '', 'PSNR (mean over seeds ± 95% interval) at each iteration budget; "reaches full": '
             "the smallest budget whose mean is at least full data's mean at the largest budget.", '']
    for bench in benchmarks:
        seeds = by_seed(results, bench)
        bases = list(dict.fromkeys(arm.rsplit('~', 1)[0] for arm in seeds))
        full_best = mean_interval(list(seeds.get(f'full~{budgets[-1]}it', {}).values()) or [float('nan')])[0]
        lines += [f'### {bench}', '', '| arm | ' + ' | '.join(f'{b} it' for b in budgets) + ' | reaches full |',
                  '|---' * (len(budgets) + 2) + '|']
        for base in bases:
            cells, reached = [], ''
            for budget in budgets:
                values = seeds.get(f'{base}~{budget}it')
                if not values:
                    cells.append('')
                    continue
                cells.append(_psnr_cell(values))
                if not reached and mean_interval(list(values.values()))[0] >= full_best:
                    reached = f'{budget} it'
            lines.append(f'| {base} | ' + ' | '.join(cells) + f' | {reached or "no"} |')
        lines.append('')
    return lines


def _largest_full(results: list[dict]) -> str:
    budgets = sorted({int(r.get('iters') or 0) for r in results})
    return f'full~{budgets[-1]}it' if budgets[-1] else 'full'


def _seconds_cell(values: list[float]) -> str:
    return f'{np.median(values):.0f} [{min(values):.0f}-{max(values):.0f}]' if values else ''


def compute_md(results: list[dict], benchmarks: list[str]) -> list[str]:
    """Steps and wall-clock of every arm, and each online arm against the runs of fewer steps.

    An online arm covers the largest budget's schedule in fewer steps; it is a saving only if it beats
    full data (and the static subsets) trained for a comparable number of steps, so each online arm
    is compared, paired by seed, with every arm at a smaller budget and with full data at the largest.
    """
    timed = [r for r in results if r.get('steps')]
    if not timed:
        return []
    steps: dict[str, list[int]] = defaultdict(list)
    seconds: dict[str, list[float]] = defaultdict(list)
    for r in timed:
        steps[r['arm']].append(int(r['steps']))
        seconds[r['arm']].append(float(r['train_seconds']))
    full = _largest_full(results)
    seeds = {bench: by_seed(results, bench) for bench in benchmarks}
    lines = ['## Compute', '', 'Steps: the training iterations a run took (an online arm takes fewer than its '
             "budget's schedule); wall-clock: seconds of the training process, median [min-max] over seeds (runs "
             f'that shared the cores are noisy). Δ {full}: paired by seed.', '',
             '| arm | steps | wall-clock (s) | ' + ' | '.join(f'Δ {full} {b}' for b in benchmarks) + ' |',
             '|---' * (3 + len(benchmarks)) + '|']
    for arm in steps:
        diffs = [paired_difference(seeds[b][arm], seeds[b][full]) if full in seeds[b] and arm != full else None
                 for b in benchmarks]
        lines.append(f'| {arm} | {np.mean(steps[arm]):.0f} | {_seconds_cell(seconds[arm])} | '
                     + ' | '.join(d.text() if d else '' for d in diffs) + ' |')
    lines.append('')
    online = [arm for arm in steps if {r['arm']: r for r in timed}[arm].get('online')]
    budgets = sorted({int(r.get('iters') or 0) for r in results})
    shorter = [arm for arm in steps if arm not in online and budgets[-1] and not arm.endswith(f'~{budgets[-1]}it')]
    if online:
        lines += ['### Online arms against runs of fewer steps', '',
                  '| online arm | against | its steps | ' + ' | '.join(f'Δ {b}' for b in benchmarks) + ' |',
                  '|---' * (3 + len(benchmarks)) + '|']
        for arm in online:
            for other in [*shorter, full]:
                diffs = [paired_difference(seeds[b][arm], seeds[b][other]) if other in seeds[b] else None
                         for b in benchmarks]
                lines.append(f'| {arm} | {other} | {np.mean(steps.get(other, [0])):.0f} | '
                             + ' | '.join(d.text() if d else '' for d in diffs) + ' |')
        lines.append('')
    return lines


def plot_compute(results: list[dict], bench: str, path: Path) -> bool:
    """PSNR against the steps taken and against wall-clock, one point per arm (mean, 95% interval)."""
    timed = [r for r in results if r.get('steps')]
    if not any(r.get('online') for r in timed) and len({r.get('iters') for r in timed}) < 2:
        return False
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    seeds = by_seed(timed, bench)
    records = {r['arm']: r for r in timed}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110, sharey=True)
    palette = plt.get_cmap('tab20')
    for number, (arm, record) in enumerate(records.items()):
        runs = [r for r in timed if r['arm'] == arm]
        mean, half = mean_interval(list(seeds[arm].values()))
        style = dict(marker='*' if record.get('online') else 'o', markersize=10 if record.get('online') else 6,
                     capsize=3, linestyle='none', label=arm, color=palette(number % 20))
        for ax, key in zip(axes, ('steps', 'train_seconds'), strict=True):
            ax.errorbar([float(np.mean([r[key] for r in runs]))], [mean], yerr=[half or 0.0], **style)
    axes[0].set_xlabel('training steps taken')
    axes[1].set_xlabel('training wall-clock (s), mean over seeds')
    axes[0].set_ylabel(f'{bench} PSNR (dB, Y), mean and 95% interval')
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def study_md(results: list[dict], benchmarks: list[str]) -> str:
    records = {r['arm']: r for r in results}
    lines = ['# Study', '',
             'PSNR (Y, border = scale): mean over seeds ± the 95% interval of that mean. Δ random (against the '
             'random subset of the same keep ratio) and Δ full: the mean of the per-seed differences (the same '
             'seed starts both runs from the same weights), its 95% Student-t interval over seeds, and the seeds '
             'it wins. Images: benchmark images whose PSNR, averaged over seeds, beats random (a description of '
             'where a gain comes from, not an interval: the run is the unit of replication).', '']
    for bench in benchmarks:
        seeds, images, diffs = by_seed(results, bench), by_seed_image(results, bench), comparisons(results, bench)
        lines += [f'## {bench}', '', '| arm | PSNR | Δ random | Δ full | images better than random |',
                  '|---|---|---|---|---|']
        for arm, record in records.items():
            cells = [_psnr_cell(seeds[arm]), diffs[arm]['random'].text() if diffs[arm]['random'] else '',
                     diffs[arm]['full'].text() if diffs[arm]['full'] else '', _images_cell(arm, record, images)]
            lines.append(f'| {arm} | ' + ' | '.join(cells) + ' |')
        lines.append('')
    lines += yardstick_md(results, benchmarks)
    lines += iterations_md(results, benchmarks)
    lines += compute_md(results, benchmarks)
    ratios, count = pairing_gain(results, benchmarks)
    lines += ['## Pairing by seed', '']
    if ratios:
        lines.append(f'Paired 95% intervals are {np.median(ratios):.2f}x the width of the unpaired (Welch) ones, '
                     f'median over {count} differences (range {min(ratios):.2f}-{max(ratios):.2f}): below 1, '
                     'pairing by seed removes part of the seed noise.')
    else:
        lines.append('No difference has two or more seeds: no intervals yet.')
    return '\n'.join(lines) + '\n'


def plot_ratio(results: list[dict], bench: str, path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    summary = _summary(results, [bench])
    seeds = by_seed(results, bench)
    lines: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for arm, row in summary.items():
        rec = row['record']
        if rec['method'] in ('full', 'distilled') or rec.get('online'):
            continue
        name = rec['method'] + (f"+{rec['band']:g}" if rec['band'] else '') + _budget(rec)
        mean, half = mean_interval(list(seeds[arm].values()))
        lines[name].append((rec['keep_ratio'], mean, half or 0.0))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, points in sorted(lines.items()):
        points.sort()
        x, y, e = zip(*points, strict=True)
        ax.errorbar(x, y, yerr=e, marker='o', capsize=3, label=name, linestyle='--' if name == 'random' else '-')
    for arm, row in summary.items():
        if row['record']['method'] == 'full':
            ax.axhline(row[bench][0], color='k', linewidth=1, label=arm)
    for arm, row in summary.items():
        if row['record']['method'] == 'distilled':
            ax.axhline(row[bench][0], color='tab:purple', linestyle=':', label=arm)
        if row['record'].get('online'):
            ax.axhline(row[bench][0], color='tab:red', linestyle='-.', linewidth=1, label=f'{arm} (online, whole set)')
    ax.set_xscale('log')
    ax.set_xlabel('keep ratio')
    ax.set_ylabel(f'{bench} PSNR (dB, Y), mean and 95% interval over seeds')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_gain(results: list[dict], method: str, benchmarks: list[str], path: Path) -> bool:
    """One method's paired gain over random of the same size against keep ratio, one line per band and benchmark."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    drawn = False
    for number, bench in enumerate(benchmarks):
        points: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        records = {r['arm']: r for r in results if r['method'] == method}
        for arm, diff in comparisons(results, bench).items():
            if arm in records and diff['random'] is not None:
                band = records[arm]['band']
                points[f'{bench}' + (f' band +{band:g}' if band else '') + _budget(records[arm])].append(
                    (records[arm]['keep_ratio'], diff['random'].mean, diff['random'].half_width or 0.0))
        for name, series in sorted(points.items()):
            series.sort()
            x, y, e = zip(*series, strict=True)
            shift = 1 + 0.02 * (number - len(benchmarks) / 2)  # benchmarks side by side at each ratio
            ax.errorbar([v * shift for v in x], y, yerr=e, marker='o', capsize=3, label=name)
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.axhline(0, color='k', linewidth=1)
    _finish_difference_plot(fig, ax, 'keep ratio', 'PSNR gain over random of the same size (dB)', method, path)
    return True


def plot_iterations(results: list[dict], bench: str, path: Path) -> None:
    """PSNR against the iteration budget, one line per arm (mean and 95% interval over seeds): the compute axis."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    seeds, records = by_seed(results, bench), {r['arm']: r for r in results}
    lines: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for arm, record in records.items():
        mean, half = mean_interval(list(seeds[arm].values()))
        lines[arm.rsplit('~', 1)[0]].append((int(record['iters']), mean, half or 0.0))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, points in sorted(lines.items()):
        points.sort()
        x, y, e = zip(*points, strict=True)
        style = {'color': 'k'} if name == 'full' else {'linestyle': '--'} if name.startswith('random') else {}
        ax.errorbar(x, y, yerr=e, marker='o', capsize=3, label=name, **style)
    ax.set_xlabel('training iterations')
    ax.set_ylabel(f'{bench} PSNR (dB, Y), mean and 95% interval over seeds')
    ax.set_title('does a subset reach full data in fewer iterations?', fontsize=10)
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
    written = {'csv': root / 'study.csv', 'images': root / 'study_images.csv', 'md': root / 'study.md',
               'training': root / 'training_curves.png'}
    atomic_write_text(written['csv'], study_csv(results, benchmarks))
    atomic_write_text(written['images'], study_images_csv(results, benchmarks))
    atomic_write_text(written['md'], study_md(results, benchmarks))
    for bench in benchmarks:
        written[bench] = root / f'psnr_vs_ratio_{bench}.png'
        plot_ratio(results, bench, written[bench])
    if len({r.get('iters') for r in results}) > 1:
        for bench in benchmarks:
            written[f'iters_{bench}'] = root / f'psnr_vs_iters_{bench}.png'
            plot_iterations(results, bench, written[f'iters_{bench}'])
    for bench in benchmarks:
        if plot_compute(results, bench, root / f'psnr_vs_steps_{bench}.png'):
            written[f'compute_{bench}'] = root / f'psnr_vs_steps_{bench}.png'
    if plot_yardstick(results, benchmarks, root / 'yardstick.png'):
        written['yardstick'] = root / 'yardstick.png'
    for method in sorted({r['method'] for r in results} - {'full', 'random'}):
        path = root / f'gain_vs_random_{method}.png'
        if plot_gain(results, method, benchmarks, path):
            written[f'gain_{method}'] = path
    plot_training(root, results, written['training'])
    return written
