"""The ``distill:`` block of a distillation option file, as a validated frozen dataclass.

Two objectives share the block: ``gradient`` (SRDistillModel: synthetic HR images whose training
gradients match the real ones) and ``distribution`` (SRDistributionDistillModel: synthetic LR
patches whose teacher features match the real ones, labelled by the teacher). A key that only
the other objective reads is refused, naming the objective it belongs to.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from srprune_basicsr.options import option_block

SPACES, INITS, LOSSES = ('pixel', 'latent'), ('real', 'noise'), ('l1', 'mse')
OBJECTIVES, LABELS = ('gradient', 'distribution'), ('teacher', 'bicubic')
MODEL_OF = {'gradient': 'SRDistillModel', 'distribution': 'SRDistributionDistillModel'}
COMMON = {'objective', 'real_batch', 'flips', 'rotations', 'real_limit_gb', 'sheet_groups', 'channels_last',
          'group_batch'}
ONLY = {'gradient': {'space', 'images_per_group', 'init', 'scales', 'crop', 'syn_size', 'outer_loop', 'inner_steps',
                     'lr_net', 'loss', 'finetune_prior', 'export_scales'},
        'distribution': {'ratio', 'min_per_source', 'layers', 'labels', 'weight_mean', 'weight_fourier',
                         'fourier_window', 'fourier_windows', 'fourier_frequencies', 'projection_steps'}}


@dataclass(frozen=True)
class DistillOptions:
    """What to distil and how; see ``options/distill/distill_pixel_x2.yml`` for each key in use."""

    objective: str = 'gradient'
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
    # distribution matching (objective: distribution)
    ratio: float = 0.1
    min_per_source: int | None = None
    layers: tuple[str, ...] | None = None  # default: the teacher's top-level layers that give feature maps
    labels: str = 'teacher'
    weight_mean: float = 1.0
    weight_fourier: float = 1.0
    fourier_window: int = 8
    fourier_windows: int = 4
    fourier_frequencies: int = 256
    projection_steps: int = 50

    def __post_init__(self) -> None:
        for key, allowed in (('objective', OBJECTIVES), ('space', SPACES), ('init', INITS), ('loss', LOSSES),
                             ('labels', LABELS)):
            if getattr(self, key) not in allowed:
                raise ValueError(f'distill:{key} must be one of {allowed}, got {getattr(self, key)!r}')
        for key in ('images_per_group', 'real_batch', 'outer_loop', 'group_batch', 'fourier_window',
                    'fourier_windows', 'fourier_frequencies', 'projection_steps'):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'distill:{key} must be a positive integer, got {value!r}')
        if not isinstance(self.ratio, (int, float)) or isinstance(self.ratio, bool) or not 0 < self.ratio <= 1:
            raise ValueError(f"distill:ratio must be in (0, 1] (a share of each source image's sub-images), "
                             f'got {self.ratio!r}')
        if self.min_per_source is not None and (not isinstance(self.min_per_source, int) or self.min_per_source < 0):
            raise ValueError(f'distill:min_per_source must be a non-negative integer or ~, got {self.min_per_source!r}')
        for key in ('weight_mean', 'weight_fourier'):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f'distill:{key} must be a non-negative number, got {value!r}')
        if self.weight_mean == 0 and self.weight_fourier == 0:
            raise ValueError('distill:weight_mean and distill:weight_fourier are both 0: nothing would be matched')
        if self.layers is not None and (not self.layers or not all(isinstance(n, str) and n for n in self.layers)):
            raise ValueError(f'distill:layers must be a non-empty list of layer names, got {list(self.layers)!r}')


def check_objective_keys(block: dict, objective: str) -> None:
    """Refuse keys that only the other objective reads (they would be silently ignored)."""
    other = next(o for o in OBJECTIVES if o != objective)
    stray = sorted(set(block) & ONLY[other])
    if stray:
        raise ValueError(f'distill:{stray} only apply to objective {other} ({MODEL_OF[other]}); this block is '
                         f'objective {objective}: remove them')


def distill_options(block: Any, opt: dict, objective: str = 'gradient') -> DistillOptions:
    """The ``distill:`` block with defaults, scales filled in from ``opt``; every error names the key.

    ``objective`` is the one the model type runs; a block asking for the other one is refused
    with the model type that runs it.
    """
    block = dict(block or {})
    asked = block.get('objective', objective)
    if asked != objective and asked in MODEL_OF:
        raise ValueError(f"distill:objective {asked} runs with model_type: {MODEL_OF[asked]} (this option file has "
                         f"model_type: {opt.get('model_type')})")
    options = option_block(DistillOptions, {**block, 'objective': asked}, 'distill')
    check_objective_keys(block, objective)
    if options.layers is not None:
        options = dataclasses.replace(options, layers=tuple(options.layers))
    if options.space == 'latent' and 'network_prior' not in opt:
        raise ValueError('distill:space latent needs network_prior (a registered generator with decode(), and '
                         'encode() for init: real) and path:pretrain_network_prior')
    scales = tuple(int(s) for s in (options.scales or [opt['scale']]))
    return dataclasses.replace(options, scales=scales, export_scales=tuple(options.export_scales))
