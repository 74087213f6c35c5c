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
from srprune_basicsr.study.statistics import (
    Difference,
    holm,
    images_improved,
    mean_interval,
    paired_difference,
    paired_p_value,
)

CONVERGED_GAIN = 0.02   # dB: full data converged at B when it gains less than this from 0.75 B to B ...
CONVERGED_UPPER = 0.03  # ... and the paired interval's upper bound is below this
WITHIN_FULL = 0.05      # dB: an arm reaches full data at B when its Δ full's lower bound is at least -WITHIN_FULL
FAMILY_LEVEL = 0.05     # family-wise error of the Holm-adjusted comparisons


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


def without_budget(arm: str) -> str:
    """An arm label without its budget (``random@0.5~600it`` -> ``random@0.5``): one line per arm across budgets."""
    return arm.rsplit('~', 1)[0]


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
    drawn, ticks = False, []
    for number, bench in enumerate(benchmarks):
        rows = [row for row in yardstick(results, bench) if '~' not in row[0] or row[0].endswith(largest)]
        if not rows:
            continue
        ticks += [row[1] for row in rows]
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
                            f'yardstick{at}: random subsets', path, ticks)
    return True


def _tick_text(value: float) -> str:
    """A log-axis tick label that stays short: 0.25, 0.18 (for 0.180556), 2k, 16k."""
    return f'{value / 1000:g}k' if value >= 1000 else f'{value:.2g}'


def label_log_axis(ax: object, values: list[float]) -> None:
    """Ticks of a log x axis at the values plotted, in plain numbers, and no minor labels.

    Matplotlib's default log ticks print minor labels such as ``3x10^-2`` next to ``2x10^-2``, which
    overlap on a short axis; the keep ratios or budgets themselves are what a reader looks up.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale('log')
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(values))))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _tick_text(value)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _finish_difference_plot(fig: object, ax: object, xlabel: str, ylabel: str, title: str, path: Path,
                            ticks: list[float]) -> None:
    """Axes, title and file of a plot of paired differences against keep ratio (log scale, ticks at ``ticks``)."""
    import matplotlib.pyplot as plt

    label_log_axis(ax, ticks)
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
        bases = list(dict.fromkeys(without_budget(arm) for arm in seeds))
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


def criterion_benchmark(benchmarks: list[str]) -> str:
    """The benchmark the converged budget is decided on: BSD100 (100 images, the narrowest intervals) if present."""
    return 'BSD100' if 'BSD100' in benchmarks else benchmarks[-1]


def _full_by_budget(results: list[dict]) -> dict[int, str]:
    """Budget -> label of full data's runs at it (studies with several budgets)."""
    return {int(r['iters']): r['arm'] for r in results if r['method'] == 'full' and r.get('iters')}


def budget_gains(results: list[dict], bench: str) -> list[tuple[int, int, Difference]]:
    """(smaller, budget, gain of full data from smaller to budget) for every budget with full data at 0.75 of it.

    Paired by seed: the same seed starts both budgets from the same weights.
    """
    seeds, fulls = by_seed(results, bench), _full_by_budget(results)
    rows = []
    for budget, label in sorted(fulls.items()):
        smaller = fulls.get(int(round(0.75 * budget))) if 0.75 * budget == int(0.75 * budget) else None
        diff = paired_difference(seeds[label], seeds[smaller]) if smaller else None
        if diff is not None:
            rows.append((int(0.75 * budget), budget, diff))
    return rows


def is_converged(diff: Difference) -> bool:
    """Full data's gain from 0.75 B to B is below CONVERGED_GAIN, its interval's upper bound below CONVERGED_UPPER."""
    return diff.mean < CONVERGED_GAIN and diff.high is not None and diff.high < CONVERGED_UPPER


def converged_budget(results: list[dict], benchmarks: list[str]) -> int | None:
    """The smallest budget B at which full data has converged on the criterion benchmark (None: none yet)."""
    passing = [budget for _, budget, diff in budget_gains(results, criterion_benchmark(benchmarks))
               if is_converged(diff)]
    return min(passing) if passing else None


