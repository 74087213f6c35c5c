"""Which BasicSR fixes are on: all of them, unless ``SRPRUNE_COMPAT_DISABLE=name[,name]`` (or ``all``) says otherwise.

Switching a fix off is for debugging, for the tests that show each fix is needed, and for a
vendored basicsr on which one fix fails (``srprune fixes`` lists the fixes and whether each applies).
"""

from __future__ import annotations

import os

ENV = 'SRPRUNE_COMPAT_DISABLE'
VERSION_FIXES = ('functional_tensor', 'cpu_resume', 'gloo_launcher', 'weights_only', 'spawn_workers', 'utf8_keys',
                 'pool_models_cpu', 'slurm_launcher', 'atomic_saves',
                 'jpeg_quality', 'adam_betas', 'fused_act_native', 'moved_names', 'fork_workers',
                 'distutils_version')
SEMANTICS_FIXES = ('epoch_count', 'resume_epoch', 'seeded_shuffle')
FIXES = VERSION_FIXES + SEMANTICS_FIXES


def disabled() -> set[str]:
    raw = os.environ.get(ENV, '')
    names = {n.strip() for n in raw.split(',') if n.strip()}
    return set(FIXES) if 'all' in names else names


def enabled(name: str) -> bool:
    """Whether the named fix is active (it is unless switched off in the environment)."""
    if name not in FIXES:
        raise ValueError(f'unknown fix {name!r}; known: {FIXES}')
    return name not in disabled()
