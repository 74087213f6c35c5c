"""Check a BasicSR option file before ``train_pipeline`` creates ``experiments/<name>``.

A refused run then leaves nothing behind, and the common pitfalls get a message that names the
file, the key and the fix instead of a traceback from deep inside BasicSR: a number written as a
string (PyYAML reads ``2e-4`` as text), an unregistered arch, model or dataset type (with the
registered names closest to it), a missing data root, the plugin's own blocks (``prune:``,
``prune_tracking:``, ``distill:``) with the files they name, and paired folders BasicSR would
fail on mid-run (a ``gt_size`` that is no multiple of the scale or larger than a GT image, LQ
files that ``filename_tmpl`` does not name, a Real-ESRGAN ``gt_size`` its degraded batches cannot give).
"""

from __future__ import annotations

import os
from pathlib import Path

from srprune_basicsr._basicsr.quiet import logger_untouched
from srprune_basicsr.checks import (
    PLUGIN_LOADED,
    check_registered,
    check_trained_with,
    params_of,
)
from srprune_basicsr.formats.lmdb import check_intact
from srprune_basicsr.options import check_block_names, check_run_name, import_packages, load_yaml

NUMBERS = (('train', 'total_iter'), ('train', 'warmup_iter'), ('train', 'optim_g', 'lr'), ('train', 'optim_d', 'lr'),
           ('train', 'optim_g', 'weight_decay'), ('val', 'val_freq'), ('logger', 'print_freq'),
           ('logger', 'save_checkpoint_freq'), ('train', 'scheduler', 'eta_min'), ('train', 'scheduler', 'gamma'))
DATASET_NUMBERS = ('gt_size', 'batch_size_per_gpu', 'num_worker_per_gpu', 'dataset_enlarge_ratio')


def check_number(opt: dict, keys: tuple[str, ...], source: str) -> None:
    node = opt
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if isinstance(node, str):
        raise ValueError(f"{source}: {':'.join(keys)} is the text {node!r}, not a number: YAML reads 2e-4 as text, "
                         'write it as !!float 2e-4 (and whole numbers without quotes)')


def check_types(opt: dict, source: str) -> None:
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY

    check_registered(MODEL_REGISTRY, opt.get('model_type', 'SRModel'), f'{source}: model_type')
    for key in (k for k in opt if k.startswith('network_')):
        check_registered(ARCH_REGISTRY, (opt[key] or {}).get('type'), f'{source}: {key}:type')
    for name, dataset in (opt.get('datasets') or {}).items():
        check_registered(DATASET_REGISTRY, (dataset or {}).get('type'), f'{source}: datasets:{name}:type')


def check_datasets(opt: dict, source: str) -> None:
    """Data roots exist, numbers are numbers, and a ``prune:`` block is valid and names existing files."""
    from srprune_basicsr.selection import PruneOptions

    for name, dataset in (opt.get('datasets') or {}).items():
        if not isinstance(dataset, dict):
            raise ValueError(f'{source}: datasets:{name} must be a mapping of dataset options, got {dataset!r}')
        for key in ('dataroot_gt', 'dataroot_lq', 'meta_info_file'):
            path = dataset.get(key)
            if path is not None and not Path(str(path)).expanduser().exists():
                raise FileNotFoundError(f'{source}: datasets:{name}:{key} {path}: no such file or folder')
            if path is not None and key.startswith('dataroot'):
                check_intact(Path(str(path)).expanduser(), f'{source}: datasets:{name}:{key}')
        for key in DATASET_NUMBERS:
            check_number(opt, ('datasets', name, key), source)
        if dataset.get('prune'):
            prune = PruneOptions.from_block(dataset['prune'], f'{source}: datasets:{name}:prune')
            if prune.source in ('scores', 'keep') and not Path(prune.value).is_file():
                raise FileNotFoundError(f'{source}: datasets:{name}:prune:{prune.source} {prune.value}: no such file')


def check_pairs(opt: dict, source: str) -> None:
    """Paired GT/LQ datasets: train crops fit (``gt_size``), every GT file has its LQ file (``filename_tmpl``).

    Only types that pair two roots and crop with BasicSR's ``paired_random_crop`` are checked (see
    ``formats.pairs.pairs_folders``); sizes are read from meta_info.txt or image headers, not pixels.
    """
    from basicsr.utils.registry import DATASET_REGISTRY

    from srprune_basicsr.formats.pairs import check_gt_size, check_lq_names, pairs_folders

    for name, dataset in (opt.get('datasets') or {}).items():
        if not (pairs_folders(dataset.get('type'), DATASET_REGISTRY) and dataset.get('dataroot_gt')
                and dataset.get('dataroot_lq')):
            continue
        where = f'{source}: datasets:{name}'
        check_lq_names(dataset, where)
        scale = opt.get('scale', 1)
        if str(name).split('_')[0] == 'train' and isinstance(scale, int):  # BasicSR's phase: training crops
            check_gt_size(dataset, scale, where)


