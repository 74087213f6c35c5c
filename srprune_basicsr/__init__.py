"""srprune_basicsr: data-efficient super-resolution training as a BasicSR plugin.

``import srprune_basicsr`` repairs basicsr 1.4.2 for current torch/torchvision and CPU-only hosts,
wraps BasicSR's builders once (``_basicsr``), registers every arch, dataset and model of the plugin
with BasicSR's registries, and registers the plugin's hook callbacks (PSNR tracking, TensorBoard
score histograms). A BasicSR-based ``train.py`` only needs ``import srprune_basicsr``.

The ``srprune`` command (or ``python -m srprune_basicsr``) defers all of that to the verbs that run
BasicSR (``plug_in()``), so ``--help``, ``select`` and ``lmdb verify`` start without torch.
"""

from __future__ import annotations

import os
import sys

from srprune_basicsr.plugin import plug_in
from srprune_basicsr.version import __version__
from srprune_basicsr.worker_env import data_worker


def launched_as_command() -> bool:
    """Whether this process is the ``srprune`` command itself (not a script, a test or a loader worker).

    ``sys.orig_argv`` is the interpreter's own command line: spawned workers, which are handed the
    parent's ``sys.argv``, keep theirs, so they still plug in on import.
    """
    argv = getattr(sys, 'orig_argv', [])
    script = os.path.basename(argv[1]) if len(argv) > 1 else ''
    as_module = any(argv[i:i + 2] == ['-m', 'srprune_basicsr'] for i in range(len(argv)))
    return script in ('srprune', 'srprune.exe') or as_module


def basicsr_mid_import() -> bool:
    """Whether basicsr is executing under the auto-registration finder, which plugs in once it is done."""
    autoload = sys.modules.get('srprune_basicsr_autoload')
    return bool(getattr(autoload, 'loading', False))


if not launched_as_command() and not basicsr_mid_import() and not data_worker():
    plug_in()

__all__ = ['__version__', 'plug_in']
