"""``weights_only``: torch 2.6+ loads checkpoints with ``weights_only=True``; numpy values in them are allowed.
"""

from __future__ import annotations

import torch

from srprune_basicsr._basicsr.fixes.base import Fix


def _numpy_data_globals() -> list:
    """numpy's pickle entry points for scalars, arrays and dtypes, under numpy 1 and numpy 2 names."""
    import numpy as np

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    entries: list = [np.ndarray, np.dtype]
    for name in ('scalar', '_reconstruct'):
        fn = getattr(multiarray, name)
        entries += [(fn, f'numpy.core.multiarray.{name}'), (fn, f'numpy._core.multiarray.{name}')]
    entries += sorted({type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDG'}, key=lambda t: t.__name__)
    return entries


def allow_numpy_in_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` read numpy scalars and arrays in checkpoints.

    Since torch 2.6 ``torch.load`` only unpickles allow-listed types, and basicsr 1.4.2 calls it
    without ``weights_only``, so the safe loader is what runs. BasicSR's metrics return numpy
    floats, and many BasicSR-based repos (and our own tracking state) keep such values in their
    checkpoints and training states, which then fail to load. numpy's scalar/array constructors
    only rebuild data, so allow-listing them keeps the safe loader instead of full pickle.
    """
    torch.serialization.add_safe_globals(_numpy_data_globals())


FIX = Fix('weights_only', 'version', 'checkpoints and training states holding numpy values fail to load '
          'under torch.load(weights_only=True)', ('torch.serialization:add_safe_globals',), allow_numpy_in_checkpoints)
