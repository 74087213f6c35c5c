"""Redraw a study's plots from its committed tables (study.csv, study_images.csv), without its run folder.

A study folder in docs/results keeps only the tables; the per-run result files stay in the study's own
folder. This rebuilds the result records from the tables (values to 4 decimals, as study.csv stores
them) and draws the same plots ``srprune study`` draws, so a change to the plots reaches the committed
results too. study.md and the CSVs are left as they are.

    python tools/replot_study.py docs/results/cpu_edsr_x2 [docs/results/cpu_edsr_x2_confirm ...]
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import defaultdict
from pathlib import Path

from srprune_basicsr.study import tables

NOT_ONLINE = ('full', 'random', 'distilled')


def records_from_tables(folder: Path) -> tuple[list[dict], list[str]]:
    """Result records (one per arm and seed) and the benchmarks, read back from a study's tables."""
    runs: dict[tuple[str, int], dict] = {}
    benchmarks: list[str] = []
    with open(folder / 'study.csv') as handle:
        for row in csv.DictReader(handle):
            seed, bench = int(row['seed']), row['benchmark']
            benchmarks += [bench] if bench not in benchmarks else []
            iters = re.search(r'~(\d+)it$', row['arm'])
            record = runs.setdefault((row['arm'], seed), {
                'arm': row['arm'], 'method': row['method'], 'keep_ratio': float(row['keep_ratio']),
                'band': float(row['band']), 'seed': seed, 'iters': int(iters.group(1)) if iters else 0,
                'online': '@' not in row['arm'] and not row['method'].startswith(NOT_ONLINE),
                'steps': int(row['steps']) if row.get('steps') else 0,
                'train_seconds': float(row['train_seconds']) if row.get('train_seconds') else 0.0,
                'benchmarks': {}})
            record['benchmarks'][bench] = {'psnr': float(row['psnr']), 'ssim': float(row['ssim']), 'per_image': {}}
    images = folder / 'study_images.csv'
    if images.is_file():
        per_image: dict[tuple[str, int, str], dict] = defaultdict(dict)
        with open(images) as handle:
            for row in csv.DictReader(handle):
                per_image[(row['arm'], int(row['seed']), row['benchmark'])][row['image']] = [
                    float(row['psnr']), float(row['ssim'])]
        for (arm, seed, bench), values in per_image.items():
            if (arm, seed) in runs:
                runs[(arm, seed)]['benchmarks'][bench]['per_image'] = values
    return list(runs.values()), benchmarks


def replot(folder: Path) -> list[Path]:
    """Every plot of ``tables.write_outputs`` but the training curves (they need the run logs)."""
    results, benchmarks = records_from_tables(folder)
    drawn = []
    for bench in benchmarks:
        tables.plot_ratio(results, bench, folder / f'psnr_vs_ratio_{bench}.png')
        drawn.append(folder / f'psnr_vs_ratio_{bench}.png')
        if len({r['iters'] for r in results}) > 1:
            tables.plot_iterations(results, bench, folder / f'psnr_vs_iters_{bench}.png')
            drawn.append(folder / f'psnr_vs_iters_{bench}.png')
        if tables.plot_compute(results, bench, folder / f'psnr_vs_steps_{bench}.png'):
            drawn.append(folder / f'psnr_vs_steps_{bench}.png')
    if tables.plot_yardstick(results, benchmarks, folder / 'yardstick.png'):
        drawn.append(folder / 'yardstick.png')
    for method in sorted({r['method'] for r in results} - {'full', 'random'}):
        if tables.plot_gain(results, method, benchmarks, folder / f'gain_vs_random_{method}.png'):
            drawn.append(folder / f'gain_vs_random_{method}.png')
    return drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('folders', nargs='+', type=Path, help='study folders holding study.csv')
    for folder in parser.parse_args().folders:
        for path in replot(folder):
            print(path)


if __name__ == '__main__':
    main()
