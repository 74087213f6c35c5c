"""``srprune select``: scores.csv -> keep.txt by a selection rule (imports no torch)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_select(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.cli.requires import check_requires, or_default
    from srprune_basicsr.formats.scores import read_scores
    from srprune_basicsr.selection import SelectionRule, select_keys, write_selection

    check_requires(args, [('--texture-strata', '--texture-scores', bool(args.texture_scores)),
                          ('--strata', '--order stratified', args.order == 'stratified'),
                          ('--log-strata', '--order stratified', args.order == 'stratified')])
    rule = SelectionRule(keep_ratio=args.keep_ratio, order=args.order, drop_hardest=args.drop_hardest,
                         seed=args.seed, strata=or_default(args.strata, 50), log_strata=args.log_strata,
                         per_source=args.per_source, random_share=args.random_share,
                         texture_scores=args.texture_scores, texture_strata=or_default(args.texture_strata, 4))
    scores = read_scores(args.scores)
    kept = select_keys(scores.keys, scores.values, rule)
    write_selection(args.out, kept, len(scores), rule, args.scores, overwrite=args.overwrite)
    print(f'{rule.describe()}: kept {len(kept)} of {len(scores)} -> {args.out} (+ {Path(args.out).stem}.json)')
    return 0


def add_parser(sub: argparse._SubParsersAction, fmt: type) -> None:
    p = sub.add_parser('select', help='scores.csv -> keep.txt by a selection rule', formatter_class=fmt,
                       description='Every ratio is a fraction of the WHOLE dataset: --keep-ratio is the share kept, '
                                   '--drop-hardest the share of the hardest samples removed first. '
                                   '--keep-ratio 0.5 --drop-hardest 0.05 keeps the samples ranked 5%..55% by '
                                   'difficulty (50% of the set). At small budgets prefer a band: keeping only '
                                   'the hardest 10-25% lost to random subsets in our pilots, ranks 25-50% won.',
                       epilog='example: srprune select --scores experiments/score_srcnn_x2/scores.csv '
                              '--keep-ratio 0.5 --order hardest --drop-hardest 0.05 --out keep.txt')
    p.add_argument('--scores', required=True, help='scores.csv (key,score; larger = harder)')
    p.add_argument('--keep-ratio', type=float, required=True, help='share of the whole set to keep, in (0, 1]')
    p.add_argument('--order', choices=['hardest', 'easiest', 'random', 'stratified'], default='hardest')
    p.add_argument('--drop-hardest', type=float, default=0.0, help='share of the whole set removed from the hard end')
    p.add_argument('--seed', type=int, default=0, help='for random and stratified')
    p.add_argument('--strata', type=int, default=None, help='stratified: number of equal-width score strata (50)')
    p.add_argument('--log-strata', action='store_true', help='stratified: strata on log(score)')
    p.add_argument('--per-source', action='store_true',
                   help='apply the rule within each source image\'s sub-images (<source>_sNNN keys), each keeping '
                        'its share')
    p.add_argument('--random-share', type=float, default=0.0, metavar='S',
                   help='draw this share of the budget at random from the samples the rule leaves, in [0, 1)')
    p.add_argument('--texture-scores', metavar='CSV', default=None,
                   help='a second scores.csv (e.g. sobel): apply the rule within equal-count strata of it')
    p.add_argument('--texture-strata', type=int, default=None, help='number of strata of --texture-scores (4)')
    p.add_argument('--out', required=True, help='keep.txt to write (keep.json beside it)')
    p.add_argument('--overwrite', action='store_true')
    p.set_defaults(func=cmd_select)
