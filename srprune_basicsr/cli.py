"""The ``srprune`` command: thin wiring of argparse onto the library functions.

``srprune train`` / ``srprune test`` hand their arguments to BasicSR's own ``train_pipeline`` /
``test_pipeline`` (so every BasicSR flag works) with the plugin registered and the current
directory as root: ``experiments/``, ``tb_logger/`` and ``results/`` appear where the user is.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EPILOG_TRAIN = 'example: srprune train -opt options/train/train_SRCNN_x2.yml --auto_resume'
EPILOG_TEST = 'example: srprune test -opt options/test/test_SRCNN_x2.yml'
BASICSR_FLAGS = ('Every flag of BasicSR\'s train.py/test.py is accepted: -opt, --launcher {none,pytorch,slurm}, '
                 '--auto_resume, --debug, --local_rank, --force_yml key:sub=value ...')


def basicsr_argv(args: Sequence[str]) -> list[str]:
    """BasicSR's parser only knows ``--local_rank``; torch.distributed.launch passes ``--local-rank``."""
    return [a.replace('--local-rank', '--local_rank', 1) if a.startswith('--local-rank') else a for a in args]


def run_basicsr_pipeline(pipeline: Callable[[str], None], prog: str, args: Sequence[str]) -> int:
    """Run a BasicSR pipeline on ``args`` as if they were its own command line, rooted at the cwd."""
    saved = sys.argv
    sys.argv = [prog, *basicsr_argv(args)]
    try:
        pipeline(os.getcwd())
    finally:
        sys.argv = saved
    return 0


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    from basicsr.train import train_pipeline

    import srprune_basicsr  # noqa: F401  (compat fixes + registration before BasicSR runs)

    return run_basicsr_pipeline(train_pipeline, 'srprune train', rest)


def cmd_test(args: argparse.Namespace, rest: list[str]) -> int:
    from basicsr.test import test_pipeline

    import srprune_basicsr  # noqa: F401

    return run_basicsr_pipeline(test_pipeline, 'srprune test', rest)