def convergence_md(results: list[dict], benchmarks: list[str], reference: int | None = None) -> list[str]:
    """The Convergence section: full data at each budget, its gain from 0.75 B to B, and the converged budget."""
    fulls = _full_by_budget(results)
    if len(fulls) < 2:
        return []
    bench = criterion_benchmark(benchmarks)
    found = converged_budget(results, benchmarks)
    lines = ['## Convergence: full data against its budget', '',
             'Full data at each budget (its own cosine schedule), mean over seeds ± 95% interval, and its gain from '
             '0.75 B to B paired by seed. B is converged when that gain on '
             f'{bench} is below {CONVERGED_GAIN} dB and its interval\'s upper bound below {CONVERGED_UPPER} dB.', '',
             '| budget | ' + ' | '.join(benchmarks) + ' |', '|---' * (1 + len(benchmarks)) + '|']
    for budget, label in sorted(fulls.items()):
        lines.append(f'| {budget} | ' + ' | '.join(_psnr_cell(by_seed(results, b)[label]) for b in benchmarks) + ' |')
    gains = {b: {(small, big): diff for small, big, diff in budget_gains(results, b)} for b in benchmarks}
    if gains[bench]:
        lines += ['', '| gain | ' + ' | '.join(benchmarks) + f' | converged ({bench}) |',
                  '|---' * (2 + len(benchmarks)) + '|']
        for small, big in gains[bench]:
            cells = [gains[b][(small, big)].text() if (small, big) in gains[b] else '' for b in benchmarks]
            verdict = 'yes' if is_converged(gains[bench][(small, big)]) else 'no'
            lines.append(f'| {small} → {big} | ' + ' | '.join(cells) + f' | {verdict} |')
    lines += ['', f'Converged budget B = {found} iterations.' if found else
              'No budget run so far meets the criterion: full data has not converged within these budgets.']
    if reference and reference != found:
        lines.append(f'The comparisons below are at B = {reference} iterations, which the study fixes '
                     '(budget:reference_iter).')
    return lines + ['']


def reference_budget(results: list[dict], benchmarks: list[str], reference: int | None = None) -> int:
    """B for the comparisons against full data: ``reference`` where the study fixes it, else the converged
    budget, else the largest."""
    return reference or converged_budget(results, benchmarks) or max(int(r.get('iters') or 0) for r in results)


def fewest_steps_md(results: list[dict], benchmarks: list[str], reference: int | None = None) -> list[str]:
    """Per arm, the fewest steps at which it is within WITHIN_FULL dB of full data at B on every benchmark.

    "Within" means the lower bound of Δ full@B (paired by seed) is at least -WITHIN_FULL on each benchmark:
    a claim the interval supports, not a mean that happens to be close. Steps and wall-clock saved are
    against full data's run at B.
    """
    timed = [r for r in results if r.get('steps')]
    budget = reference_budget(results, benchmarks, reference)
    full = f'full~{budget}it' if budget else 'full'
    if not timed or not any(r['arm'] == full for r in timed):
        return []
    seeds = {b: by_seed(results, b) for b in benchmarks}
    runs: dict[str, list[dict]] = defaultdict(list)
    for r in timed:
        runs[r['arm']].append(r)
    full_steps = float(np.mean([r['steps'] for r in runs[full]]))
    full_seconds = float(np.median([r['train_seconds'] for r in runs[full]]))
    lines = [f'### Fewest steps to full data at {budget} iterations', '',
             f'For each arm, the fewest steps (over its budgets) at which Δ {full} has a lower bound of at least '
             f'−{WITHIN_FULL} dB on every benchmark; saved: against full data\'s {full_steps:.0f} steps and '
             f'{full_seconds:.0f} s (median wall-clock).', '',
             '| arm | fewest steps | share of B | steps saved | wall-clock saved (s) | '
             + ' | '.join(f'Δ {full} {b}' for b in benchmarks) + ' |', '|---' * (5 + len(benchmarks)) + '|']
    groups: dict[str, list[str]] = defaultdict(list)
    for arm in runs:
        groups[without_budget(arm)].append(arm)
    for name, arms in groups.items():
        reached = []
        for arm in arms:
            diffs = [paired_difference(seeds[b][arm], seeds[b][full]) if arm != full else None for b in benchmarks]
            ok = arm == full or all(d is not None and d.low is not None and d.low >= -WITHIN_FULL for d in diffs)
            if ok:
                reached.append((float(np.mean([r['steps'] for r in runs[arm]])), arm, diffs))
        if not reached:
            lines.append(f'| {name} | not reached | | | | ' + ' | '.join('' for _ in benchmarks) + ' |')
            continue
        steps, arm, diffs = min(reached)
        seconds = float(np.median([r['train_seconds'] for r in runs[arm]]))
        lines.append(f'| {name} | {steps:.0f} | {steps / full_steps:.0%} | {full_steps - steps:.0f} | '
                     f'{full_seconds - seconds:.0f} | ' + ' | '.join(d.text() if d else '' for d in diffs) + ' |')
    lines.append('')
    return lines


