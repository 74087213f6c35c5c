"""The ``srprune`` command: thin wiring of argparse onto the library functions, one module per verb.

Only the chosen verb's library code is imported, after parsing: ``srprune --help``, ``select`` and
``lmdb verify`` import neither torch nor basicsr; the verbs that run BasicSR call ``plug_in()``.

An error the plugin raises for a bad option, file or key (a ``ValueError``, or one of the ``OSError``
kinds in ``USER_ERRORS``, raised in the plugin's own code) ends the command with one line and exit
code 2; anything else keeps its traceback, and so does every error under ``--debug``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from srprune_basicsr.cli import demo, fixes, lmdb, prepare, report, score, select, study, train
from srprune_basicsr.cli.errors import USER_ERRORS, raised_by_plugin

VERBS = (prepare, lmdb, score, select, report, study, demo, fixes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='srprune', description='Data-efficient SR training on BasicSR.')
    parser.add_argument('--debug', action='store_true', help='show the full traceback of any error')
    sub = parser.add_subparsers(dest='command', required=True)
    fmt = argparse.RawDescriptionHelpFormatter
    parser.passthrough = train.add_parsers(sub, fmt)  # type: ignore[attr-defined]
    for verb in VERBS:
        verb.add_parser(sub, fmt)
    return parser


def run(command: Callable[[], int], name: str, debug: bool) -> int:
    """Run a verb; the plugin's own errors become one line on stderr and exit code 2."""
    try:
        return command()
    except USER_ERRORS as err:
        if debug or not raised_by_plugin(err):
            raise
        print(f'srprune {name}: error: {err}', file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = bool(argv) and argv[0] == '--debug'
    argv = argv[1:] if debug else argv
    parser = build_parser()
    if argv and argv[0] in ('train', 'test'):
        if len(argv) == 1 or argv[1] in ('-h', '--help'):
            parser.passthrough[argv[0]].print_help()
            return 0
        command = train.cmd_train if argv[0] == 'train' else train.cmd_test
        namespace = argparse.Namespace(command=argv[0])
        return run(lambda: command(namespace, argv[1:]), argv[0], debug or '--debug' in argv)
    args = parser.parse_args(attach_dashed_values(argv))
    return run(lambda: args.func(args, []), args.command, debug)


VALUE_OPTIONS = ('--shard',)  # options whose value may begin with '-' (a mistyped '-1/2' deserves its own error)


def attach_dashed_values(argv: list[str]) -> list[str]:
    """``--shard -1/2`` -> ``--shard=-1/2``: argparse takes a value that starts with '-' for an option and says
    only "expected one argument"; attached, the option's own check names what is wrong with the value."""
    out: list[str] = []
    for word in argv:
        if out and out[-1] in VALUE_OPTIONS and word.startswith('-') and word[1:2].isdigit():
            out[-1] = f'{out[-1]}={word}'
            continue
        out.append(word)
    return out


if __name__ == '__main__':
    sys.exit(main())
