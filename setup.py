"""Packaging beyond setup.cfg: install ``srprune_basicsr-autoload.pth`` into site-packages.

The ``.pth`` file's one line makes BasicSR's own entry points load the plugin with no import
added (see ``srprune_basicsr_autoload``). setuptools has no option for a file at the root of
site-packages, so ``build_py`` copies it there for wheels, and editable installs (PEP 660) write
it into their wheel beside setuptools' own ``__editable__`` path file.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = 'srprune_basicsr-autoload.pth'
PTH_LINE = 'import srprune_basicsr_autoload; srprune_basicsr_autoload.install()\n'


class BuildPyWithPth(build_py):
    """``build_py`` that also places the ``.pth`` file at the root of the built library."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib, PTH)
        target.write_text(PTH_LINE)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return super().get_outputs(include_bytecode) + [str(Path(self.build_lib, PTH))]


class _StrategyWithPth:
    """Wraps setuptools' editable strategy so the editable wheel carries the ``.pth`` file too."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __enter__(self):
        self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc)

    def __call__(self, wheel, files, mapping) -> None:
        self.inner(wheel, files, mapping)
        wheel.writestr(PTH, PTH_LINE.encode())


def _cmdclass() -> dict:
    commands = {'build_py': BuildPyWithPth}
    try:
        from setuptools.command.editable_wheel import editable_wheel
    except ImportError:  # setuptools < 64: `setup.py develop` has no wheel to carry the file
        return commands

    class EditableWheelWithPth(editable_wheel):
        def _select_strategy(self, *args, **kwargs):
            return _StrategyWithPth(super()._select_strategy(*args, **kwargs))

    commands['editable_wheel'] = EditableWheelWithPth
    return commands


setup(cmdclass=_cmdclass())