DEGRADING_MODELS = ('RealESRGANModel', 'RealESRNetModel')  # crop each batch they degrade to the top-level gt_size
DEGRADED_GT_SIZE = {'RealESRGANDataset': 400}  # the GT patch size a dataset yields: it crops or pads every image


def check_degraded_crop(opt: dict, source: str) -> None:
    """Real-ESRGAN's models crop every batch they degrade to the top-level ``gt_size`` (not the dataset's).

    Missing, it is a KeyError; no multiple of the scale, mismatched patches; larger than the 400 px
    patches ``RealESRGANDataset`` yields, a ValueError from ``paired_random_crop``: each at the first
    iteration, after BasicSR made ``experiments/<name>``. With ``high_order_degradation: false`` the
    models train on the dataset's own pairs and do not read it, but then a GT-only dataset fails (no LQ).
    """
    model = opt.get('model_type')
    if model not in DEGRADING_MODELS:
        return
    if not opt.get('high_order_degradation', True):
        for name, dataset in (opt.get('datasets') or {}).items():
            if str(name).split('_')[0] == 'train' and (dataset or {}).get('type') in DEGRADED_GT_SIZE:
                raise ValueError(f"{source}: datasets:{name} ({dataset['type']}) yields GT images only, but with "
                                 f'high_order_degradation: false {model} trains on the LQ images of its data, and '
                                 'stops at the first iteration; use a paired dataset (RealESRGANPairedDataset) or '
                                 'leave high_order_degradation on')
        return
    gt_size, scale = opt.get('gt_size'), opt.get('scale', 1)
    if gt_size is None:
        raise ValueError(f'{source}: gt_size is missing: {model} crops every training batch it degrades to the '
                         'top-level gt_size (beside scale, e.g. gt_size: 256), not to datasets:train:gt_size')
    if not isinstance(gt_size, int) or isinstance(gt_size, bool) or gt_size <= 0:
        raise ValueError(f'{source}: gt_size {gt_size!r} must be a positive whole number of pixels (the patch '
                         f'{model} crops from each degraded batch)')
    if isinstance(scale, int) and scale >= 1 and gt_size % scale:
        lower = gt_size - gt_size % scale
        raise ValueError(f'{source}: gt_size {gt_size} is not a multiple of scale {scale}: {model} crops LQ patches '
                         f'of gt_size // scale = {gt_size // scale} px and GT patches of {gt_size} px; use gt_size: '
                         f'{lower or lower + scale}' + (f' or {lower + scale}' if lower else ''))
    for name, dataset in (opt.get('datasets') or {}).items():
        size = DEGRADED_GT_SIZE.get((dataset or {}).get('type'))
        if str(name).split('_')[0] == 'train' and size is not None and gt_size > size:
            raise ValueError(f"{source}: gt_size {gt_size} is larger than the {size} px GT patches datasets:{name} "
                             f"({dataset['type']}) yields: {model} cannot crop it from them and stops at the first "
                             f'iteration; use gt_size <= {size}')


def check_blocks(opt: dict, source: str) -> None:
    """The plugin's own blocks, as the components that read them will check them."""
    from srprune_basicsr.distill.options import distill_options
    from srprune_basicsr.scoring.tracking import check_tracked_range, tracking_options

    try:
        if opt.get('prune_tracking'):
            tracking_options(opt['prune_tracking'], int(opt.get('scale', 1)))
            check_tracked_range(opt)
        if opt.get('model_type') == 'SRDistillModel':
            distill_options(opt.get('distill'), opt)
    except ValueError as err:
        raise ValueError(f'{source}: {err}') from None


