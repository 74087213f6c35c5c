"""Option files and option blocks: one YAML loader, one check for unknown keys, blocks as dataclasses.

Every option file the plugin reads (score, study, and the BasicSR option files it writes) goes
through ``load_yaml``, which reads BasicSR's YAML dialect into plain dicts (``!!float 2e-4`` for
floats). A block such as ``prune:`` or ``prune_tracking:`` becomes a small frozen dataclass with
``option_block``, which refuses unknown keys naming the file (or the place in it) and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar('T')


def load_yaml(path: str | os.PathLike, what: str = 'option file') -> dict:
    """A YAML option file as plain dicts and lists; a missing or malformed file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: no such {what}')
    try:
        data = yaml.load(path.read_text(), Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f'{path}:{mark.line + 1}' if mark else str(path)
        problem = getattr(err, 'problem', None) or str(err).splitlines()[0]
        raise ValueError(f'{where}: not valid YAML ({problem})') from None
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a mapping of options, got {type(data).__name__}')
    return data


def imports_of(opt: dict, source: str) -> list[str]:
    """The package names of an option file's ``imports:`` (one name or a list of names)."""
    names = opt.get('imports') or []
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f'{source}: imports must be a list of package names, got {opt.get("imports")!r}')
    return names


def import_packages(opt: dict, source: str) -> list[str]:
    """Import the packages an option file names in ``imports:`` (their archs, datasets and models register).

    Third-party components (Real-ESRGAN's, HAT's) register with BasicSR's registries when their
    package is imported; ``imports: [realesrgan]`` does that before anything is built. A missing
    package is an error naming the file and the package.
    """
    import importlib

    names = imports_of(opt, source)
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name or name.startswith(f'{err.name}.'):
                raise ValueError(f'{source}: imports: package {name!r} is not installed (pip install it, or remove '
                                 'it from imports)') from None
            raise ValueError(f'{source}: imports: importing {name!r} failed: {err}') from None
    return names


def check_keys(block: dict, known: Iterable[str], source: str, prefix: str = '') -> None:
    """Refuse keys outside ``known``; the error names ``source`` and the block (``prefix``, e.g. 'score: ')."""
    known = set(known)
    unknown = set(block) - known
    if unknown:
        raise ValueError(f'{source}: unknown {prefix}key(s) {sorted(unknown)}; known: {sorted(known)}')


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def option_block(cls: type[T], block: Any, source: str) -> T:
    """Build the dataclass ``cls`` from a YAML mapping; its ``__post_init__`` validates the values."""
    if not isinstance(block, dict):
        raise ValueError(f'{source}: expected a mapping of options, got {block!r}')
    check_keys(block, field_names(cls), source)
    return cls(**block)


def trained_options(checkpoint: str | os.PathLike) -> tuple[dict, Path] | None:
    """The option file a BasicSR checkpoint was trained with, when its experiment folder still holds it.

    BasicSR saves ``experiments/<name>/models/net_g_*.pth`` and copies the option file into
    ``experiments/<name>/``, so ``<checkpoint>/../../*.yml`` says the scale and arch it learned.
    """
    checkpoint = Path(checkpoint)
    if checkpoint.parent.name != 'models':
        return None
    for option_file in sorted(checkpoint.parent.parent.glob('*.yml')):
        try:
            return load_yaml(option_file), option_file
        except ValueError:
            continue
    return None


PLUGIN_BLOCKS = ('prune_tracking', 'prune_online', 'distill', 'imports')  # top-level blocks of a BasicSR option file
DATASET_BLOCKS = ('prune',)  # blocks inside datasets:<name>


def near_miss(key: object, names: tuple[str, ...]) -> str | None:
    """The one of ``names`` that ``key`` is probably a misspelling of (None for an exact name or no close one)."""
    if not isinstance(key, str) or key in names:
        return None
    near = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    return near[0] if near else None


def check_block_names(opt: dict, source: str) -> None:
    """A key that is a near miss of one of the plugin's blocks is refused, at the top level and in datasets.

    BasicSR ignores keys it does not know, so ``prune_trackng:`` would train to the end without
    tracking and exit 0, and ``prun:`` would train on the full set.
    """
    places = [('', opt, PLUGIN_BLOCKS)] + [(f'datasets:{name}:', block, DATASET_BLOCKS)
                                          for name, block in (opt.get('datasets') or {}).items()
                                          if isinstance(block, dict)]
    for prefix, block, names in places:
        for key in block:
            near = near_miss(key, names)
            if near:
                raise ValueError(f'{source}: unknown key {prefix}{key}; did you mean {prefix}{near}? (BasicSR ignores '
                                 'keys it does not know, so this block would do nothing)')
