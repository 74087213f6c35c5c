"""Auto-registration: BasicSR's own entry points get srprune_basicsr with no import added.

pip installs ``srprune_basicsr-autoload.pth`` into site-packages; Python runs its one line at
start-up, which calls ``install()`` here. That only puts a finder at the front of
``sys.meta_path``; it answers for the module ``basicsr`` alone, so a process that never imports
basicsr pays for one small module and nothing more. When something imports basicsr (``python -m
basicsr.train``, a clone's ``basicsr/train.py``, Real-ESRGAN's or HAT's ``train.py``, a repo's own
copy of basicsr), the finder runs the fixes that must precede the import (``import basicsr`` fails
without the functional_tensor shim on current torchvision), lets basicsr import, then plugs
srprune_basicsr in, and steps aside.

``SRPRUNE_AUTOLOAD=0`` switches plugging in off. The finder then only guards: BasicSR ignores keys
it does not know, so an option file with a ``prune:``, ``prune_tracking:`` or ``prune_online:``
block would train without it, exit 0 and say nothing; its ``parse_options`` refuses such a file
unless srprune_basicsr was imported by other means. This module must stay free of heavy imports.
"""

from __future__ import annotations

import os
import sys

# importlib.abc and typing cost milliseconds at every start-up: the finder and loader are duck-typed

ENV = 'SRPRUNE_AUTOLOAD'
TARGET = 'basicsr'
DATASET_BLOCKS = ('prune',)  # the plugin's blocks BasicSR would ignore (see srprune_basicsr.options)
TOP_BLOCKS = ('prune_tracking', 'prune_online')
loading = False  # True while basicsr itself executes: the package then defers plug_in() to us


def enabled() -> bool:
    """Whether auto-registration is on (it is unless ``SRPRUNE_AUTOLOAD`` is 0, false, no or off)."""
    return os.environ.get(ENV, '1').strip().lower() not in ('0', 'false', 'no', 'off')


def unplugged_blocks(opt: object) -> list[str]:
    """The plugin's blocks an option dict sets (``datasets:train:prune``), which BasicSR alone ignores."""
    if not isinstance(opt, dict):
        return []
    found = [name for name in TOP_BLOCKS if opt.get(name)]
    datasets = opt.get('datasets')
    for phase, dataset in (datasets.items() if isinstance(datasets, dict) else ()):
        if isinstance(dataset, dict):
            found += [f'datasets:{phase}:{name}' for name in DATASET_BLOCKS if dataset.get(name)]
    return found


def plugged_in() -> bool:
    """Whether srprune_basicsr plugged into BasicSR in this process (e.g. a train.py that imports it)."""
    plugin = sys.modules.get('srprune_basicsr.plugin')
    return 'done' in getattr(plugin, '_progress', ())


def refuse_unplugged(opt: object, option_file: object) -> None:
    """Refuse an option file whose plugin blocks BasicSR would silently ignore (the plugin is not in)."""
    blocks = unplugged_blocks(opt)
    if blocks and not plugged_in():
        raise ValueError(
            f"{option_file or 'option file'}: {', '.join(blocks)}: srprune_basicsr is not plugged in ({ENV}=0), so "
            'BasicSR would ignore this block and train without it (on every sample, for prune:); unset '
            f'{ENV} (to switch off one fix of basicsr instead: SRPRUNE_COMPAT_DISABLE=<fix>, listed by '
            '`srprune fixes`), import srprune_basicsr in train.py, or remove the block')


def _guarded_parse(original: object) -> object:
    def parse_options(*args: object, **kwargs: object) -> object:
        opt, parsed = original(*args, **kwargs)
        refuse_unplugged(opt, getattr(parsed, 'opt', None))
        return opt, parsed

    parse_options.__wrapped__ = original
    return parse_options


def guard() -> None:
    """Wrap basicsr's ``parse_options`` where basicsr's modules hold it, so unplugged blocks are refused."""
    try:
        import basicsr.utils.options as options
    except ModuleNotFoundError as err:
        if err.name != 'basicsr.utils.options':
            raise
        return  # a basicsr without BasicSR's option parser runs no train_pipeline
    original = options.parse_options
    wrapped = _guarded_parse(original)
    for name, module in list(sys.modules.items()):
        if (name == TARGET or name.startswith(f'{TARGET}.')) and getattr(module, 'parse_options', None) is original:
            module.parse_options = wrapped


class _PluggingLoader:
    """basicsr's own loader, with the early fixes before and ``plug_in()`` (or the guard) after its execution."""

    def __init__(self, inner: object, plug: bool = True) -> None:
        self.inner = inner
        self.plug = plug

    def create_module(self, spec: object) -> object:
        return self.inner.create_module(spec)

    def exec_module(self, module: object) -> None:
        global loading
        uninstall()
        loading = True
        try:
            if self.plug:
                from srprune_basicsr._basicsr.fixes import install_shim

                install_shim()
            self.inner.exec_module(module)
        finally:
            loading = False
            module.__loader__ = module.__spec__.loader = self.inner  # resource readers and the like are its
        if self.plug:
            _plug_in()
        else:
            guard()


def _plug_in() -> None:
    """Plug srprune_basicsr in; an error notes the switch that helps (a fix's own, when a fix raised it)."""
    try:
        from srprune_basicsr.plugin import plug_in

        plug_in()
    except Exception as err:
        fix = getattr(err, 'srprune_fix', None)
        where = 'raised while srprune_basicsr plugged into basicsr on import (auto-registration)'
        if fix is None:
            err.add_note(f'{where}; {ENV}=0 imports basicsr without it (an option file with prune:, '
                         'prune_tracking: or prune_online: is then refused, as BasicSR alone would ignore it)')
        else:
            err.add_note(f'{where}; to train without the fix {fix}, set SRPRUNE_COMPAT_DISABLE={fix}')
        raise


class BasicsrFinder:
    """Finds ``basicsr`` with the finders behind it and wraps its loader; every other name passes."""

    def __init__(self, plug: bool = True) -> None:
        self.plug = plug

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, BasicsrFinder):
                continue
            find = getattr(finder, 'find_spec', None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, 'exec_module'):
                    spec.loader = _PluggingLoader(spec.loader, self.plug)
                return spec
        return None


def uninstall() -> None:
    """Take the finder off ``sys.meta_path`` (it has one job, done once per process)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, BasicsrFinder)]


def install() -> None:
    """Called by the ``.pth`` line at start-up: add the finder (plugging in, or guarding when switched off)."""
    if TARGET not in sys.modules and not any(isinstance(f, BasicsrFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, BasicsrFinder(plug=enabled()))
