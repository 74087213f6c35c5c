"""PSNR against keep ratio, one plot per benchmark, from a study's summary table.

The plots are drawn from the summary tables (mean and seed std per arm and benchmark, as in
``docs/results/*_summary.csv``), not from per-run result files: each point is a mean over seeds and its
error bar the seed std. Input columns: ``arm,benchmark,psnr_mean,psnr_std,n``, with arm labels as
``srprune study`` writes them (``full``, ``random@0.1``, ``loss_value@0.25+0.25``, ``distilled``).

Each method (and each band offset of a method) is one line, ``random`` dashed; ``full`` is a
horizontal line with its seed std shaded, ``distilled`` a dotted horizontal line. Points that share a
keep ratio are spread slightly along the (log) x axis so their error bars stay apart.

    python tools/plot_results.py docs/results/gpu_edsr_x2_summary.csv
    # -> docs/results/gpu_edsr_x2_Set5.png, ..._Set14.png, ..._BSD100.png
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from pathlib import Path

ARM = re.compile(r'(?P<method>[A-Za-z0-9_]+)(?:@(?P<ratio>[0-9.]+)(?:\+(?P<band>[0-9.]+))?)?')


def parse_arm(label: str) -> tuple[str, float | None, float]:
    """``loss_value@0.25+0.25`` -> ('loss_value', 0.25, 0.25); ``full`` -> ('full', None, 0.0)."""
    m = ARM.fullmatch(label.strip())
    if not m:
        raise ValueError(f'arm label {label!r} is not method[@ratio[+band]]')
    ratio = float(m['ratio']) if m['ratio'] else None
    if ratio is None and m['method'] not in ('full', 'distilled'):
        raise ValueError(f'arm {label!r} has no keep ratio (only full and distilled may lack one)')
    return m['method'], ratio, float(m['band']) if m['band'] else 0.0


def read_summary(path: Path) -> dict[str, list[dict]]:
    """Rows per benchmark, in file order; every field checked."""
    need = {'arm', 'benchmark', 'psnr_mean', 'psnr_std', 'n'}
    with path.open(newline='') as f:
        reader = csv.DictReader(f)
        missing = need - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f'{path}: missing column(s) {sorted(missing)}; need {sorted(need)}')
        rows: dict[str, list[dict]] = defaultdict(list)
        for line, row in enumerate(reader, start=2):
            try:
                method, ratio, band = parse_arm(row['arm'])
                rows[row['benchmark']].append({'method': method, 'ratio': ratio, 'band': band,
                                               'mean': float(row['psnr_mean']), 'std': float(row['psnr_std']),
                                               'n': int(row['n'])})
            except ValueError as e:
                raise ValueError(f'{path}:{line}: {e}') from None
    if not rows:
        raise ValueError(f'{path}: no rows')
    return rows


def line_name(method: str, band: float) -> str:
    return method + (f'+{band:g}' if band else '')


def plot_benchmark(rows: list[dict], bench: str, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    lines: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    flat: dict[str, dict] = {}
    for r in rows:
        if r['ratio'] is None:
            flat[r['method']] = r
        else:
            lines[line_name(r['method'], r['band'])].append((r['ratio'], r['mean'], r['std']))
    # random first, then the methods in name order (bands of a method next to each other)
    names = sorted(lines, key=lambda name: (name != 'random', name))
    spread = 0.012  # log10 units between neighbouring lines at the same ratio
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for i, name in enumerate(names):
        points = sorted(lines[name])
        shift = 10 ** (spread * (i - (len(names) - 1) / 2))
        x = [p[0] * shift for p in points]
        y = [p[1] for p in points]
        e = [p[2] for p in points]
        style = dict(linestyle='--', color='0.35') if name == 'random' else dict(linestyle='-')
        ax.errorbar(x, y, yerr=e, marker='o', markersize=4, capsize=3, linewidth=1.3, label=name, **style)
    if 'full' in flat:
        f = flat['full']
        ax.axhline(f['mean'], color='k', linewidth=1, label=f"full ({f['mean']:.3f} ± {f['std']:.3f})")
        ax.axhspan(f['mean'] - f['std'], f['mean'] + f['std'], color='k', alpha=0.08, linewidth=0)
    if 'distilled' in flat:
        d = flat['distilled']
        ax.axhline(d['mean'], color='tab:purple', linestyle=':', label=f"distilled ({d['mean']:.3f})")
    ratios = sorted({r['ratio'] for r in rows if r['ratio'] is not None})
    ax.set_xscale('log')
    if ratios:
        ax.set_xticks(ratios)
        ax.set_xticklabels([f'{r:.0%}' if r * 100 == int(r * 100) else f'{r:.1%}' for r in ratios])
        ax.minorticks_off()
        ax.set_xlim(ratios[0] / 1.35, ratios[-1] * 1.35)
    n = sorted({r['n'] for r in rows})
    ax.set_xlabel('keep ratio (share of the training set, log scale)')
    ax.set_ylabel(f'{bench} PSNR, Y (dB)')
    ax.set_title(f"{title}: {bench}, mean ± seed std (n={','.join(map(str, n))})", fontsize=10)
    ax.grid(True, which='major', alpha=0.3)
    ax.legend(fontsize=7, loc='best', ncol=2 if len(names) > 6 else 1)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('csv', type=Path, help='summary table: arm,benchmark,psnr_mean,psnr_std,n')
    p.add_argument('--prefix', default=None,
                   help='file name prefix (default: the CSV name without _summary.csv); '
                        'plots are written as <prefix>_<benchmark>.png next to the CSV')
    p.add_argument('--title', default=None, help='plot title (default: the prefix)')
    args = p.parse_args(argv)
    try:
        rows = read_summary(args.csv)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    prefix = args.prefix or re.sub(r'_summary$', '', args.csv.stem)
    for bench, bench_rows in rows.items():
        out = args.csv.with_name(f'{prefix}_{bench}.png')
        plot_benchmark(bench_rows, bench, args.title or prefix, out)
        print(out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
