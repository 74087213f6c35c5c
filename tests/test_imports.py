"""The package's import graph: no cycles, and each stage imports only the layers below it.

Every ``import srprune_basicsr...`` in every module counts, the ones inside functions too, so a
lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / 'srprune_basicsr'
# bottom first; a module may import its own top-level package and any layer strictly below its own
LAYERS = [
    {'version', 'worker_env'},
    {'formats'},
    {'options', 'refusals'},
    {'bicubic', 'metrics', '_basicsr', 'presets', 'checks'},
    {'prepare'},
    {'scoring'},
    {'selection'},
    {'rebuild'},
    {'distill'},
    {'online'},
    {'archs', 'data', 'models'},
    {'report'},
    {'study'},
    {'plugin', 'preflight'},
    {'cli'},
    {'__init__', '__main__'},
]
LAYER = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def top(module: str) -> str:
    """The layer name of a module: its first component under the package ('__init__' for the package)."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '__init__'


def imports_of(path: Path, module: str) -> set[str]:
    """Every srprune_basicsr module a file imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    found = set()
    package = module if path.name == '__init__.py' else module.rpartition('.')[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith('srprune_basicsr')}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:  # relative: up ``level - 1`` packages from this one
                parts = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(parts + ([base] if base else []))
            if base.startswith('srprune_basicsr'):
                for alias in node.names:
                    candidate = f'{base}.{alias.name}'
                    found.add(candidate if candidate in MODULES else base)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob('*.py'))}
GRAPH = {name: imports_of(path, name) - {name} for name, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    assert {top(m) for m in MODULES} <= set(LAYER), sorted({top(m) for m in MODULES} - set(LAYER))


def test_imports_only_go_down() -> None:
    upward = [f'{a} -> {b}' for a, targets in GRAPH.items() for b in targets
              if top(a) != top(b) and LAYER[top(b)] >= LAYER[top(a)]]
    assert not upward, upward


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(' -> '.join(path[path.index(nxt):] + [nxt]) if nxt in path else f'{node} -> {nxt}')
            elif nxt in GRAPH and state.get(nxt) is None:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in GRAPH:
        if state.get(module) is None:
            visit(module, [module])
    assert not cycles, cycles


def test_the_file_layer_imports_no_torch_or_basicsr() -> None:
    heavy = [(m, node) for m, path in MODULES.items() if top(m) in ('formats', 'options', 'selection')
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, (ast.Import, ast.ImportFrom))
             for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ''])
             if name.split('.')[0] in ('torch', 'basicsr')]
    assert not heavy, [m for m, _ in heavy]
