"""``srprune demo``: the pruning chain on scikit-image photos, on CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from srprune_basicsr.plugin import plug_in


def cmd_demo(args: argparse.Namespace, rest: list[str]) -> int:
    plug_in()
    from srprune_basicsr.study.demo import run_demo

    run_demo(Path(args.workdir), iters=args.iters, scale=args.scale, overwrite=args.overwrite)
    return 0


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a whole number, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def add_parser(sub: argparse._SubParsersAction, fmt: type) -> None:
    p = sub.add_parser('demo', help='train the SRCNN proxy on scikit-image photos (CPU, minutes)',
                       epilog='example: srprune demo --workdir demo_run')
    p.add_argument('--workdir', default='demo_run', help='where data, experiments and logs go')
    p.add_argument('--iters', type=positive_int, default=None, help='training iterations (default: the option file)')
    p.add_argument('--scale', type=int, default=2, choices=[2, 3, 4])
    p.add_argument('--overwrite', action='store_true', help='start over in an existing workdir')
    p.set_defaults(func=cmd_demo)
