"""Import every module of a sub-package whose file name ends with a suffix.

BasicSR's and Real-ESRGAN's sub-packages register their components this way (``*_arch.py``,
``*_dataset.py``, ``*_model.py``), so adding a component is adding a file.
"""

from __future__ import annotations

import importlib
import os
from os import path as osp
from types import ModuleType


def import_by_suffix(package: str, init_file: str, suffix: str) -> list[ModuleType]:
    """Import ``package.<name>`` for every ``<name><suffix>`` file beside ``init_file``."""
    folder = osp.dirname(osp.abspath(init_file))
    names = sorted(osp.splitext(f)[0] for f in os.listdir(folder) if f.endswith(suffix))
    return [importlib.import_module(f'{package}.{name}') for name in names]
