"""The teacher of distribution matching: a trained BasicSR network, its scale checked, its features tapped.

Distribution matching compares real and synthetic patches through the features of a network
that already knows the data (the paper's teacher is the SR model trained on the full set). Any
registered arch works: ``network_teacher`` builds it, ``path:pretrain_network_teacher`` loads its
weights strictly from ``param_key_teacher`` (absent: refused, not replaced by ``params``; a checkpoint
of another arch or scale is refused with the keys that differ), the scale recorded beside the
checkpoint must be the data's (FSRCNN's weights have the same shapes at every scale), a probe checks
that it upsamples by the data's scale, and ``FeatureTap`` records the outputs of the
named layers (forward hooks, so the arch's code is not touched).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from basicsr.archs import build_network
from torch import nn

from srprune_basicsr.checks import check_trained_with, params_of

PROBE = 16  # LR side of the probe input: divisible enough for window-based archs at small windows


def _state_dict(path: str | os.PathLike, param_key: str) -> dict[str, torch.Tensor]:
    """The weights under ``param_key``, refused when absent: no fallback to ``params`` (another network)."""
    checkpoint = params_of(torch.load(path, map_location='cpu', weights_only=True), param_key, Path(path),
                           'network_teacher', fallback=False)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{path}: not a network checkpoint (expected a state dict under {param_key!r})')
    return {k.removeprefix('module.'): v for k, v in checkpoint.items()}


def _mismatch(net: nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``weights`` from loading strictly into ``net``: missing, unexpected and reshaped keys."""
    own = net.state_dict()
    problems = [f'missing {k}' for k in own if k not in weights]
    problems += [f'unexpected {k}' for k in weights if k not in own]
    problems += [f'{k}: checkpoint {tuple(weights[k].shape)}, network {tuple(v.shape)}'
                 for k, v in own.items() if k in weights and weights[k].shape != v.shape]
    return problems


def load_teacher(opt: dict, device: torch.device) -> nn.Module:
    """``network_teacher`` with the weights of ``path:pretrain_network_teacher``, frozen, in eval mode."""
    if 'network_teacher' not in opt:
        raise ValueError('distill:objective distribution needs network_teacher (the arch of a trained SR model) and '
                         'path:pretrain_network_teacher (its checkpoint, e.g. a full-data net_g_latest.pth)')
    path = opt['path'].get('pretrain_network_teacher')
    if not path or not Path(path).is_file():
        raise FileNotFoundError(f'path:pretrain_network_teacher {path!r}: no such checkpoint')
    check_trained_with(opt, 'network_teacher', Path(path))  # FSRCNN of another scale has the same shapes
    arch = dict(opt['network_teacher'])
    net = build_network(arch)
    weights = _state_dict(path, opt['path'].get('param_key_teacher', 'params'))  # params on resume (BasicSR)
    problems = _mismatch(net, weights)
    if problems:
        raise ValueError(f"path:pretrain_network_teacher {path}: does not fit network_teacher {arch.get('type')} "
                         f"({len(problems)} difference(s): {'; '.join(problems[:6])}) — a checkpoint of another arch "
                         'or scale? network_teacher must repeat the options the teacher was trained with')
    net.load_state_dict(weights, strict=True)
    net.eval().requires_grad_(False)
    check_scale(net, int(opt['scale']), f"network_teacher {arch.get('type')} ({path})")
    return net.to(device)


def check_scale(net: nn.Module, scale: int, what: str) -> None:
    """Refuse a network whose output is not ``scale`` times its input (probed on a small input)."""
    with torch.no_grad():
        out = net(torch.zeros(1, 3, PROBE, PROBE))
    if out.dim() != 4 or out.shape[-1] % PROBE or out.shape[-2] % PROBE:
        raise ValueError(f'{what}: a {PROBE} px input gave output of shape {tuple(out.shape)}; expected an image')
    if out.shape[-1] // PROBE != scale:
        raise ValueError(f'{what}: upsamples x{out.shape[-1] // PROBE} but the data (scale) is x{scale}')


def layer_names(net: nn.Module) -> list[str]:
    return [name for name, _ in net.named_modules() if name]


class FeatureTap:
    """Records the outputs of named layers of ``net`` at each forward pass (``features`` after the call)."""

    def __init__(self, net: nn.Module, names: Sequence[str], where: str = 'distill:layers') -> None:
        modules = dict(net.named_modules())
        unknown = [n for n in names if n not in modules or not n]
        if unknown:
            raise ValueError(f'{where}: the teacher {type(net).__name__} has no layer(s) {unknown}; its layers: '
                             f'{layer_names(net)}')
        self.names = list(names)
        self.features: dict[str, torch.Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._hook(n)) for n in self.names]

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            self.features[name] = output
        return record

    def __call__(self, net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
        """The tapped features of ``net(x)``, in ``names`` order (each [B, C, H, W])."""
        self.features = {}
        net(x)
        unused = [n for n in self.names if n not in self.features]
        if unused:
            raise ValueError(f'distill:layers {unused}: the teacher {type(net).__name__} does not call these layers '
                             'in its forward pass')
        return [self.features[n] for n in self.names]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def default_layers(net: nn.Module, where: str = 'distill:layers') -> list[str]:
    """The top-level children whose outputs are feature maps ([B, C, H, W]): the levels of most SR archs.

    For EDSR that is conv_first, body, conv_after_body, upsample and conv_last: shallow, deep and
    upsampled features and the output itself.
    """
    names = [name for name, _ in net.named_children()]
    tap = FeatureTap(net, names, where)
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, PROBE, PROBE, device=next(net.parameters()).device))
    finally:
        tap.remove()
    chosen = [n for n in names if isinstance(tap.features.get(n), torch.Tensor) and tap.features[n].dim() == 4]
    if not chosen:
        raise ValueError(f'{where}: no top-level layer of the teacher {type(net).__name__} gives a feature map '
                         f'[B, C, H, W]; name them (its layers: {layer_names(net)})')
    return chosen
