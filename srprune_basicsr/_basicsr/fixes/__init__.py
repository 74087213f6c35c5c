"""The plugin's fixes of BasicSR, one module each, applied only where the basicsr at hand has what they fix.

Each module defines ``FIX`` (``base.Fix``): its switch name, what it repairs and the modules or
attributes it needs (``needs``). ``apply_fixes`` checks those first, against the basicsr Python
imported (basicsr 1.4.2, or a copy a repo ships, such as DAT's 1.3.5 without ``data/degradations.py``),
so a fix with nothing to fix is skipped and recorded instead of breaking the import. The record is
what ``srprune fixes`` lists and what the training log sums up in one line.

A fix that is there to apply but fails is an error noting the fix and its switch
(``SRPRUNE_COMPAT_DISABLE=<fix>``), which the auto-registration's message points to.
"""

from __future__ import annotations

import logging
from typing import Any

from srprune_basicsr._basicsr.fixes import (
    adam_betas,
    atomic_saves,
    cpu_resume,
    distutils_version,
    epoch_count,
    fork_workers,
    functional_tensor,
    fused_act_native,
    gloo_launcher,
    jpeg_quality,
    moved_names,
    pool_models_cpu,
    resume_epoch,
    seeded_shuffle,
    slurm_launcher,
    spawn_workers,
    utf8_keys,
    weights_only,
)
from srprune_basicsr._basicsr.fixes.base import Fix, Status, basicsr_found, basicsr_identity, check
from srprune_basicsr._basicsr.switches import ENV

FIXES: tuple[Fix, ...] = tuple(m.FIX for m in (
    functional_tensor, distutils_version, weights_only, cpu_resume, gloo_launcher, spawn_workers, fork_workers,
    slurm_launcher, pool_models_cpu, atomic_saves, utf8_keys, jpeg_quality, adam_betas, fused_act_native,
    moved_names, epoch_count, resume_epoch, seeded_shuffle))
BY_NAME = {fix.name: fix for fix in FIXES}
_applied: dict[str, Status] = {}  # what this process did, by fix name (the last time each was considered)
log = logging.getLogger(__name__)


def _apply_one(fix: Fix) -> Status:
    """Apply ``fix`` if it applies; a failure notes the fix and the switch that turns it off."""
    status = check(fix)
    if status.applies:
        try:
            fix.apply()
        except Exception as err:
            err.add_note(f'raised by the basicsr fix {fix.name} of srprune_basicsr; {ENV}={fix.name} switches it off '
                         '(`srprune fixes` lists the fixes and whether each applies)')
            err.srprune_fix = fix.name  # type: ignore[attr-defined]
            raise
    elif not status.switched_off:
        log.info('srprune: basicsr fix %s skipped: %s', fix.name, status.why_not)
    _applied[fix.name] = status
    return status


def install_shim() -> None:
    """The fixes that must precede ``import basicsr`` (the import fails without them)."""
    for fix in FIXES:
        if fix.early:
            _apply_one(fix)


def apply_fixes(kind: str) -> list[Status]:
    """Apply every enabled fix of ``kind`` ('version' or 'semantics') that the imported basicsr has a use for."""
    return [_apply_one(fix) for fix in FIXES if fix.kind == kind and not fix.early]


def statuses() -> list[Status]:
    """Every fix checked against the basicsr importable now (imports what they need, applies nothing)."""
    return [check(fix) for fix in FIXES]


def summary() -> str:
    """One line on the fixes this process applied and skipped (and why), for the training log."""
    applied = [name for name, status in _applied.items() if status.applies]
    skipped = [f'{name} ({status.why_not})' for name, status in _applied.items() if not status.applies
               and not status.switched_off]
    off = [name for name, status in _applied.items() if status.switched_off]
    parts = [f'srprune: {basicsr_identity()}: {len(applied)} fixes applied']
    parts.append(f'{len(skipped)} skipped' + (f": {', '.join(skipped)}" if skipped else ''))
    if off:
        parts.append(f"{len(off)} switched off by {ENV}: {', '.join(off)}")
    return '; '.join(parts) + ' (`srprune fixes` lists them).'


def log_summary(loaders: Any) -> None:
    """Train-loader callback: the fixes' summary, once the run's log file is open."""
    loaders.logger.info(summary())


__all__ = ['BY_NAME', 'FIXES', 'Fix', 'Status', 'apply_fixes', 'basicsr_found', 'basicsr_identity', 'check',
           'install_shim', 'log_summary', 'statuses', 'summary']
