"""``srprune fixes``: which of the plugin's basicsr fixes apply to the basicsr this process imports, and why not.

A repo that ships its own ``basicsr`` (DAT, SRFormer, MambaIR) is imported instead of the installed
one when the command runs in its root with ``PYTHONPATH=.``, as its ``train.py`` does.
"""

from __future__ import annotations

import argparse
import json


def _import_basicsr() -> None:
    """Import basicsr as a training run does (the early fixes first); failing that, one error line."""
    from srprune_basicsr._basicsr.fixes import install_shim

    install_shim()
    try:
        import basicsr  # noqa: F401
    except ImportError as err:
        raise ValueError(f'cannot import basicsr: {type(err).__name__}: {err}') from None


def _table(identity: str, rows: list) -> str:
    """The statuses as an aligned table under the basicsr they were checked against."""
    width = max(len(row.name) for row in rows)
    lines = [identity, f"{'fix':<{width}}  {'kind':<9}  applies  why not"]
    lines += [f'{row.name:<{width}}  {row.kind:<9}  {row.state:<7}  {row.why_not}'.rstrip() for row in rows]
    return '\n'.join(lines)


def cmd_fixes(args: argparse.Namespace, rest: list[str]) -> int:
    _import_basicsr()
    from srprune_basicsr._basicsr.fixes import basicsr_found, statuses

    (version, folder), rows = basicsr_found(), statuses()
    if args.json:
        print(json.dumps({'basicsr': {'version': version, 'path': folder}, 'fixes': [
            {'name': r.name, 'kind': r.kind, 'applies': r.state, 'why_not': r.why_not} for r in rows]}, indent=1))
    else:
        print(_table(f'basicsr {version} ({folder})', rows))
    return 0


def add_parser(sub: argparse._SubParsersAction, fmt: type) -> None:
    p = sub.add_parser('fixes', help='list the basicsr fixes, whether each applies to the basicsr at hand, and why not',
                       epilog='example (in a repo that ships its own basicsr): PYTHONPATH=. srprune fixes')
    p.add_argument('--json', action='store_true', help='print JSON instead of a table')
    p.set_defaults(func=cmd_fixes)
