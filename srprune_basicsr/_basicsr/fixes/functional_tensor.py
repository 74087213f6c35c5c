"""``functional_tensor``: ``import basicsr`` fails on torchvision 0.17 and later without it.

basicsr 1.4.2's ``data/degradations.py`` imports ``rgb_to_grayscale`` from
``torchvision.transforms.functional_tensor``, which torchvision 0.17 removed. Runs before basicsr
is first imported, so it needs nothing of basicsr (a copy without ``degradations.py`` does not need it).
"""

from __future__ import annotations

import sys
import types

from srprune_basicsr._basicsr.fixes.base import Fix


def install_functional_tensor_shim() -> None:
    """Provide ``torchvision.transforms.functional_tensor``, removed in torchvision 0.17.

    basicsr.data.degradations imports ``rgb_to_grayscale`` from it at import time, so without
    this module ``import basicsr`` fails. The private module still carries the function.
    """
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (old torchvision: nothing to do)
        return
    except ImportError:
        pass
    from torchvision.transforms import _functional_tensor

    shim = types.ModuleType(name)
    shim.__dict__.update({k: v for k, v in vars(_functional_tensor).items() if not k.startswith('__')})
    sys.modules[name] = shim


FIX = Fix('functional_tensor', 'version',
          '`import basicsr` fails: torchvision 0.17 removed `torchvision.transforms.functional_tensor`', (),
          install_functional_tensor_shim, early=True)
