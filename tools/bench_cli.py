"""Benchmark the ``srprune`` command's start-up: ``--help``, ``select --help``, a real ``select`` and ``lmdb verify``.

Each command runs ``--repeats`` times as a fresh process (the console script beside this Python);
printed are the median and the spread (min-max) of the wall time, and the ratio of the median
to two references measured in the same run: a bare interpreter (``python -c pass``, the floor) and
``python -c "import srprune_basicsr"`` (torch, basicsr and the plugin: what every verb paid
before the verbs imported only their own code). The target for ``--help`` is 0.3 s.

Usage: ``python tools/bench_cli.py [--repeats 7]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(cmd: list[str], cwd: Path | None, repeats: int, env: dict | None = None) -> list[float]:
    """Wall times of ``cmd`` run ``repeats`` times (after one untimed warm-up for the file cache)."""
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def tiny_inputs(folder: Path) -> None:
    """A scores.csv of 20,000 samples and a 64-image LMDB (made with the package's own writers)."""
    import cv2

    from srprune_basicsr.formats.lmdb import build_lmdb_from_folder
    from srprune_basicsr.formats.scores import write_scores

    rng = np.random.default_rng(0)
    write_scores(folder / 'scores.csv', [f'img{i:05d}_s001' for i in range(20_000)], rng.random(20_000), method='t')
    (folder / 'imgs').mkdir()
    for i in range(64):
        cv2.imwrite(str(folder / 'imgs' / f'k{i:03d}.png'), rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    build_lmdb_from_folder(folder / 'imgs', folder / 'x.lmdb', progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeats', type=int, default=7)
    args = parser.parse_args()
    srprune = str(Path(sys.executable).with_name('srprune'))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tiny_inputs(folder)
        commands = {
            'python -c pass (floor)': [sys.executable, '-c', 'pass'],
            'import srprune_basicsr (plugin)': [sys.executable, '-c', 'import srprune_basicsr'],
            'srprune --help': [srprune, '--help'],
            'srprune select --help': [srprune, 'select', '--help'],
            'srprune select (20,000 scores)': [srprune, 'select', '--scores', 'scores.csv', '--keep-ratio', '0.5',
                                               '--drop-hardest', '0.05', '--out', 'keep.txt', '--overwrite'],
            'srprune lmdb verify (64 images)': [srprune, 'lmdb', 'verify', 'x.lmdb'],
            'python -m srprune_basicsr select --help': [sys.executable, '-m', 'srprune_basicsr', 'select', '--help'],
        }
        results = {name: timed(cmd, folder, args.repeats) for name, cmd in commands.items()}
    floor = statistics.median(results['python -c pass (floor)'])
    plugin = statistics.median(results['import srprune_basicsr (plugin)'])
    print(f'{args.repeats} runs each; median [min-max] wall time, ratio to the floor and to the plugin import')
    for name, times in results.items():
        median = statistics.median(times)
        print(f'{name:42s} {median:6.3f} s [{min(times):.3f}-{max(times):.3f}]  x{median / floor:5.2f} floor  '
              f'x{median / plugin:5.2f} plugin')


if __name__ == '__main__':
    main()