def multiplicity_md(results: list[dict], benchmarks: list[str], reference: int | None = None) -> list[str]:
    """Holm's adjustment over the study's family: every Δ random and Δ full at the reference budget and benchmark.

    The per-comparison intervals of the tables are not adjusted; with many arms some interval excludes 0
    by chance. A comparison that still holds after Holm holds for the whole family at FAMILY_LEVEL.
    """
    budget = reference_budget(results, benchmarks, reference)
    at = [r for r in results if int(r.get('iters') or 0) == budget]
    family = []
    for bench in benchmarks:
        seeds = by_seed(at, bench)
        for arm, record in {r['arm']: r for r in at}.items():
            for kind, reference in (('random', random_reference(record)), ('full', full_reference(record))):
                if reference in seeds and reference != arm:
                    p = paired_p_value(seeds[arm], seeds[reference])
                    if p is not None:
                        family.append((arm, kind, bench, paired_difference(seeds[arm], seeds[reference]), p))
    if not family:
        return []
    adjusted = holm([row[4] for row in family])
    lines = ['## Multiplicity (Holm)', '',
             f'{len(family)} comparisons at {budget or "the"} iterations (every Δ random and Δ full on every '
             f'benchmark): two-sided paired t-test p-values and Holm\'s step-down adjustment; "holds": the '
             f'adjusted p is below {FAMILY_LEVEL} (family-wise).', '',
             '| arm | against | benchmark | Δ | p | Holm p | holds |', '|---|---|---|---|---|---|---|']
    for (arm, kind, bench, diff, p), q in sorted(zip(family, adjusted, strict=True), key=lambda row: row[1]):
        lines.append(f'| {arm} | {kind} | {bench} | {diff.text()} | {p:.4f} | {q:.4f} | '
                     f"{'yes' if q < FAMILY_LEVEL else 'no'} |")
    lines.append('')
    return lines


