"""Check a BasicSR option file before ``train_pipeline`` creates ``experiments/<name>``.

A refused run then leaves nothing behind, and the common pitfalls get a message that names the
file, the key and the fix instead of a traceback from deep inside BasicSR: a number written as a
string (PyYAML reads ``2e-4`` as text), an unregistered arch, model or dataset type (with the
registered names closest to it), a missing data root, and the plugin's own blocks (``prune:``,
``prune_tracking:``, ``distill:``) with the files they name.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from srprune_basicsr._basicsr.quiet import logger_untouched
from srprune_basicsr.formats.lmdb import check_intact
from srprune_basicsr.options import check_block_names, import_packages, load_yaml

NUMBERS = (('train', 'total_iter'), ('train', 'warmup_iter'), ('train', 'optim_g', 'lr'), ('train', 'optim_d', 'lr'),
           ('train', 'optim_g', 'weight_decay'), ('val', 'val_freq'), ('logger', 'print_freq'),
           ('logger', 'save_checkpoint_freq'), ('train', 'scheduler', 'eta_min'), ('train', 'scheduler', 'gamma'))
DATASET_NUMBERS = ('gt_size', 'batch_size_per_gpu', 'num_worker_per_gpu', 'dataset_enlarge_ratio')


def closest(name: str, registry: object) -> str:
    """``name`` is not registered: say so, with the registered names closest to it."""
    names = sorted(registry._obj_map)  # noqa: SLF001  (BasicSR's Registry has no public listing)
    near = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    return f'{name!r} is not registered' + (f'; did you mean {near}?' if near else f' (registered: {names})')


def check_number(opt: dict, keys: tuple[str, ...], source: str) -> None:
    node = opt
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if isinstance(node, str):
        raise ValueError(f"{source}: {':'.join(keys)} is the text {node!r}, not a number: YAML reads 2e-4 as text, "
                         'write it as !!float 2e-4 (and whole numbers without quotes)')


def is_registered(registry: object, name: object) -> bool:
    """Whether BasicSR's ``Registry.get`` finds ``name``: as registered, or with its ``_basicsr`` suffix.

    basicsr registers the Real-ESRGAN classes it ships as ``RealESRNetModel_basicsr`` (and so on),
    and ``get`` falls back to that name, so ``model_type: RealESRNetModel`` works without realesrgan.
    """
    names = registry._obj_map  # noqa: SLF001
    return isinstance(name, str) and (name in names or f'{name}_basicsr' in names)


def check_types(opt: dict, source: str) -> None:
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY

    model = opt.get('model_type', 'SRModel')
    if not is_registered(MODEL_REGISTRY, model):
        raise ValueError(f'{source}: model_type {closest(model, MODEL_REGISTRY)}')
    for key in (k for k in opt if k.startswith('network_')):
        arch = (opt[key] or {}).get('type')
        if not is_registered(ARCH_REGISTRY, arch):
            raise ValueError(f'{source}: {key}:type {closest(str(arch), ARCH_REGISTRY)}')
    for name, dataset in (opt.get('datasets') or {}).items():
        kind = (dataset or {}).get('type')
        if not is_registered(DATASET_REGISTRY, kind):
            raise ValueError(f'{source}: datasets:{name}:type {closest(str(kind), DATASET_REGISTRY)}')


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
                check_intact(Path(str(path)).expanduser())
        for key in DATASET_NUMBERS:
            check_number(opt, ('datasets', name, key), source)
        if dataset.get('prune'):
            prune = PruneOptions.from_block(dataset['prune'], f'{source}: datasets:{name}:prune')
            if prune.source in ('scores', 'keep') and not Path(prune.value).is_file():
                raise FileNotFoundError(f'{source}: datasets:{name}:prune:{prune.source} {prune.value}: no such file')


def check_blocks(opt: dict, source: str) -> None:
    """The plugin's own blocks, as the components that read them will check them."""
    from srprune_basicsr.distill.options import distill_options
    from srprune_basicsr.scoring.tracking import tracking_options

    try:
        if opt.get('prune_tracking'):
            tracking_options(opt['prune_tracking'], int(opt.get('scale', 1)))
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
            _check_trained_with(opt, net_key, Path(str(checkpoint)).expanduser(), source)
            _check_parameters(opt, net_key, Path(str(checkpoint)).expanduser(),
                              opt['path'].get(f'param_key_{suffix}', 'params'), source)


def _check_trained_with(opt: dict, net_key: str, checkpoint: Path, source: str) -> None:
    from srprune_basicsr.options import trained_options

    found = trained_options(checkpoint)
    if not found:
        return
    trained, option_file = found
    if net_key == 'network_g' and trained.get('scale') is not None and opt.get('scale') is not None and \
            int(trained['scale']) != int(opt['scale']):  # other networks (a prior, a discriminator) have no scale
        raise ValueError(f"{source}: path:pretrain_{net_key} {checkpoint} was trained at scale {trained['scale']} "
                         f"({option_file}), this file trains scale {opt['scale']}")
    arch = (trained.get(net_key) or {}).get('type') if isinstance(trained.get(net_key), dict) else None
    if arch and arch != opt[net_key].get('type'):
        raise ValueError(f"{source}: path:pretrain_{net_key} {checkpoint} is a {arch} ({option_file}), this file's "
                         f"{net_key}:type is {opt[net_key].get('type')}")


def _check_parameters(opt: dict, net_key: str, checkpoint: Path, param_key: str | None, source: str) -> None:
    """Parameter names and shapes of the checkpoint against the network the options build (as BasicSR loads it)."""
    import torch
    from basicsr.archs import build_network

    try:
        state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001  (any unreadable file: say which, with torch's reason)
        raise ValueError(f'{source}: path:pretrain_{net_key} {checkpoint} cannot be read as a checkpoint '
                         f'({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""})') from None
    if isinstance(state, dict) and param_key is not None:
        state = state.get(param_key, state.get('params', state))
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
    import_packages(opt, source)
    for keys in NUMBERS:
        check_number(opt, keys, source)
    check_types(opt, source)
    check_block_names(opt, source)
    check_datasets(opt, source)
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
