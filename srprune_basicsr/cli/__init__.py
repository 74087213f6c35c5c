"""The ``srprune`` command: thin wiring of argparse onto the library functions, one module per verb.

Only the chosen verb's library code is imported, after parsing: ``srprune --help``, ``select`` and
``lmdb verify`` import neither torch nor basicsr; the verbs that run BasicSR call ``plug_in()``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from srprune_basicsr.cli import demo, lmdb, prepare, report, score, select, study, train

VERBS = (prepare, lmdb, score, select, report, study, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='srprune', description='Data-efficient SR training on BasicSR.')
    sub = parser.add_subparsers(dest='command', required=True)
    fmt = argparse.RawDescriptionHelpFormatter
    parser.passthrough = train.add_parsers(sub, fmt)  # type: ignore[attr-defined]
    for verb in VERBS:
        verb.add_parser(sub, fmt)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ('train', 'test'):
        if len(argv) == 1 or argv[1] in ('-h', '--help'):
            parser.passthrough[argv[0]].print_help()
            return 0
        command = train.cmd_train if argv[0] == 'train' else train.cmd_test
        return command(argparse.Namespace(command=argv[0]), argv[1:])
    args = parser.parse_args(argv)
    try:
        return args.func(args, [])
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f'srprune {args.command}: error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
