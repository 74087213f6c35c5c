"""What a fix is, and how it finds out whether the basicsr at hand has what it fixes.

Repos such as DAT, SRFormer and MambaIR ship their own trimmed ``basicsr`` package (an older
version, without ``data/degradations.py`` or ``ops/``), which Python imports instead of the
installed basicsr 1.4.2. A fix that patches a module or attribute such a copy lacks has nothing to
fix there: it is skipped, and the reason is recorded (``srprune fixes`` shows it, the training log
sums it up), instead of the missing import ending the run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from srprune_basicsr._basicsr.switches import ENV, enabled


@dataclass(frozen=True)
class Fix:
    """One fix: its switch name, what it repairs, and what it must find in basicsr (or torch) to apply.

    ``needs`` entries are ``module`` or ``module:Attr.path``. ``early`` fixes run before the first
    ``import basicsr`` (the import itself fails without them), so they can need nothing of basicsr.
    """

    name: str
    kind: str  # 'version' (basicsr predates torch/torchvision/Python) or 'semantics' (what is trained)
    summary: str
    needs: tuple[str, ...]
    apply: Callable[[], None]
    early: bool = False


@dataclass(frozen=True)
class Status:
    """Whether a fix applies to the basicsr at hand, and why not when it does not."""

    name: str
    kind: str
    applies: bool
    why_not: str = ''
    switched_off: bool = False

    @property
    def state(self) -> str:
        return 'off' if self.switched_off else 'yes' if self.applies else 'no'


def _is_part_of(missing: str | None, module: str) -> bool:
    """Whether the module an import could not find is ``module`` itself or one of its parent packages."""
    return bool(missing) and (module == missing or module.startswith(f'{missing}.'))


def missing_piece(need: str) -> str | None:
    """The first part of ``need`` the importable code lacks (``basicsr.data.degradations``), None if all is there.

    Only a module that is absent counts as missing: an error raised while a present module imports
    (another package missing, a syntax error) propagates, as it would without the plugin.
    """
    module_name, _, path = need.partition(':')
    try:
        target = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if not _is_part_of(err.name, module_name):
            raise
        return err.name
    where = module_name
    for attribute in filter(None, path.split('.')):
        where = f'{where}.{attribute}'
        if not hasattr(target, attribute):
            return where
        target = getattr(target, attribute)
    return None


def check(fix: Fix) -> Status:
    """The fix's status against what is importable now (imports the modules it needs, applies nothing)."""
    if not enabled(fix.name):
        return Status(fix.name, fix.kind, False, f'switched off ({ENV})', switched_off=True)
    for need in fix.needs:
        missing = missing_piece(need)
        if missing is not None:
            return Status(fix.name, fix.kind, False, f'missing {missing}')
    return Status(fix.name, fix.kind, True)


def basicsr_found() -> tuple[str, str]:
    """(version, folder) of the basicsr imported (or importable) now: which copy the fixes were checked against."""
    import importlib
    import os

    import basicsr

    version = getattr(basicsr, '__version__', None)
    if version is None:
        try:
            version = importlib.import_module('basicsr.version').__version__
        except (ImportError, AttributeError):
            version = 'unknown'
    return str(version), os.path.dirname(os.path.abspath(basicsr.__file__))


def basicsr_identity() -> str:
    """``basicsr <version> (<folder>)``, for messages."""
    version, folder = basicsr_found()
    return f'basicsr {version} ({folder})'
