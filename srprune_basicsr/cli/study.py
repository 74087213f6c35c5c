"""``srprune study``: every arm trained with the same budget and seeds, evaluated, tabled."""

from __future__ import annotations

import argparse

from srprune_basicsr.plugin import plug_in


def _shard(text: str) -> tuple[int, int]:
    """``I/N`` -> (I, N), with 0 <= I < N."""
    try:
        index, count = (int(v) for v in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--shard wants I/N (e.g. 0/2), got {text!r}') from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f'--shard {text}: I must be in 0..N-1')
    return index, count


def cmd_study(args: argparse.Namespace, rest: list[str]) -> int:
    plug_in()
    from srprune_basicsr.study.runner import Study, load_study

    study = Study(load_study(args.opt), args.root)
    study.run(shard=args.shard)
    print(f'study -> {study.root}/study.md (+ study.csv, psnr_vs_ratio_*.png, training_curves.png)')
    return 0


def add_parser(sub: argparse._SubParsersAction, fmt: type) -> None:
    p = sub.add_parser('study', help='train every arm (full, random, each method, bands, distilled) with the '
                       'same budget and seeds, evaluate, table', formatter_class=fmt,
                       epilog='example: srprune study -opt options/study/cpu_fsrcnn_x2.yml   (rerun to resume)')
    p.add_argument('-opt', required=True, help='study option file (see options/study/)')
    p.add_argument('--root', default=None, help='study folder (default: studies/<name>)')
    p.add_argument('--shard', type=_shard, default=(0, 1), metavar='I/N',
                   help='run only pairs I, I+N, ... (0-based): N processes share one study folder; the last '
                   'to finish writes the full tables')
    p.set_defaults(func=cmd_study)
