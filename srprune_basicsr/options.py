"""Option files and option blocks: one YAML loader, one check for unknown keys, blocks as dataclasses.

Every option file the plugin reads (score, study, and the BasicSR option files it writes) goes
through ``load_yaml``, which reads BasicSR's YAML dialect into plain dicts (``!!float 2e-4`` for
floats) and refuses a key given twice in one mapping (YAML loaders keep the last one silently);
``check_unique_keys_of`` does the same for a file BasicSR's own ``parse_options`` read. A block
such as ``prune:`` or ``prune_tracking:`` becomes a small frozen dataclass with ``option_block``,
which refuses unknown keys naming the file (or the place in it) and the key. ``check_run_name``
keeps a run's ``name:`` a plain folder name.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar('T')


LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
MERGE_TAG = 'tag:yaml.org,2002:merge'


@contextmanager
def yaml_errors(path: Path) -> Iterator[None]:
    """A malformed or binary YAML file becomes one error naming it (and the line), not a parser traceback."""
    try:
        yield
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f'{path}:{mark.line + 1}' if mark else str(path)
        problem = getattr(err, 'problem', None) or str(err).splitlines()[0]
        raise ValueError(f'{where}: not valid YAML ({problem})') from None
    except UnicodeDecodeError as err:
        raise ValueError(f'{path}: not a text file (byte {err.start} is not UTF-8)') from None


def load_yaml(path: str | os.PathLike, what: str = 'option file') -> dict:
    """A YAML option file as plain dicts and lists; a missing or malformed file, or a key given twice, is an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: no such {what}')
    with yaml_errors(path):
        loader = LOADER(path.read_text())
        try:
            node = loader.get_single_node()  # parsed once: the keys are checked on the nodes, then built
            check_unique_keys(node, str(path))
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a mapping of options, got {type(data).__name__}')
    return data


def check_unique_keys_of(path: str | os.PathLike) -> None:
    """Refuse a key given twice in an option file read by another loader (BasicSR's ``parse_options``).

    Only the file's structure is read (no tag is built), so a file BasicSR's loader accepts is
    refused for nothing but a repeated key.
    """
    path = Path(path)
    with yaml_errors(path):
        node = yaml.compose(path.read_text(), Loader=LOADER)
    check_unique_keys(node, str(path))


def check_unique_keys(node: yaml.Node | None, source: str) -> None:
    """A key given twice in one mapping, at any depth, is refused naming both lines.

    YAML loaders (PyYAML's, and BasicSR's ordered one) keep the last value without a word, so a
    second ``name:`` further down a long option file silently renames the run. Merge keys
    (``<<: *base``) and the keys they bring in are not repeats.
    """
    for path, mapping in _mappings(node, '', set()):
        first: dict[tuple[str, str], yaml.Node] = {}
        for key, _ in mapping.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == MERGE_TAG:
                continue
            seen = first.setdefault((key.tag, key.value), key)
            if seen is not key:
                raise ValueError(f'{source}: key {path}{key.value} is given twice (lines {seen.start_mark.line + 1} '
                                 f'and {key.start_mark.line + 1}); YAML would silently keep the second: remove one')


def _mappings(node: yaml.Node | None, path: str, visited: set[int]) -> Iterator[tuple[str, yaml.MappingNode]]:
    """Every mapping node under ``node`` with its key path (``datasets:train:``); an alias is walked once."""
    if node is None or id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        yield path, node
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else '?'
            yield from _mappings(value, f'{path}{name}:', visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _mappings(item, f'{path}{index}:', visited)


def run_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a run's folder name (None when it is a plain folder name)."""
    if name is None:
        return 'is missing (or empty)'
    if not isinstance(name, str):
        return f'{name!r} is not text but a {type(name).__name__} (quote it)'
    if name in ('', '.', '..'):
        return f'{name!r} is not a folder name'
    bad = [c for c in ('/', '\\', '\0') if c in name]
    if bad or os.path.isabs(name):
        return f'{name!r} is a path (it holds {bad[0] if bad else "an absolute path"!r}), not a folder name'
    return None


def check_run_name(name: object, source: str) -> None:
    """Refuse a ``name:`` that is not a plain folder name, before any folder is made from it.

    BasicSR makes ``experiments/<name>`` (``results/<name>``, ``tb_logger/<name>``) and first moves
    aside whatever is there (``mkdir_and_rename``): ``name: ../data`` would rename the user's data
    folder to ``data_archived_*``, ``../../x`` would write outside ``experiments/``, and ``""``
    would rename ``experiments/`` itself.
    """
    problem = run_name_problem(name)
    if problem:
        raise ValueError(f"{source}: name: {problem}; BasicSR makes experiments/<name> from it and first moves "
                         "aside what is there, so name: must be a plain folder name (not empty, '.' or '..', "
                         'no / or \\)')


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
    package, or one that fails in its own code while importing (an old package on a newer torch,
    a dependency it lacks), is an error naming the file, the package and the exception.
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
            raise ValueError(f'{source}: imports: importing {name!r} failed: {failure(err)}') from None
        except Exception as err:  # noqa: BLE001  (whatever the package raises: one line, not its traceback)
            raise ValueError(f'{source}: imports: importing {name!r} failed: {failure(err)} (the error is raised '
                             f'inside the package; `python -c "import {name}"` shows where)') from None
    return names


def failure(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    lines = str(err).strip().splitlines()
    return f'{type(err).__name__}: {lines[0]}' if lines else type(err).__name__


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
