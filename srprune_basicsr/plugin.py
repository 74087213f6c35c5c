"""``plug_in()``: what ``import srprune_basicsr`` does to BasicSR, in its one place and order.

The functional_tensor shim precedes the first ``import basicsr``; then the version fixes, the
builder hooks and the semantics fixes (``_basicsr``); then the plugin's archs, datasets and models
register with BasicSR's registries; last, the hook callbacks of the features register (the scale
check of paired datasets, PSNR tracking on built models, TensorBoard score histograms).
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
    from srprune_basicsr.data.pruned_paired_dataset import refuse_unapplied_prune
    from srprune_basicsr.formats.pairs import check_dataset_scale
    from srprune_basicsr.report import tensorboard
    from srprune_basicsr.scoring import tracking

    hooks.register('dataset', refuse_unapplied_prune, order=10)
    hooks.register('dataset', check_dataset_scale, order=20)
    hooks.register('model', tracking.attach_if_asked)
    hooks.register('train_loaders', tensorboard.log_prune_histograms)
    _plugged.append(True)
