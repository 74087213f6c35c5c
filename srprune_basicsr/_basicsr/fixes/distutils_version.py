"""``distutils_version``: basicsr's ``arch_util`` imports ``distutils.version``, which Python 3.12 removed.

Runs before basicsr is first imported (the import itself fails without it).
"""

from __future__ import annotations

import functools
import re
import sys
import types
from typing import Any

from srprune_basicsr._basicsr.fixes.base import Fix


@functools.total_ordering
class LooseVersion:
    """Enough of ``distutils.version.LooseVersion`` for basicsr: numbers compare as numbers, words as words."""

    def __init__(self, text: str) -> None:
        self.text = str(text)
        parts = [p for p in re.split(r'(\d+|[a-z]+|\.)', self.text.lower()) if p and p != '.']
        self.version = [int(p) if p.isdigit() else p for p in parts]

    def _key(self) -> list[tuple[int, Any]]:
        return [(0, p) if isinstance(p, int) else (1, p) for p in self.version]

    def __eq__(self, other: object) -> bool:
        return self._key() == _as_version(other)._key()

    def __lt__(self, other: object) -> bool:
        return self._key() < _as_version(other)._key()

    __hash__ = None  # mutable like distutils' own

    def __str__(self) -> str:
        return self.text


def _as_version(value: object) -> LooseVersion:
    return value if isinstance(value, LooseVersion) else LooseVersion(str(value))


def install_distutils_version_shim() -> None:
    """Provide ``distutils.version.LooseVersion`` where Python has no distutils (3.12 and later).

    basicsr.archs.arch_util imports it at import time, so ``import basicsr`` fails on Python 3.12+
    unless setuptools happens to stand in for distutils. basicsr uses it to compare torchvision
    versions only. A real distutils (Python 3.11, or setuptools' copy) is left in place.
    """
    try:
        import distutils.version  # noqa: F401
        return
    except ImportError:
        pass
    package, version = types.ModuleType('distutils'), types.ModuleType('distutils.version')
    version.LooseVersion = LooseVersion
    package.version = version
    package.__path__ = []
    sys.modules.update({'distutils': package, 'distutils.version': version})


FIX = Fix('distutils_version', 'version', '`import basicsr` fails on Python 3.12+: no distutils for its `LooseVersion`',
          (), install_distutils_version_shim, early=True)