def best_checkpoint_md(results: list[dict], benchmarks: list[str], reference: int | None = None) -> list[str]:
    """Each arm's best checkpoint along training at B against full data's last one, paired by seed.

    A small subset trained to the end can score lower than it did midway (it overfits), so its last
    checkpoint understates what stopping early would give. The best checkpoint is picked on the
    benchmark itself (per benchmark and seed): an upper bound on early stopping with a held-out set.
    """
    budget = reference_budget(results, benchmarks, reference)
    at = [r for r in results if int(r.get('iters') or 0) == budget and r.get('curve')]
    full = f'full~{budget}it' if budget else 'full'
    if not at:
        return []
    runs: dict[str, list[dict]] = defaultdict(list)
    for r in at:
        runs[r['arm']].append(r)
    lines = [f'## Best checkpoint along training at {budget or "the"} iterations', '',
             'Each run\'s best PSNR over its checkpoints (every val_every steps, the last included), mean over '
             'seeds ± 95% interval, at the median step of the best; Δ: against full data\'s last checkpoint, '
             'paired by seed. The best is picked on the benchmark itself, so this is an upper bound on what '
             'stopping early on a held-out set would give.', '',
             '| arm | ' + ' | '.join(f'{b} best (step)' for b in benchmarks) + ' | '
             + ' | '.join(f'Δ {full} {b}' for b in benchmarks) + ' |', '|---' * (1 + 2 * len(benchmarks)) + '|']
    for arm, arm_runs in runs.items():
        cells, diffs = [], []
        for bench in benchmarks:
            best = {int(r['seed']): max(point[bench] for point in r['curve']) for r in arm_runs}
            step = np.median([max(r['curve'], key=lambda point: point[bench])['steps'] for r in arm_runs])
            cells.append(f'{_psnr_cell(best)} ({step:.0f})')
            last = by_seed(results, bench).get(full)
            diffs.append(paired_difference(best, last).text() if last and arm != full else '')
        lines.append(f'| {arm} | ' + ' | '.join(cells) + ' | ' + ' | '.join(diffs) + ' |')
    lines.append('')
    return lines


def curves_csv(results: list[dict], benchmarks: list[str]) -> str | None:
    """Benchmark PSNR along every run (``val_every``): arm, seed, steps, benchmark, psnr; None if no run has one."""
    if not any(r.get('curve') for r in results):
        return None
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(['arm', 'seed', 'steps', 'benchmark', 'psnr'])
    for r in results:
        for point in r.get('curve') or []:
            for bench in benchmarks:
                writer.writerow([r['arm'], r['seed'], point['steps'], bench, f'{point[bench]:.4f}'])
    return buf.getvalue()