def check_pretrained(opt: dict, source: str) -> None:
    """Each ``path:pretrain_network_<x>`` fits ``network_<x>`` before BasicSR makes a folder or loads it.

    BasicSR finds out only when it loads the weights, after ``experiments/<name>`` exists, with a
    traceback of missing and unexpected keys. A checkpoint whose experiment folder holds its option
    file must have this file's scale and arch; with ``strict_load_<x>`` (BasicSR's default) its
    parameter names and shapes must be the network's.
    """
    for key, checkpoint in (opt.get('path') or {}).items():
        if not key.startswith('pretrain_network_') or not checkpoint:
            continue
        net_key = key.removeprefix('pretrain_')
        if not isinstance(opt.get(net_key), dict):
            continue
        if not Path(str(checkpoint)).expanduser().is_file():
            raise FileNotFoundError(f'{source}: path:{key} {checkpoint}: no such checkpoint')
        suffix = net_key.removeprefix('network_')
        if opt['path'].get(f'strict_load_{suffix}', True):  # non-strict: fine-tuning from another scale or arch
            check_trained_with(opt, net_key, Path(str(checkpoint)).expanduser(), f'{source}: ')
            _check_parameters(opt, net_key, Path(str(checkpoint)).expanduser(),
                              opt['path'].get(f'param_key_{suffix}', 'params'), source)


def _check_parameters(opt: dict, net_key: str, checkpoint: Path, param_key: str | None, source: str) -> None:
    """Parameter names and shapes of the checkpoint against the network the options build (as BasicSR loads it)."""
    import torch
    from basicsr.archs import build_network

    try:
        state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001  (any unreadable file: say which, with torch's reason)
        raise ValueError(f'{source}: path:pretrain_{net_key} {checkpoint} cannot be read as a checkpoint '
                         f'({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""})') from None
    try:
        state = params_of(state, param_key, checkpoint, net_key, fallback=net_key not in PLUGIN_LOADED)
    except ValueError as err:
        raise ValueError(f'{source}: {err}') from None
    if not isinstance(state, dict):
        raise ValueError(f'{source}: path:pretrain_{net_key} {checkpoint} holds no state dict')
    shapes = {k.removeprefix('module.'): tuple(v.shape) for k, v in state.items() if hasattr(v, 'shape')}
    with logger_untouched():  # the run's log file is attached when BasicSR first logs, later
        expected = {k: tuple(v.shape) for k, v in build_network(dict(opt[net_key])).state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    wrong = sorted(k for k in set(expected) & set(shapes) if expected[k] != shapes[k])
    if missing or unexpected or wrong:
        parts = ([f'{len(missing)} missing (e.g. {missing[:3]})'] if missing else []) + \
                ([f'{len(unexpected)} unexpected (e.g. {unexpected[:3]})'] if unexpected else []) + \
                ([f'{len(wrong)} of another shape (e.g. {wrong[0]}: {shapes[wrong[0]]} in the checkpoint, '
                  f'{expected[wrong[0]]} in {net_key})'] if wrong else [])
        raise ValueError(f"{source}: path:pretrain_{net_key} {checkpoint} does not fit {net_key} "
                         f"{opt[net_key]}: parameters {'; '.join(parts)} (another arch or scale? set "
                         f'strict_load_{net_key.removeprefix("network_")}: false to load what fits)')


def apply_forced(opt: dict, forced: list[str], source: str) -> None:
    """Apply BasicSR's ``--force_yml key:sub=value`` overrides, read as BasicSR reads them."""
    from basicsr.utils.options import _postprocess_yml_value

    for entry in forced:
        keys, _, value = entry.partition('=')
        *parents, last = [k.strip() for k in keys.split(':')]
        node = opt
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise ValueError(f'{source}: --force_yml {entry}: {key!r} is not a section of the option file')
            node = node[key]
        node[last] = _postprocess_yml_value(value.strip())


def check_training_options(path: str | os.PathLike, forced: list[str] | None = None) -> dict:
    """Everything above, for the option file of ``srprune train`` (the plugin must be plugged in)."""
    source = str(path)
    opt = load_yaml(path)
    apply_forced(opt, forced or [], source)
    check_run_name(opt.get('name'), source)
    import_packages(opt, source)
    for keys in NUMBERS:
        check_number(opt, keys, source)
    check_types(opt, source)
    check_block_names(opt, source)
    check_datasets(opt, source)
    check_pairs(opt, source)
    check_degraded_crop(opt, source)
    check_blocks(opt, source)
    check_pretrained(opt, source)
    return opt


def option_file_of(argv: list[str]) -> tuple[str | None, list[str]]:
    """The ``-opt`` value and the ``--force_yml`` entries of a BasicSR command line."""
    option_file, forced = None, []
    for i, arg in enumerate(argv):
        if arg == '-opt' and i + 1 < len(argv):
            option_file = argv[i + 1]
        elif arg.startswith('-opt='):
            option_file = arg.split('=', 1)[1]
        elif arg == '--force_yml':
            forced = _values_after(argv, i)
    return option_file, forced


def _values_after(argv: list[str], i: int) -> list[str]:
    values = []
    for arg in argv[i + 1:]:
        if arg.startswith('-'):
            break
        values.append(arg)
    return values