def cmd_prepare(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.data.prepare import PrepareConfig, prepare, prepare_benchmark

    scales = tuple(sorted(set(args.scales)))
    if args.benchmark:
        folders = prepare_benchmark(args.hr, args.out, scales, overwrite=args.overwrite)
        print('\n'.join(f'{name}: {path}' for name, path in folders.items()))
        return 0
    cfg = PrepareConfig(crop=args.crop, step=args.step, thresh=args.thresh, scales=scales)
    result = prepare(args.hr, args.out, cfg, lmdb=args.lmdb, folders=args.folders or not args.lmdb,
                     workers=args.workers, compress_level=args.compress_level, overwrite=args.overwrite)
    print(f'{result.images} images -> {result.sub_images} sub-images in {result.out}')
    if result.skipped_small:
        print(f'{len(result.skipped_small)} image(s) smaller than {cfg.crop} px gave no sub-image, '
              f'e.g. {result.skipped_small[:5]}')
    for name, path in {**result.folders, **result.lmdbs}.items():
        print(f'  {name}: {path}')
    return 0


def cmd_lmdb_build(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.data.lmdb_tools import build_lmdb_from_folder

    count = build_lmdb_from_folder(args.folder, args.out, overwrite=args.overwrite)
    print(f'{count} images -> {args.out}')
    return 0


def cmd_lmdb_rebuild(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.data.lmdb_tools import rebuild_lmdbs

    result = rebuild_lmdbs(args.src, args.keep, args.out, overwrite=args.overwrite)
    print(f'kept {result.kept}, dropped {result.dropped} -> {result.out}')
    for path in result.lmdbs:
        print(f'  {path}')
    return 0


def cmd_lmdb_verify(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.data.lmdb_tools import verify_lmdb

    status = 0
    for path in args.lmdb:
        report = verify_lmdb(path, decode=args.decode, progress=True)
        if report.ok:
            print(f'{path}: OK, {report.entries} images' + (' (all decoded)' if args.decode else ''))
        else:
            status = 1
            print(f'{path}: {len(report.problems)} problem(s)')
            for problem in report.problems:
                print(f'  - {problem}')
    return status


def cmd_score(args: argparse.Namespace, rest: list[str]) -> int:
    if args.from_history:
        return cmd_score_history(args)
    from basicsr.utils.dist_util import init_dist

    import srprune_basicsr  # noqa: F401
    from srprune_basicsr.scoring.runner import load_options, run_scoring

    opt = load_options(args.opt)
    dist = args.launcher == 'pytorch'
    if dist:
        init_dist('pytorch')
    out = run_scoring(opt, args.out, dist=dist)
    if not dist or int(os.environ.get('RANK', 0)) == 0:
        print(f'scores -> {out} (+ {out.with_suffix(".json").name})')
    return 0


def cmd_score_history(args: argparse.Namespace) -> int:
    from srprune_basicsr.scoring.uncertainty import History, write_uncertainty_scores

    history = History.open(args.from_history)
    window = args.window or history.meta.get('window', 10)
    out = Path(args.out or history.root.parent / f'scores_du_w{window}.csv')
    write_uncertainty_scores(history, window, out, dataset=history.meta.get('dataset'),
                             sample_count=len(history.keys), scale=history.meta.get('scale'))
    print(f'dynamic uncertainty, window {window} over {history.count} snapshots -> {out} '
          f'(+ {out.with_suffix(".json").name})')
    return 0


def cmd_select(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.scoring.scores import read_scores
    from srprune_basicsr.scoring.select import SelectionRule, select_keys, write_selection

    rule = SelectionRule(keep_ratio=args.keep_ratio, order=args.order, drop_hardest=args.drop_hardest,
                         seed=args.seed, strata=args.strata, log_strata=args.log_strata)
    scores = read_scores(args.scores)
    kept = select_keys(scores.keys, scores.values, rule)
    write_selection(args.out, kept, len(scores), rule, args.scores, overwrite=args.overwrite)
    print(f'{rule.describe()}: kept {len(kept)} of {len(scores)} -> {args.out} (+ {Path(args.out).stem}.json)')
    return 0


def cmd_report(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.report.scores_report import write_report

    written, correlation = write_report(args.scores, args.out, args.keep, args.gt_lmdb, args.compare)
    for name, path in written.items():
        print(f'{name}: {path}')
    if correlation is not None:
        print(f'Spearman rank correlation with {args.compare}: {correlation:.4f}')
    return 0


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
    import srprune_basicsr  # noqa: F401
    from srprune_basicsr.study.runner import Study, load_study

    study = Study(load_study(args.opt), args.root)
    study.run(shard=args.shard)
    print(f'study -> {study.root}/study.md (+ study.csv, psnr_vs_ratio_*.png, training_curves.png)')
    return 0


def cmd_demo(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.demo import run_demo

    run_demo(Path(args.workdir), iters=args.iters, scale=args.scale, overwrite=args.overwrite)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='srprune', description='Data-efficient SR training on BasicSR.')
    sub = parser.add_subparsers(dest='command', required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    # train/test arguments go to BasicSR's own parser untouched; these sub-parsers only give --help
    parser.passthrough = {  # type: ignore[attr-defined]
        name: sub.add_parser(name, help=f"BasicSR's {name}_pipeline with the plugin", description=BASICSR_FLAGS,
                             epilog=epilog, formatter_class=fmt, add_help=False)
        for name, epilog in (('train', EPILOG_TRAIN), ('test', EPILOG_TEST))}

    p = sub.add_parser('prepare', help='HR images -> sub-images + bicubic LR (+ LMDBs)', formatter_class=fmt,
                       epilog='example: srprune prepare --hr datasets/DIV2K/HR --out datasets/DIV2K_sub '
                              '--scales 2 4 --crop 480 --step 240 --thresh 48 --lmdb\n'
                              '         srprune prepare --benchmark --hr ../shared/data/Set5/HR --out datasets/Set5')
    p.add_argument('--hr', required=True, help='folder of HR images')
    p.add_argument('--out', required=True, help='output folder (created; refused if it exists)')
    p.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4])
    p.add_argument('--crop', type=int, default=480, help='GT sub-image size (BasicSR: 480)')
    p.add_argument('--step', type=int, default=240, help='stride between sub-images (BasicSR: 240)')
    p.add_argument('--thresh', type=int, default=48, help='add a border crop if more than this is left (48)')
    p.add_argument('--lmdb', action='store_true', help='write BasicSR LMDBs (sub-images go straight in)')
    p.add_argument('--folders', action='store_true', help='also write PNG folders with --lmdb (default without)')
    p.add_argument('--compress-level', type=int, default=None,
                   help='PNG level (default as BasicSR: 1 in LMDBs, 3 in folders)')
    p.add_argument('--benchmark', action='store_true',
                   help='whole images: GTmod12 + LRbicx{s}, for validation and test sets')
    p.add_argument('--workers', type=int, default=None, help='processes (default: all cores)')
    p.add_argument('--overwrite', action='store_true')
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser('lmdb', help='BasicSR LMDB tools')
    lsub = p.add_subparsers(dest='lmdb_command', required=True)
    b = lsub.add_parser('build', help='folder of images -> LMDB (file bytes stored as they are)',
                        epilog='example: srprune lmdb build --folder datasets/x/HR_sub --out datasets/x/HR_sub.lmdb')
    b.add_argument('--folder', required=True)
    b.add_argument('--out', required=True)
    b.add_argument('--overwrite', action='store_true')
    b.set_defaults(func=cmd_lmdb_build)
    r = lsub.add_parser('rebuild', help='copy only the kept keys into new LMDBs (stored bytes, no re-encode)',
                        formatter_class=fmt,
                        epilog='example: srprune lmdb rebuild --src datasets/x/HR_sub.lmdb '
                               '--src datasets/x/LR_bicubic_X2_sub.lmdb\n'
                               '         --keep experiments/select/keep.txt --out datasets/x_kept')
    r.add_argument('--src', action='append', required=True, help='source LMDB (repeat for GT and each LQ)')
    r.add_argument('--keep', required=True, help='keep.txt: one key per line')
    r.add_argument('--out', required=True, help='output folder: one LMDB per source + keep.txt + keep.json')
    r.add_argument('--overwrite', action='store_true')
    r.set_defaults(func=cmd_lmdb_rebuild)
    v = lsub.add_parser('verify', help='meta_info.txt and the database agree (exit 1 with the problems)',
                        epilog='example: srprune lmdb verify datasets/x/HR_sub.lmdb --decode')
    v.add_argument('lmdb', nargs='+', help='LMDB folder(s)')
    v.add_argument('--decode', action='store_true', help='also decode every image and check its shape')
    v.set_defaults(func=cmd_lmdb_verify)

    p = sub.add_parser('score', help='score every training sample (loss_value | random | sobel | bicubic_psnr), '
                       'or recompute dynamic uncertainty from a recorded history', formatter_class=fmt,
                       epilog='example: srprune score -opt options/score/score_SRCNN_x2.yml\n'
                              '         torchrun --nproc_per_node=2 -m srprune_basicsr score -opt X.yml '
                              '--launcher pytorch\n'
                              '         srprune score --from-history experiments/du_EDSR/prune_tracking --window 5')
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument('-opt', help='score option file (see options/score/)')
    source.add_argument('--from-history', metavar='DIR',
                        help='a prune_tracking folder (or its experiment folder): dynamic uncertainty offline')
    p.add_argument('--window', type=int, default=None,
                   help='with --from-history: J, snapshots per sliding window (default: the one trained with)')
    p.add_argument('--out', default=None, help='scores.csv to write (default: out: or experiments/<name>/; '
                   'with --from-history: scores_du_w<J>.csv beside the prune_tracking folder)')
    p.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_score)

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
    p.add_argument('--strata', type=int, default=50, help='stratified: number of equal-width score strata')
    p.add_argument('--log-strata', action='store_true', help='stratified: strata on log(score)')
    p.add_argument('--out', required=True, help='keep.txt to write (keep.json beside it)')
    p.add_argument('--overwrite', action='store_true')
    p.set_defaults(func=cmd_select)

    p = sub.add_parser('report', help='score histogram, hardest/median/easiest samples, summary (PNG + md)',
                       epilog='example: srprune report --scores experiments/score_SRCNN_x2/scores.csv '
                              '--keep keep.txt --out experiments/score_SRCNN_x2/report')
    p.add_argument('--scores', required=True)
    p.add_argument('--out', required=True, help='folder for score_hist.png, samples.png, summary.md')
    p.add_argument('--keep', default=None, help='keep.txt: shade the kept samples')
    p.add_argument('--gt-lmdb', default=None, help='GT LMDB for the sample grid (default: from scores.json)')
    p.add_argument('--compare', default=None, help='another scores.csv: print the Spearman rank correlation')
    p.set_defaults(func=cmd_report)

    p = sub.add_parser('study', help='train every arm (full, random, each method, bands, distilled) with the '
                       'same budget and seeds, evaluate, table', formatter_class=fmt,
                       epilog='example: srprune study -opt options/study/cpu_fsrcnn_x2.yml   (rerun to resume)')
    p.add_argument('-opt', required=True, help='study option file (see options/study/)')
    p.add_argument('--root', default=None, help='study folder (default: studies/<name>)')
    p.add_argument('--shard', type=_shard, default=(0, 1), metavar='I/N',
                   help='run only pairs I, I+N, ... (0-based): N processes share one study folder; the last '
                   'to finish writes the full tables')
    p.set_defaults(func=cmd_study)

    p = sub.add_parser('demo', help='train the SRCNN proxy on scikit-image photos (CPU, minutes)',
                       epilog='example: srprune demo --workdir demo_run')
    p.add_argument('--workdir', default='demo_run', help='where data, experiments and logs go')
    p.add_argument('--iters', type=int, default=None, help='training iterations (default: the option file)')
    p.add_argument('--scale', type=int, default=2, choices=[2, 3, 4])
    p.add_argument('--overwrite', action='store_true', help='start over in an existing workdir')
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ('train', 'test'):
        if len(argv) == 1 or argv[1] in ('-h', '--help'):
            parser.passthrough[argv[0]].print_help()
            return 0
        return (cmd_train if argv[0] == 'train' else cmd_test)(argparse.Namespace(command=argv[0]), argv[1:])
    args = parser.parse_args(argv)
    try:
        return args.func(args, [])
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f'srprune {args.command}: error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
