"""The shape every scorer has, and the registry ``srprune score`` picks them from by ``method:``.

A scorer turns batches of whole LR/GT sub-images (no random crop, no flip) and their dataset
indices into one float64 difficulty per sample (larger = harder). Its score depends on the
sample only, so batches can be split across ranks or resumed without changing any value.

Adding a scorer is one module holding a ``Scorer`` subclass decorated with
``@register_scorer('name')``, plus its import line in ``scoring/registry.py``::

    @register_scorer('brightness')
    class BrightnessScorer(Scorer):
        def score_batch(self, lq, gt, indices):
            return gt.double().flatten(1).mean(1).numpy()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

COMMON_KEYS = frozenset({'batch_size', 'center_crop'})  # ``score:`` keys the dataset pass reads


@dataclass
class ScorerContext:
    """What a scorer may need to set itself up: the whole option dict, the data's keys, the device."""

    opt: dict
    keys: list[str]
    device: torch.device = field(default_factory=lambda: torch.device('cpu'))

    @property
    def score(self) -> dict:
        """The option file's ``score:`` block."""
        return self.opt.get('score') or {}


class Scorer:
    """Base class: ``from_options`` builds the scorer, ``score_batch`` scores, ``provenance`` documents it.

    ``reads_images = False`` scorers get ``lq = gt = None`` (the pass then reads no image at all);
    ``needs_lr = False`` scorers read only the GT (``lq`` may be None: LQ-only sets can be scored);
    ``options`` are the ``score:`` keys the scorer understands besides the common ones.
    """

    name: ClassVar[str] = ''
    reads_images: ClassVar[bool] = True
    needs_lr: ClassVar[bool] = True
    options: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_options(cls, context: ScorerContext) -> Scorer:
        """The scorer for an option file (the default takes no options)."""
        return cls()

    def provenance(self) -> dict[str, Any]:
        """Fields added to scores.json and to the resume fingerprint (checkpoint hashes, borders, ...)."""
        return {}

    def lr_used(self, source: str, scale: int) -> str:
        """Which LR this scorer used, for scores.json: the stored one, a bicubic of the GT, or none."""
        if not (self.reads_images and self.needs_lr):
            return 'not used'
        if source == 'bicubic':
            return f'MATLAB bicubic of the GT, x{scale}, rounded to 8 bits (the set stores no LR)'
        return 'stored in the dataset'

    def parameters(self, score: dict) -> dict[str, Any]:
        """The ``score:`` options as recorded in scores.json (defaults filled in where they matter)."""
        return dict(score)

    def score_batch(self, lq: torch.Tensor | None, gt: torch.Tensor | None, indices: np.ndarray) -> np.ndarray:
        """Difficulties of a batch: lq (N,C,h,w) and gt (N,C,H,W) in [0, 1], RGB; ``indices`` in the dataset."""
        raise NotImplementedError


SCORERS: dict[str, type[Scorer]] = {}


def register_scorer(name: str) -> Callable[[type[Scorer]], type[Scorer]]:
    """Class decorator: make a scorer available as ``method: name``; a second use of a name is an error."""

    def register(cls: type[Scorer]) -> type[Scorer]:
        if name in SCORERS and SCORERS[name] is not cls:
            raise ValueError(f'scorer {name!r} is registered twice ({SCORERS[name].__module__}, {cls.__module__})')
        cls.name = name
        SCORERS[name] = cls
        return cls

    return register


def option_keys() -> frozenset[str]:
    """Every ``score:`` key some registered scorer understands."""
    return COMMON_KEYS.union(*(cls.options for cls in SCORERS.values()))
