"""Checks shared by ``srprune train``'s preflight and the stages that build datasets or load networks themselves.

The scorer builds its dataset and the distillation model loads its teacher without going through the
training preflight; both need the same refusal as ``srprune train`` (an unregistered type, a checkpoint
trained at another scale or arch, a parameter key the checkpoint lacks), so it lives here, below all
of them.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path


def closest(name: str, registry: object) -> str:
    """``name`` is not registered: say so, with the registered names closest to it."""
    names = sorted(registry._obj_map)  # noqa: SLF001  (BasicSR's Registry has no public listing)
    near = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    return f'{name!r} is not registered' + (f'; did you mean {near}?' if near else f' (registered: {names})')


def is_registered(registry: object, name: object) -> bool:
    """Whether BasicSR's ``Registry.get`` finds ``name``: as registered, or with its ``_basicsr`` suffix.

    basicsr registers the Real-ESRGAN classes it ships as ``RealESRNetModel_basicsr`` (and so on),
    and ``get`` falls back to that name, so ``model_type: RealESRNetModel`` works without realesrgan.
    """
    names = registry._obj_map  # noqa: SLF001
    return isinstance(name, str) and (name in names or f'{name}_basicsr' in names)


def check_registered(registry: object, name: object, where: str) -> None:
    """Refuse a type BasicSR's ``registry`` does not hold, naming ``where`` (the file and key) and near names.

    BasicSR's own ``Registry.get`` raises a bare KeyError deep in the build; a component of another
    package (Real-ESRGAN's, HAT's) registers only once that package is imported, hence the hint.
    """
    if not is_registered(registry, name):
        raise ValueError(f'{where} {closest(str(name), registry)} (a type from another package is '
                         "registered only when the option file's imports: names that package)")


SCALED_NETWORKS = ('network_g', 'network_teacher')  # SR networks: they upsample by their option file's scale
PLUGIN_LOADED = ('network_teacher',)  # loaded by the plugin, not BasicSR's load_network: no params fallback


def trained_network_key(checkpoint: Path, net_key: str) -> str:
    """The network of its own option file that ``checkpoint`` holds: BasicSR saves ``network_<x>`` as
    ``models/net_<x>_<iter>.pth``, so a teacher is usually another run's ``net_g_latest.pth``."""
    match = re.fullmatch(r'net_(.+)_(\d+|latest)', checkpoint.stem)
    return f'network_{match.group(1)}' if match else net_key


def check_trained_with(opt: dict, net_key: str, checkpoint: Path, prefix: str = '') -> None:
    """Refuse a checkpoint whose experiment folder records another scale or arch than ``opt[net_key]``.

    The recorded scale is the only witness for archs whose weights have the same shapes at every
    scale (FSRCNN: only the deconvolution's stride changes), where strict loading and an output-size
    probe both pass and the network silently computes the wrong thing.
    """
    from srprune_basicsr.options import trained_options

    found = trained_options(checkpoint)
    if not found:
        return
    trained, option_file = found
    trained_key = trained_network_key(checkpoint, net_key)
    if net_key in SCALED_NETWORKS and trained_key in SCALED_NETWORKS and trained.get('scale') is not None and \
            opt.get('scale') is not None and int(trained['scale']) != int(opt['scale']):
        raise ValueError(f"{prefix}path:pretrain_{net_key} {checkpoint} was trained at scale {trained['scale']} "
                         f"({option_file}), this run's scale is {opt['scale']}")
    arch = (trained.get(trained_key) or {}).get('type') if isinstance(trained.get(trained_key), dict) else None
    if arch and arch != opt[net_key].get('type'):
        raise ValueError(f"{prefix}path:pretrain_{net_key} {checkpoint} is a {arch} ({option_file}), this run's "
                         f"{net_key}:type is {opt[net_key].get('type')}")


def params_of(state: object, param_key: str | None, checkpoint: Path, net_key: str, fallback: bool) -> object:
    """The state dict under ``param_key``; a raw state dict (no such wrapper) as it is.

    BasicSR's load_network falls back from an absent key to ``params`` (with a log line); the networks
    the plugin loads itself do not, since a teacher asked for ``params_ema`` and given ``params`` is
    another network than the one named.
    """
    if not isinstance(state, dict) or param_key is None:
        return state
    if param_key in state:
        return state[param_key]
    wrappers = [k for k, v in state.items() if isinstance(v, dict)]
    if not wrappers:  # a bare state dict: nothing to choose from
        return state
    if fallback and 'params' in state:
        return state['params']
    suffix = net_key.removeprefix('network_')
    raise ValueError(f'path:pretrain_{net_key} {checkpoint} has no {param_key!r} (path:param_key_{suffix}); '
                     f'it holds {sorted(wrappers)}')


def check_unit_range(opt: dict, where: str, records: str, instead: str) -> None:
    """Per-sample PSNRs are taken on outputs in [0, 1]: refuse a training set normalised with ``mean``/``std``.

    GFPGAN's FFHQ sets are normalised to [-1, 1]; the PSNR clamps outputs to [0, 1], so the values
    recorded for each sample would not be its PSNR. ``records`` says what records them (``prune_tracking``,
    ``criterion uncertainty``), ``instead`` what to do.
    """
    for name, dataset in (opt.get('datasets') or {}).items():
        if str(name).split('_')[0] == 'train' and isinstance(dataset, dict) and \
                (dataset.get('mean') is not None or dataset.get('std') is not None):
            raise ValueError(f'{where}: {records} the PSNR of each trained sample on [0, 1] images, but '
                             f'datasets:{name} normalises them (mean/std), so the outputs are not in [0, 1]; {instead}')
