"""``moved_names``: the colour conversions basicsr 1.4.2 moved to ``color_util`` are importable from
``matlab_functions`` again (HAT imports them from there).

Needs ``basicsr.utils.color_util``: an older basicsr (DAT's 1.3.5) still defines them in
``matlab_functions`` and has no ``color_util``, so there is nothing to restore.
"""

from __future__ import annotations

from srprune_basicsr._basicsr.fixes.base import Fix

MOVED_NAMES = {'basicsr.utils.matlab_functions': ('basicsr.utils.color_util',
                                                  ('rgb2ycbcr', 'bgr2ycbcr', 'ycbcr2rgb', 'ycbcr2bgr'))}


def restore_moved_names() -> None:
    """Names basicsr 1.3.4.9 exported that 1.4.2 moved: importable again from their old module.

    After 1.3.4.9, basicsr moved its colour conversions out of ``matlab_functions`` into ``color_util``.
    Repos written for 1.3.4.9 still import them from the old module: HAT's ``imagenet_paired_dataset``
    does ``from basicsr.utils.matlab_functions import imresize, rgb2ycbcr``, so ``import hat`` (and
    HAT's ``train.py``) failed with ImportError. The old module gets the very functions of the new
    one (same objects, same results); a name it still defines is left alone. Applied when basicsr is
    first imported, before any such repo's modules import from it.
    """
    import importlib

    for old_name, (new_name, names) in MOVED_NAMES.items():
        old, new = importlib.import_module(old_name), importlib.import_module(new_name)
        for name in names:
            if not hasattr(old, name):
                setattr(old, name, getattr(new, name))


FIX = Fix('moved_names', 'version',
          'repos written for basicsr 1.3.4.9 import `rgb2ycbcr` from `basicsr.utils.matlab_functions`',
          ('basicsr.utils.matlab_functions',
           *(f'basicsr.utils.color_util:{name}' for name in MOVED_NAMES['basicsr.utils.matlab_functions'][1])),
          restore_moved_names)
