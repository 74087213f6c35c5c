"""srprune_basicsr: data-efficient super-resolution training as a BasicSR plugin.

Importing this package first repairs basicsr 1.4.2 for current torch/torchvision and CPU-only
hosts (see ``_compat``), then registers every arch, dataset and model of the plugin with
BasicSR's registries. A BasicSR-based ``train.py`` only needs ``import srprune_basicsr``.
"""

from srprune_basicsr import _compat

_compat.apply()

from srprune_basicsr import archs, data, models  # noqa: E402,F401  (registration side effects)
from srprune_basicsr.models import prune_tracking as _prune_tracking  # noqa: E402
from srprune_basicsr.report import tensorboard as _tensorboard  # noqa: E402

_tensorboard.install()
_prune_tracking.install()
_compat.spawn_safe_datasets()  # after registration: covers our datasets too
from srprune_basicsr.version import __version__  # noqa: E402

__all__ = ['__version__', 'archs', 'data', 'models']
