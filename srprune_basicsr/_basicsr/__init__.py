"""Everything that patches or hooks BasicSR: version fixes, training-semantics fixes, builder hooks.

``plug_in()`` is what ``import srprune_basicsr`` runs: the functional_tensor shim first (``import
basicsr`` fails without it), then the version fixes, the builder hooks and the semantics fixes.
"""

from __future__ import annotations

from srprune_basicsr._basicsr import compat, hooks, semantics


def install() -> None:
    """Apply every enabled fix and wrap BasicSR's builders (once per process; later calls are no-ops)."""
    compat.install_shim()
    compat.apply()
    hooks.install()
    semantics.apply()
