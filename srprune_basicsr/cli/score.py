"""``srprune score``: score every training sample, or recompute dynamic uncertainty from a recorded history."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from srprune_basicsr.plugin import plug_in


def cmd_score(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.cli.requires import check_requires

    check_requires(args, [('--window', '--from-history (-opt files set score:window)', bool(args.from_history))])
    if args.from_history:
        return cmd_score_history(args)
    plug_in()  # before the first basicsr import
    from basicsr.utils.dist_util import init_dist

    from srprune_basicsr.scoring.runner import load_options, run_scoring

    opt = load_options(args.opt)
    dist = args.launcher in ('pytorch', 'slurm')
    if dist:
        init_dist(args.launcher)
    out = run_scoring(opt, args.out, dist=dist, overwrite=args.overwrite)
    if not dist or int(os.environ.get('RANK', 0)) == 0:
        print(f'scores -> {out} (+ {out.with_suffix(".json").name})')
    return 0


def cmd_score_history(args: argparse.Namespace) -> int:
    from srprune_basicsr.formats.history import History
    from srprune_basicsr.scoring.dynamic_uncertainty import write_uncertainty_scores

    history = History.open(args.from_history)
    window = args.window if args.window is not None else history.meta.get('window', 10)
    out = Path(args.out or history.root.parent / f'scores_du_w{window}.csv')
    write_uncertainty_scores(history, window, out, overwrite=args.overwrite, dataset=history.meta.get('dataset'),
                             sample_count=len(history.keys), scale=history.meta.get('scale'))
    print(f'dynamic uncertainty, window {window} over {history.count} snapshots -> {out} '
          f'(+ {out.with_suffix(".json").name})')
    return 0


def add_parser(sub: argparse._SubParsersAction, fmt: type) -> None:
    p = sub.add_parser('score', help="score every training sample with the option file's registered scorer "
                       "(method:, e.g. loss_value), or recompute dynamic uncertainty from a recorded history",
                       formatter_class=fmt,
                       epilog='example: srprune score -opt options/score/score_SRCNN_x2.yml\n'
                              '         torchrun --nproc_per_node=2 -m srprune_basicsr score -opt X.yml '
                              '--launcher pytorch\n'
                              '         srun --ntasks=4 srprune score -opt X.yml --launcher slurm\n'
                              '         srprune score --from-history experiments/du_EDSR/prune_tracking --window 5')
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument('-opt', help='score option file (see options/score/)')
    source.add_argument('--from-history', metavar='DIR',
                        help='a prune_tracking folder (or its experiment folder): dynamic uncertainty offline')
    p.add_argument('--window', type=int, default=None,
                   help='with --from-history: J, snapshots per sliding window (default: the one trained with)')
    p.add_argument('--out', default=None, help='scores.csv to write (default: out: or experiments/<name>/; '
                   'with --from-history: scores_du_w<J>.csv beside the prune_tracking folder)')
    p.add_argument('--overwrite', action='store_true', help='replace a score file srprune wrote before')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_score)
