"""Benchmark auto-registration: its cost at interpreter start and at ``import basicsr``.

Each case runs ``--repeats`` times as a fresh interpreter (after one untimed warm-up); printed are
the median and the spread (min-max) of the wall time and the difference of the medians, all from
one run. ``SRPRUNE_AUTOLOAD=0`` switches the ``.pth`` finder off:

- start: ``python -c pass`` with and without the finder (the target: under 5 ms of difference).
  ``SRPRUNE_AUTOLOAD=0`` still imports the small module the ``.pth`` line names (it reads the
  switch), so the cost of that import is also read from ``python -X importtime``;
- import: ``python -c "import basicsr"`` with the finder (basicsr, then the plugin plugged in)
  against basicsr alone with only the functional_tensor shim it needs to import at all.

Usage: ``python tools/bench_autoload.py [--repeats 20]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

import bench_cli  # tools/ is the script's folder, first on sys.path

BARE_BASICSR = ('import sys, torchvision.transforms._functional_tensor as f; '
                "sys.modules['torchvision.transforms.functional_tensor'] = f; import basicsr")


def timed(code: str, autoload: bool, repeats: int) -> list[float]:
    env = dict(os.environ, SRPRUNE_AUTOLOAD='1' if autoload else '0', CUDA_VISIBLE_DEVICES='')
    return bench_cli.timed([sys.executable, '-c', code], None, repeats, env)


def import_cost_us(repeats: int) -> list[int]:
    """Cumulative import time (us) of the module the ``.pth`` line imports, from ``-X importtime``."""
    costs = []
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, '-X', 'importtime', '-c', 'pass'], capture_output=True, text=True,
                              check=True)
        line = next(li for li in proc.stderr.splitlines() if li.rstrip().endswith('srprune_basicsr_autoload'))
        costs.append(int(line.split('|')[1]))
    return costs


def row(label: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(f'| {label} | {median * 1000:.1f} | {min(times) * 1000:.1f}-{max(times) * 1000:.1f} |')
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=20)
    args = parser.parse_args()
    print(f'{args.repeats} runs each; wall time in ms\n\n| case | median | min-max |\n|---|---|---|')
    start_off = row('`python -c pass`, SRPRUNE_AUTOLOAD=0', timed('pass', False, args.repeats))
    start_on = row('`python -c pass`, auto-registration on', timed('pass', True, args.repeats))
    bare = row('`import basicsr` alone (shim only), SRPRUNE_AUTOLOAD=0', timed(BARE_BASICSR, False, args.repeats))
    plugged = row('`import basicsr`, auto-registration on (plugin plugged in)',
                  timed('import basicsr', True, args.repeats))
    costs = import_cost_us(args.repeats)
    print(f'\nstart-up cost of the finder: {(start_on - start_off) * 1000:+.2f} ms between the medians; importing '
          f'its module: median {statistics.median(costs)} us ({min(costs)}-{max(costs)}) (target: under 5 ms)')
    print(f'cost at import basicsr: {(plugged - bare) * 1000:+.0f} ms ({plugged / bare:.2f}x basicsr alone)')


if __name__ == '__main__':
    main()
