"""``srprune lmdb build|rebuild|verify``: BasicSR LMDB tools (``verify`` imports no torch)."""

from __future__ import annotations

import argparse


def cmd_lmdb_build(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.formats.lmdb import build_lmdb_from_folder

    count = build_lmdb_from_folder(args.folder, args.out, overwrite=args.overwrite)
    print(f'{count} images -> {args.out}')
    return 0


def cmd_lmdb_rebuild(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.rebuild import rebuild_lmdbs

    result = rebuild_lmdbs(args.src, args.keep, args.out, overwrite=args.overwrite)
    print(f'kept {result.kept}, dropped {result.dropped} -> {result.out}')
    for path in result.lmdbs:
        print(f'  {path}')
    return 0


def cmd_lmdb_verify(args: argparse.Namespace, rest: list[str]) -> int:
    from srprune_basicsr.formats.lmdb import verify_lmdb

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


def add_parser(sub: argparse._SubParsersAction, fmt: type) -> None:
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
