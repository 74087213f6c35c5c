"""``plug_in()``: what ``import srprune_basicsr`` does to BasicSR, in its one place and order.

The fixes that must precede the first ``import basicsr`` come first; then the version fixes, the
builder hooks and the semantics fixes (``_basicsr``), each fix only where the basicsr imported (maybe a
repo's own copy) has what it fixes; then the plugin's archs, datasets and models
register with BasicSR's registries; last, the hook callbacks of the features register (the
option file's repeated keys and ``name:`` checked first, ``prune:`` on every dataset type, the
scale check of paired datasets, PSNR tracking on built models, TensorBoard score histograms,
in-run pruning's sampler and model hooks, and the lock of a run's ``experiments/<name>`` after
the option checks). Under BasicSR's own entry points a refusal the plugin raises ends the process
with one line, not a traceback (``refusals.one_line_refusals``).
"""

from __future__ import annotations

_progress: list[str] = []  # 'started', then 'done'


def plug_in() -> None:
    """Fix and hook BasicSR, then register the plugin's components and callbacks (once per process).

    The first ``import basicsr`` inside this call goes through the auto-registration finder, which
    calls here again: that nested call returns at once and this one finishes the work.
    """
    if _progress:
        return
    _progress.append('started')
    try:
        _plug()
    except BaseException:
        _progress.clear()  # a later call tries again instead of passing silently
        raise
    _progress.append('done')


def check_option_file(opt: dict) -> None:
    """Options callback, first: no key given twice in the file BasicSR read, and ``name:`` a plain folder name.

    Under BasicSR's own train.py (``python -m basicsr.train``, a repo's train.py) this is the only
    check before BasicSR makes ``experiments/<name>`` and moves aside what is there.
    """
    from srprune_basicsr._basicsr import hooks
    from srprune_basicsr.options import check_run_name, check_unique_keys_of

    source = hooks.option_file()
    if source:
        check_unique_keys_of(source)
    check_run_name(opt.get('name'), source or 'option file')


def check_option_names(opt: dict) -> None:
    """Options callback: misspelt plugin blocks are refused under BasicSR's own train.py too."""
    from srprune_basicsr._basicsr import hooks
    from srprune_basicsr.options import check_block_names

    check_block_names(opt, hooks.option_file() or 'option file')


def _plug() -> None:
    from srprune_basicsr import _basicsr

    _basicsr.install()
    from srprune_basicsr import archs, data, models  # noqa: F401  (registration side effects)
    from srprune_basicsr._basicsr import hooks
    from srprune_basicsr._basicsr.runs import lock_run_folders
    from srprune_basicsr.data.pruned_dataset import apply_prune, check_prune_blocks
    from srprune_basicsr.formats.pairs import check_dataset_scale
    from srprune_basicsr.online import model as online_model
    from srprune_basicsr.online.options import check_online_block
    from srprune_basicsr.online.sampler import attach_sampler
    from srprune_basicsr.refusals import one_line_refusals
    from srprune_basicsr.report import tensorboard
    from srprune_basicsr.scoring import tracking

    hooks.register('options', check_option_file, order=0)  # before anything reads the options
    hooks.register('options', check_option_names)
    hooks.register('options', check_prune_blocks)
    hooks.register('options', check_online_block)
    hooks.register('options', lock_run_folders, order=90)  # after the checks, before BasicSR makes any folder
    hooks.register('dataset', apply_prune, order=10)
    hooks.register('dataset', check_dataset_scale, order=20)
    hooks.register('model', tracking.attach_if_asked)
    hooks.register('model', online_model.attach_if_asked)
    hooks.register('train_loaders', attach_sampler, order=80)  # after the epoch count's fix
    hooks.register('train_loaders', tensorboard.log_prune_histograms)
    one_line_refusals()
