"""``srprune prepare``: HR images -> sub-images + bicubic LR (+ LMDBs), or benchmark folders."""

from __future__ import annotations

import argparse


def cmd_prepare(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.cli.requires import check_requires, or_default
    from srprune_basicsr.prepare import PrepareConfig, prepare, prepare_benchmark

    check_requires(args, [('--folders', '--lmdb (without it folders are what prepare writes)', args.lmdb)] +
                   [(option, 'sub-images; --benchmark keeps whole images', not args.benchmark)
                    for option in ('--crop', '--step', '--thresh', '--lmdb', '--compress-level', '--workers')])
    scales = tuple(sorted(set(args.scales)))
    if args.benchmark:
        folders = prepare_benchmark(args.hr, args.out, scales, overwrite=args.overwrite)
        print('\n'.join(f'{name}: {path}' for name, path in folders.items()))
        return 0
    cfg = PrepareConfig(crop=or_default(args.crop, 480), step=or_default(args.step, 240),
                        thresh=or_default(args.thresh, 48), scales=scales)
    result = prepare(args.hr, args.out, cfg, lmdb=args.lmdb, folders=args.folders or not args.lmdb,
                     workers=args.workers, compress_level=args.compress_level, overwrite=args.overwrite)
    print(f'{result.images} images -> {result.sub_images} sub-images in {result.out}')
    if result.skipped_small:
        print(f'{len(result.skipped_small)} image(s) smaller than {cfg.crop} px gave no sub-image, '
              f'e.g. {result.skipped_small[:5]}')
    for name, path in {**result.folders, **result.lmdbs}.items():
        print(f'  {name}: {path}')
    return 0


def add_parser(sub: argparse._SubParsersAction, fmt: type) -> None:
    p = sub.add_parser('prepare', help='HR images -> sub-images + bicubic LR (+ LMDBs)', formatter_class=fmt,
                       epilog='example: srprune prepare --hr datasets/DIV2K/HR --out datasets/DIV2K_sub '
                              '--scales 2 4 --crop 480 --step 240 --thresh 48 --lmdb\n'
                              '         srprune prepare --benchmark --hr ../shared/data/Set5/HR --out datasets/Set5')
    p.add_argument('--hr', required=True, help='folder of HR images')
    p.add_argument('--out', required=True, help='output folder (created; refused if it exists)')
    p.add_argument('--scales', type=int, nargs='+', default=[2, 3, 4])
    p.add_argument('--crop', type=int, default=None, help='GT sub-image size (BasicSR: 480)')
    p.add_argument('--step', type=int, default=None, help='stride between sub-images (BasicSR: 240)')
    p.add_argument('--thresh', type=int, default=None, help='add a border crop if more than this is left (48)')
    p.add_argument('--lmdb', action='store_true', help='write BasicSR LMDBs (sub-images go straight in)')
    p.add_argument('--folders', action='store_true', help='also write PNG folders with --lmdb (default without)')
    p.add_argument('--compress-level', type=int, default=None,
                   help='PNG level (default as BasicSR: 1 in LMDBs, 3 in folders)')
    p.add_argument('--benchmark', action='store_true',
                   help='whole images: GTmod12 + LRbicx{s}, for validation and test sets')
    p.add_argument('--workers', type=int, default=None, help='processes (default: all cores)')
    p.add_argument('--overwrite', action='store_true')
    p.set_defaults(func=cmd_prepare)
