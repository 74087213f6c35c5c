"""``spawn_workers``: DataLoader workers started by spawn unpickle datasets through the plugin first.
"""

from __future__ import annotations

from typing import Any

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.fixes.base import Fix


def _rebuild_dataset(cls: type, state: dict) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


def _reduce_dataset(self: Any, protocol: int) -> tuple:
    """Pickle a dataset through a function of this module, so unpickling imports the plugin first.

    ``--launcher pytorch`` makes BasicSR set the start method to spawn; each DataLoader worker then
    starts a fresh interpreter and unpickles the dataset, importing ``basicsr`` before anything
    else, and that import fails without the functional_tensor shim (the package __main__ that
    would install it is not re-imported by spawn). Pickle writes the rebuilding function before its
    arguments, so the worker imports ``srprune_basicsr`` (shim, registries) before ``basicsr``.
    The state is the object's ``__dict__``, exactly what default pickling stores.
    """
    return _rebuild_dataset, (type(self), self.__dict__)


def spawn_safe(dataset: Any, dataset_opt: dict) -> Any:
    """Dataset callback: give the built dataset's class the shim-first pickling (third-party classes too)."""
    cls = type(dataset)
    if '__reduce_ex__' not in vars(cls) and '__reduce__' not in vars(cls) and '__getstate__' not in vars(cls):
        cls.__reduce_ex__ = _reduce_dataset
    return dataset


def apply() -> None:
    """Register the dataset callback (first of all dataset callbacks)."""
    hooks.register('dataset', spawn_safe, order=0)


FIX = Fix('spawn_workers', 'version', 'under `--launcher pytorch` every spawned loader worker crashed on '
          '`import basicsr`', ('basicsr.data:build_dataset',), apply)
