"""``plug_in()``: what ``import srprune_basicsr`` does to BasicSR, in its one place and order.

The functional_tensor shim precedes the first ``import basicsr``; then the version fixes, the
builder hooks and the semantics fixes (``_basicsr``); then the plugin's archs, datasets and models
register with BasicSR's registries; last, the hook callbacks of the features register (PSNR
tracking on built models, TensorBoard score histograms on the train loader).
"""

from __future__ import annotations

_plugged: list[bool] = []


def plug_in() -> None:
    """Fix and hook BasicSR, then register the plugin's components and callbacks (once per process)."""
    if _plugged:
        return
    from srprune_basicsr import _basicsr

    _basicsr.install()
    from srprune_basicsr import archs, data, models  # noqa: F401  (registration side effects)
    from srprune_basicsr._basicsr import hooks
    from srprune_basicsr.report import tensorboard
    from srprune_basicsr.scoring import tracking

    hooks.register('model', tracking.attach_if_asked)
    hooks.register('train_loaders', tensorboard.log_prune_histograms)
    _plugged.append(True)
