"""Everything that patches or hooks BasicSR: the fixes (``fixes/<fix>.py``) and the builder hooks.

``plug_in()`` is what ``import srprune_basicsr`` runs: the fixes that must precede ``import
basicsr`` first (the import fails without them), then the version fixes, the builder hooks and the
semantics fixes. Each fix applies only where the basicsr Python imported has what it fixes (a repo
may ship its own, older copy); ``srprune fixes`` lists which apply and why not.
"""

from __future__ import annotations

from srprune_basicsr._basicsr import fixes, hooks


def install() -> None:
    """Apply every enabled fix that fits this basicsr and wrap BasicSR's builders (once per process)."""
    fixes.install_shim()
    fixes.apply_fixes('version')
    hooks.install()
    fixes.apply_fixes('semantics')
    hooks.register('train_loaders', fixes.log_summary, order=1)
