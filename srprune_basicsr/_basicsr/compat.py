"""The version fixes' former home: their names stay importable from here (they live in ``fixes/<fix>.py``).

``apply()`` applies every enabled version fix the imported basicsr has a use for (``fixes``);
``install_shim()`` the fixes that must precede ``import basicsr``.
"""

from __future__ import annotations

from srprune_basicsr._basicsr.fixes import apply_fixes, install_shim
from srprune_basicsr._basicsr.fixes.adam_betas import adam_betas_as_floats
from srprune_basicsr._basicsr.fixes.atomic_saves import SAVE_TRIES, save_checkpoint, save_or_raise
from srprune_basicsr._basicsr.fixes.cpu_resume import (
    checkpoint_map_location,
    load_training_state,
    readable_training_state,
)
from srprune_basicsr._basicsr.fixes.distutils_version import LooseVersion, install_distutils_version_shim
from srprune_basicsr._basicsr.fixes.fork_workers import fork_loader_workers
from srprune_basicsr._basicsr.fixes.functional_tensor import install_functional_tensor_shim
from srprune_basicsr._basicsr.fixes.fused_act_native import fused_act_anywhere, native_fused_leaky_relu
from srprune_basicsr._basicsr.fixes.moved_names import MOVED_NAMES, restore_moved_names
from srprune_basicsr._basicsr.fixes.pool_models_cpu import cuda_means, pool_models_on_cpu
from srprune_basicsr._basicsr.fixes.slurm_launcher import slurm_master, slurm_task
from srprune_basicsr._basicsr.fixes.spawn_workers import spawn_safe
from srprune_basicsr._basicsr.fixes.weights_only import allow_numpy_in_checkpoints
from srprune_basicsr.formats.atomic import CheckpointSaveError


def apply() -> None:
    """Apply every enabled version fix (idempotent: each patch checks what it replaces)."""
    install_shim()
    apply_fixes('version')


__all__ = ['MOVED_NAMES', 'SAVE_TRIES', 'CheckpointSaveError', 'LooseVersion', 'adam_betas_as_floats',
           'allow_numpy_in_checkpoints', 'apply', 'checkpoint_map_location', 'cuda_means', 'fork_loader_workers',
           'fused_act_anywhere', 'install_distutils_version_shim', 'install_functional_tensor_shim', 'install_shim',
           'load_training_state', 'native_fused_leaky_relu', 'pool_models_on_cpu', 'readable_training_state',
           'restore_moved_names', 'save_checkpoint', 'save_or_raise', 'slurm_master', 'slurm_task', 'spawn_safe']
