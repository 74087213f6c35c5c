"""The ``distill:`` block of an SRDistillModel option file, as a validated frozen dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from srprune_basicsr.options import option_block

SPACES, INITS, LOSSES = ('pixel', 'latent'), ('real', 'noise'), ('l1', 'mse')


@dataclass(frozen=True)
class DistillOptions:
    """What to distil and how; see ``options/distill/distill_pixel_x2.yml`` for each key in use."""

    space: str = 'pixel'
    images_per_group: int = 1
    init: str = 'real'
    scales: tuple[int, ...] | None = None  # the option file's scale when not given
    real_batch: int = 16
    crop: int | None = None
    syn_size: int | None = None
    outer_loop: int = 1
    inner_steps: int = 0
    lr_net: float = 0.01
    loss: str = 'l1'
    flips: bool = True
    rotations: bool = True
    real_limit_gb: float = 8.0
    sheet_groups: int = 8
    finetune_prior: bool = False
    export_scales: tuple[int, ...] = (2, 3, 4)
    channels_last: bool | str = 'auto'
    group_batch: int = 1

    def __post_init__(self) -> None:
        for key, allowed in (('space', SPACES), ('init', INITS), ('loss', LOSSES)):
            if getattr(self, key) not in allowed:
                raise ValueError(f'distill:{key} must be one of {allowed}, got {getattr(self, key)!r}')
        for key in ('images_per_group', 'real_batch', 'outer_loop', 'group_batch'):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'distill:{key} must be a positive integer, got {value!r}')


def distill_options(block: Any, opt: dict) -> DistillOptions:
    """The ``distill:`` block with defaults, scales filled in from ``opt``; every error names the key."""
    options = option_block(DistillOptions, dict(block or {}), 'distill')
    if options.space == 'latent' and 'network_prior' not in opt:
        raise ValueError('distill:space latent needs network_prior (a registered generator with decode(), and '
                         'encode() for init: real) and path:pretrain_network_prior')
    scales = tuple(int(s) for s in (options.scales or [opt['scale']]))
    return dataclasses.replace(options, scales=scales, export_scales=tuple(options.export_scales))
