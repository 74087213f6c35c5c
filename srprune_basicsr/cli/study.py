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
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f'--shard {text}: I must be in 0..N-1 (N at least 1)')
    return index, count


def slurm_array_shard(env: dict) -> tuple[int, int] | None:
    """The shard of a slurm job array task (``sbatch --array=0-3``): its index from the first task, the task count.

    Only a contiguous array (no step, no list) maps tasks to shards 0..N-1; any other is refused on
    every task, so no shard is left out.
    """
    if 'SLURM_ARRAY_TASK_ID' not in env:
        return None
    names = ('SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_TASK_COUNT', 'SLURM_ARRAY_TASK_MIN', 'SLURM_ARRAY_TASK_MAX')
    try:
        task, count, first, last = (int(env[name]) for name in names)
        step = int(env.get('SLURM_ARRAY_TASK_STEP', '1'))
    except (KeyError, ValueError):
        raise ValueError('--shard from a slurm job array: ' + ', '.join(f'{n}={env.get(n)!r}' for n in names)
                         + ' must all be integers; pass --shard I/N') from None
    if not first <= task <= last:
        raise ValueError(f'--shard from a slurm job array: SLURM_ARRAY_TASK_ID={task} is outside its array, whose '
                         f'tasks are {first}..{last} (SLURM_ARRAY_TASK_MIN..SLURM_ARRAY_TASK_MAX); start the shards '
                         'as tasks of that array, or pass --shard I/N')
    if step != 1 or last - first + 1 != count:
        raise ValueError(f'--shard from a slurm job array: tasks {first}..{last} (step {step}, {count} tasks) are not '
                         'one contiguous range, so tasks cannot be numbered as shards; use --array=0-N-1 or pass '
                         '--shard I/N')
    return task - first, count


def cmd_study(args: argparse.Namespace, rest: list[str]) -> int:
    import os

    plug_in()
    from srprune_basicsr.study.runner import Study, load_study

    if args.tables and (args.arms or args.shard):
        raise ValueError('--tables writes the tables of every finished run and trains nothing: --arms and --shard '
                         'do not apply to it')
    if args.pool:
        return pool_studies(args)
    if args.pool_root:
        raise ValueError('--pool-root is where --pool writes; give --pool OPT too')
    shard = args.shard or slurm_array_shard(os.environ) or (0, 1)
    study = Study(load_study(args.opt), args.root)
    if shard != (0, 1):
        print(f'study shard {shard[0]}/{shard[1]}')
    if args.tables:
        study.tables(refuse_empty=True)
    else:
        study.run(shard=shard, arms=args.arms)
    print(f'study -> {study.root}/study.md (+ study.csv, psnr_vs_ratio_*.png, training_curves.png)')
    return 0


def pool_studies(args: argparse.Namespace) -> int:
    """``--pool``: the tables of this study's runs and the other studies', seeds pooled (trains nothing)."""
    from srprune_basicsr.study.pooling import default_root, write_pooled
    from srprune_basicsr.study.runner import Study, load_study

    if args.arms or args.shard or args.tables:
        raise ValueError('--pool writes pooled tables of finished runs and trains nothing: --arms, --shard and '
                         '--tables do not apply to it')
    studies = [Study(load_study(args.opt), args.root)] + [Study(load_study(opt)) for opt in args.pool]
    written = write_pooled(studies, args.pool_root or default_root(studies[0]))
    print(f"pooled -> {written['md']} (+ study.csv and plots)")
    return 0


def add_parser(sub: argparse._SubParsersAction, fmt: type) -> None:
    p = sub.add_parser('study', help='train every arm (full, random, each method, bands, distilled) with the '
                       'same budget and seeds, evaluate, table', formatter_class=fmt,
                       epilog='example: srprune study -opt options/study/cpu_fsrcnn_x2.yml   (rerun to resume)')
    p.add_argument('-opt', required=True, help='study option file (see options/study/)')
    p.add_argument('--root', default=None, help='study folder (default: studies/<name>)')
    p.add_argument('--shard', type=_shard, default=None, metavar='I/N',
                   help='run only pairs I, I+N, ... (0-based): N processes share one study folder; the last '
                   'to finish writes the full tables (default: the slurm job array task, else 0/1)')
    p.add_argument('--arms', nargs='+', default=None, metavar='PATTERN',
                   help='run only the arms whose label matches a pattern (e.g. full "random@*"), such as the random '
                   'yardstick before any rule; the tables still count every finished run')
    p.add_argument('--pool', nargs='+', default=None, metavar='OPT',
                   help='write the tables of this study and these studies (say its fresh-seed confirmation) with '
                   'their seeds pooled, for the arms every study trains the same way; trains nothing (--root '
                   'names this study\'s folder; each OPT study is read from studies/<its name>)')
    p.add_argument('--pool-root', default=None, metavar='DIR',
                   help='folder of the pooled tables (default: <name>_pooled beside this study\'s folder)')
    p.add_argument('--tables', action='store_true',
                   help='only write the tables and plots from the runs finished so far (train nothing)')
    p.set_defaults(func=cmd_study)
