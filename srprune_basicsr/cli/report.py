"""``srprune report``: score histogram, hardest/median/easiest samples and a summary."""

from __future__ import annotations

import argparse


def cmd_report(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.report.scores_report import write_report

    written, correlation = write_report(args.scores, args.out, args.keep, args.gt_lmdb, args.compare, args.overwrite)
    for name, path in written.items():
        print(f'{name}: {path}')
    if correlation is not None:
        print(f'Spearman rank correlation with {args.compare}: {correlation:.4f}')
    return 0


def add_parser(sub: argparse._SubParsersAction, fmt: type) -> None:
    p = sub.add_parser('report', help='score histogram, hardest/median/easiest samples, summary (PNG + md)',
                       epilog='example: srprune report --scores experiments/score_SRCNN_x2/scores.csv '
                              '--keep keep.txt --out experiments/score_SRCNN_x2/report')
    p.add_argument('--scores', required=True)
    p.add_argument('--out', required=True, help='folder for score_hist.png, samples.png, summary.md')
    p.add_argument('--keep', default=None, help='keep.txt: shade the kept samples')
    p.add_argument('--gt-lmdb', default=None, help='GT LMDB for the sample grid (default: from scores.json)')
    p.add_argument('--compare', default=None, help='another scores.csv: print the Spearman rank correlation')
    p.add_argument('--overwrite', action='store_true', help='replace a report folder srprune wrote before')
    p.set_defaults(func=cmd_report)
