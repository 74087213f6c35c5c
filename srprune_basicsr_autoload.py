"""Auto-registration: BasicSR's own entry points get srprune_basicsr with no import added.

pip installs ``srprune_basicsr-autoload.pth`` into site-packages; Python runs its one line at
start-up, which calls ``install()`` here. That only puts a finder at the front of
``sys.meta_path``; it answers for the module ``basicsr`` alone, so a process that never imports
basicsr pays for one small module and nothing more. When something imports basicsr (``python -m
basicsr.train``, a clone's ``basicsr/train.py``, Real-ESRGAN's or HAT's ``train.py``), the finder
runs the functional_tensor shim first (``import basicsr`` fails without it on current
torchvision), lets basicsr import, then plugs srprune_basicsr in, and steps aside.

``SRPRUNE_AUTOLOAD=0`` switches it off. This module must stay free of heavy imports.
"""

from __future__ import annotations

import os
import sys

# importlib.abc and typing cost milliseconds at every start-up: the finder and loader are duck-typed

ENV = 'SRPRUNE_AUTOLOAD'
TARGET = 'basicsr'
loading = False  # True while basicsr itself executes: the package then defers plug_in() to us


def enabled() -> bool:
    """Whether auto-registration is on (it is unless ``SRPRUNE_AUTOLOAD`` is 0, false, no or off)."""
    return os.environ.get(ENV, '1').strip().lower() not in ('0', 'false', 'no', 'off')


class _PluggingLoader:
    """basicsr's own loader, with the shim before and ``plug_in()`` after its execution."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def create_module(self, spec: object) -> object:
        return self.inner.create_module(spec)

    def exec_module(self, module: object) -> None:
        global loading
        uninstall()
        loading = True
        try:
            from srprune_basicsr._basicsr.compat import install_shim

            install_shim()
            self.inner.exec_module(module)
        finally:
            loading = False
            module.__loader__ = module.__spec__.loader = self.inner  # resource readers and the like are its
        try:
            from srprune_basicsr.plugin import plug_in

            plug_in()
        except Exception as err:
            err.add_note(f'raised while srprune_basicsr plugged into basicsr on import (auto-registration); '
                         f'set {ENV}=0 to import basicsr without it')
            raise


class BasicsrFinder:
    """Finds ``basicsr`` with the finders behind it and wraps its loader; every other name passes."""

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
                    spec.loader = _PluggingLoader(spec.loader)
                return spec
        return None


def uninstall() -> None:
    """Take the finder off ``sys.meta_path`` (it has one job, done once per process)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, BasicsrFinder)]


def install() -> None:
    """Called by the ``.pth`` line at start-up: add the finder unless switched off or basicsr is already in."""
    if enabled() and TARGET not in sys.modules and not any(isinstance(f, BasicsrFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, BasicsrFinder())