def plot_along_training(results: list[dict], bench: str, path: Path) -> bool:
    """PSNR along training, one line per arm at the largest budget (mean over seeds, band: 95% interval).

    Points of different seeds are matched by step, so a band is drawn where every seed has that step
    (an online arm's seeds may stop at slightly different steps; their last points are shown apart).
    """
    largest = max(int(r.get('iters') or 0) for r in results)
    curves = [r for r in results if r.get('curve') and int(r.get('iters') or 0) == largest]
    if not curves:
        return False
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    by_arm: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in curves:
        for point in r['curve']:
            by_arm[r['arm']][int(point['steps'])].append(float(point[bench]))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    palette = plt.get_cmap('tab20')
    for number, (arm, points) in enumerate(by_arm.items()):
        steps = sorted(points)
        stats = [mean_interval(points[s]) for s in steps]
        mean = np.array([m for m, _ in stats])
        half = np.array([h or 0.0 for _, h in stats])
        color = 'k' if arm.startswith('full') else palette(number % 20)
        ax.plot(steps, mean, marker='.', color=color, linestyle='--' if arm.startswith('random') else '-',
                label=without_budget(arm))
        ax.fill_between(steps, mean - half, mean + half, color=color, alpha=0.12, linewidth=0)
    ax.set_xlabel(f'training step (every arm on the {largest}-iteration schedule)')
    ax.set_ylabel(f'{bench} PSNR (dB, Y), mean over seeds (band: 95% interval)')
    ax.set_title('PSNR along training', fontsize=10)
    low = min(m for arm in by_arm.values() for s, v in arm.items() for m in [np.mean(v)] if s >= largest / 4)
    high = max(np.mean(v) for arm in by_arm.values() for v in arm.values())
    ax.set_ylim(low - 0.15 * (high - low + 0.05), high + 0.1 * (high - low + 0.05))  # the plateau, not the start
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_compute(results: list[dict], bench: str, path: Path) -> bool:
    """PSNR against the steps taken and against wall-clock, one point per arm (mean, 95% interval)."""
    timed = [r for r in results if r.get('steps')]
    if not any(r.get('online') for r in timed) and len({r.get('iters') for r in timed}) < 2:
        return False
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    seeds = by_seed(timed, bench)
    groups: dict[str, list[str]] = defaultdict(list)  # one line per arm, joining its budgets
    for r in timed:
        group = groups[without_budget(r['arm'])]
        if r['arm'] not in group:
            group.append(r['arm'])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), dpi=110, sharey=True)
    palette = plt.get_cmap('tab20')
    for number, (name, arms) in enumerate(groups.items()):
        online = any(r.get('online') for r in timed if r['arm'] in arms)
        style = dict(marker='*' if online else 'o', markersize=10 if online else 6, capsize=3, label=name,
                     color='k' if name == 'full' else palette(number % 20),
                     linestyle='--' if name.startswith('random') else '-')
        for ax, key in zip(axes, ('steps', 'train_seconds'), strict=True):
            points = sorted((float(np.mean([r[key] for r in timed if r['arm'] == arm])),
                             *mean_interval(list(seeds[arm].values()))) for arm in arms)
            ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] or 0.0 for p in points], **style)
    axes[0].set_xlabel('training steps taken')
    axes[1].set_xlabel('training wall-clock (s), mean over seeds')
    axes[0].set_ylabel(f'{bench} PSNR (dB, Y), mean and 95% interval')
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def study_md(results: list[dict], benchmarks: list[str], note: str = '', reference: int | None = None) -> str:
    records = {r['arm']: r for r in results}
    lines = ['# Study', '', *([note, ''] if note else []),
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
    lines += convergence_md(results, benchmarks, reference)
    lines += compute_md(results, benchmarks)
    lines += fewest_steps_md(results, benchmarks, reference)
    lines += multiplicity_md(results, benchmarks, reference)
    lines += best_checkpoint_md(results, benchmarks, reference)
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

    largest = max(int(r.get('iters') or 0) for r in results)  # with several budgets: the largest (compute plots: all)
    results = [r for r in results if int(r.get('iters') or 0) == largest]
    summary = _summary(results, [bench])
    seeds = by_seed(results, bench)
    lines: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for arm, row in summary.items():
        rec = row['record']
        if rec['method'] in ('full', 'distilled') or rec.get('online'):
            continue
        name = rec['method'] + (f"+{rec['band']:g}" if rec['band'] else '')
        mean, half = mean_interval(list(seeds[arm].values()))
        lines[name].append((rec['keep_ratio'], mean, half or 0.0))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, points in sorted(lines.items()):
        points.sort()
        x, y, e = zip(*points, strict=True)
        ax.errorbar(x, y, yerr=e, marker='o', capsize=3, label=name, linestyle='--' if name == 'random' else '-')
    if largest:
        ax.set_title(f'every arm at {largest} iterations', fontsize=10)
    for arm, row in summary.items():  # the arms without a keep ratio: a line at the mean, a band for its interval
        method = row['record']['method']
        if method == 'full':
            style, label = {'color': 'k', 'linewidth': 1}, arm
        elif method == 'distilled':
            style, label = {'color': 'tab:purple', 'linestyle': ':'}, arm
        elif row['record'].get('online'):
            style, label = {'color': 'tab:red', 'linestyle': '-.', 'linewidth': 1}, f'{arm} (online, whole set)'
        else:
            continue
        mean, half = mean_interval(list(seeds[arm].values()))
        ax.axhline(mean, label=label + ('' if half is None else ' (band: 95% interval)'), **style)
        if half is not None:
            ax.axhspan(mean - half, mean + half, color=style['color'], alpha=0.12, linewidth=0)
    label_log_axis(ax, [x for points in lines.values() for x, _, _ in points])
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
    drawn, ticks = False, []
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
            drawn, ticks = True, ticks + list(x)
    if not drawn:
        plt.close(fig)
        return False
    ax.axhline(0, color='k', linewidth=1)
    _finish_difference_plot(fig, ax, 'keep ratio', 'PSNR gain over random of the same size (dB)', method, path,
                            ticks)
    return True


def plot_iterations(results: list[dict], bench: str, path: Path) -> None:
    """PSNR against the iteration budget (log), one line per arm joining its budgets: the compute axis.

    Each point is one budget with its own schedule (mean and 95% interval over seeds); full data, the
    reference, is drawn with its interval as a band, so where an arm's point falls inside it is visible.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    seeds, records = by_seed(results, bench), {r['arm']: r for r in results}
    lines: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for arm, record in records.items():
        mean, half = mean_interval(list(seeds[arm].values()))
        lines[without_budget(arm)].append((int(record['iters']), mean, half or 0.0))
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for name, points in sorted(lines.items()):
        points.sort()
        x, y, e = zip(*points, strict=True)
        if name == 'full':
            ax.plot(x, y, color='k', marker='o', label='full (band: 95% interval)')
            ax.fill_between(x, np.array(y) - e, np.array(y) + e, color='k', alpha=0.12, linewidth=0)
            continue
        style = {'linestyle': '--'} if name.startswith('random') else {}
        ax.errorbar(x, y, yerr=e, marker='o', capsize=3, label=name, **style)
    label_log_axis(ax, [x for points in lines.values() for x, _, _ in points])
    ax.set_xlabel('training iterations (each budget its own schedule; log scale)')
    ax.set_ylabel(f'{bench} PSNR (dB, Y), mean and 95% interval over seeds')
    ax.set_title('PSNR against the iteration budget', fontsize=10)
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
    if ax.lines:
        ax.set_yscale('log')
        ax.legend(fontsize=7)
    else:  # runs shorter than BasicSR's print_freq log no loss
        ax.text(0.5, 0.5, 'no training loss logged (runs shorter than logger:print_freq)', ha='center',
                va='center', transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(results: list[dict], root: Path, benchmarks: list[str], note: str = '',
                  training_curves: bool = True, reference: int | None = None) -> dict[str, Path]:
    """study.csv, study_images.csv, study.md (``note`` its first paragraph) and the plots, in ``root``.

    ``reference``: the budget B the comparisons are made at, where the study fixes it.

    ``training_curves``: the loss plot reads the runs' logs under ``root/experiments`` (a pooled
    folder has none).
    """
    written = {'csv': root / 'study.csv', 'images': root / 'study_images.csv', 'md': root / 'study.md'}
    atomic_write_text(written['csv'], study_csv(results, benchmarks))
    atomic_write_text(written['images'], study_images_csv(results, benchmarks))
    atomic_write_text(written['md'], study_md(results, benchmarks, note, reference))
    for bench in benchmarks:
        written[bench] = root / f'psnr_vs_ratio_{bench}.png'
        plot_ratio(results, bench, written[bench])
    if len({r.get('iters') for r in results}) > 1:
        for bench in benchmarks:
            written[f'iters_{bench}'] = root / f'psnr_vs_iters_{bench}.png'
            plot_iterations(results, bench, written[f'iters_{bench}'])
    curves = curves_csv(results, benchmarks)
    if curves:
        written['curves'] = root / 'study_curves.csv'
        atomic_write_text(written['curves'], curves)
        for bench in benchmarks:
            if plot_along_training(results, bench, root / f'psnr_along_training_{bench}.png'):
                written[f'along_{bench}'] = root / f'psnr_along_training_{bench}.png'
    for bench in benchmarks:
        if plot_compute(results, bench, root / f'psnr_vs_steps_{bench}.png'):
            written[f'compute_{bench}'] = root / f'psnr_vs_steps_{bench}.png'
    if plot_yardstick(results, benchmarks, root / 'yardstick.png'):
        written['yardstick'] = root / 'yardstick.png'
    for method in sorted({r['method'] for r in results} - {'full', 'random'}):
        path = root / f'gain_vs_random_{method}.png'
        if plot_gain(results, method, benchmarks, path):
            written[f'gain_{method}'] = path
    if training_curves:
        written['training'] = root / 'training_curves.png'
        plot_training(root, results, written['training'])
    return written
