"""``prune:`` on any dataset BasicSR builds: the kept samples, each item tagged with its ``key`` and ``index``.

A ``prune:`` block in a dataset's options (the same keys as ``srprune select``)::

    prune:
      scores: experiments/score_srcnn_x4/scores.csv   # or  score: {...}  or  keep: path/to/keep.txt
      keep_ratio: 0.5
      order: hardest          # hardest | easiest | random | stratified
      drop_hardest: 0.05      # fractions of the whole set: keeps ranks 5%..55%
      seed: 0

is applied by ``apply_prune``, a dataset callback of ``_basicsr.hooks``: whatever class BasicSR
built (PairedImageDataset, RealESRGANDataset, RealESRGANPairedDataset, SingleImageDataset,
FFHQDataset, a third-party class that lists its samples in ``paths`` or ``keys``), the result is
a ``PrunedDataset`` view over the kept indices. The view leaves the dataset itself untouched (its
``__getitem__`` reads sample ``indices[i]`` as always, with its own random crops and degradations)
and delegates every other attribute to it, so BasicSR's pipeline sees the dataset it configured.
Samples are keyed by ``formats.keys.dataset_samples``; a class it cannot key is an error.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.quiet import logger_untouched
from srprune_basicsr.formats.keep import read_keep_list
from srprune_basicsr.formats.keys import Samples, dataset_samples, normalisation_note
from srprune_basicsr.formats.scores import match_dataset, read_scores
from srprune_basicsr.scoring.runner import check_options, load_options, run_scoring
from srprune_basicsr.selection import PruneOptions, select_indices


class PrunedDataset(torch.utils.data.Dataset):
    """The kept samples of a built BasicSR dataset (all of them without a ``prune:`` block)."""

    def __init__(self, dataset: Any, samples: Samples, indices: list[int], all_scores: np.ndarray | None = None,
                 kept_scores: np.ndarray | None = None) -> None:
        self.dataset = dataset
        self.samples = samples
        self.indices = list(indices)
        self.sample_keys = [samples.keys[i] for i in self.indices]
        self.total = len(samples)
        self.all_scores, self.kept_scores = all_scores, kept_scores  # when scores chose the subset

    @property
    def keys(self) -> list[str]:
        """The kept samples' keys (``keys`` as PrunedPairedImageDataset always had them)."""
        return self.sample_keys

    @property
    def paths(self) -> list:
        """The kept entries of the dataset's own ``paths`` (or ``keys``) list."""
        own = getattr(self.dataset, 'paths', None)
        own = own if own is not None else self.dataset.keys
        return [own[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[self.indices[index]]
        item['key'] = self.sample_keys[index]
        item['index'] = index
        return item

    def __getattr__(self, name: str) -> Any:
        if name.startswith('__') or name == 'dataset':  # pickling probes and a half-built view
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _where(dataset_opt: dict) -> str:
    """``<option file>: datasets:<name>`` for error messages (the file when BasicSR's parse_options read one)."""
    source = hooks.option_file() or ''
    return f"{source + ': ' if source else ''}datasets:{dataset_opt.get('name', '?')}"


def kept_indices(block: dict, samples: Samples, dataset_opt: dict) -> tuple[list[int], np.ndarray | None]:
    """Positions kept by a ``prune:`` block, and every sample's score when scores chose them."""
    where = _where(dataset_opt)
    prune = PruneOptions.from_block(block, f'{where}:prune')
    if prune.source == 'keep':
        keep = read_keep_list(prune.value)
        position = {k: i for i, k in enumerate(samples.keys)}
        missing = [k for k in keep if k not in position]
        if missing:
            raise ValueError(f'{prune.value}: {len(missing)} of {len(keep)} key(s) are not samples of {where} '
                             f'({len(samples)} samples, e.g. {samples.keys[:3]}), e.g. {missing[:5]}'
                             + normalisation_note(missing, samples.keys))
        return sorted(position[k] for k in keep), None
    scores_path = prune.value if prune.source == 'scores' else score_first(prune.value, dataset_opt)
    try:
        scores = match_dataset(read_scores(scores_path), samples.keys)
    except ValueError as err:
        raise ValueError(f'{where}:prune: {err}') from None
    return select_indices(scores, prune.rule, samples.keys).tolist(), scores


def _score_scale(opt: dict, dataset_opt: dict) -> int:
    """The scale a ``prune: score:`` scorer works at: the dataset's (the option file's ``scale``), else its own.

    Option files of same-size restoration (GFPGAN's FFHQDegradationDataset: the LQ is degraded at
    the GT's size) set no ``scale``; a scorer that reads only the GT (sobel, random) then needs
    none, and one that compares an LR with its GT needs it in the score block.
    """
    from srprune_basicsr.scoring.registry import SCORERS

    scale = dataset_opt.get('scale', opt.get('scale'))
    if scale is not None:
        return scale
    method = opt.get('method', 'loss_value')
    scorer = SCORERS.get(method)  # an unknown method is reported by the score options' own check
    if scorer is not None and scorer.reads_images and scorer.needs_lr:
        raise ValueError(f'{_where(dataset_opt)}:prune:score: the options set no scale, and {method} compares '
                         'the GT with its bicubic LR at a scale: give the score block a `scale:` (e.g. 4), or score '
                         'with a method that reads only the GT (sobel, random)')
    return 1


def score_options(score: dict | str, dataset_opt: dict) -> dict:
    """The checked options of a ``prune: score:`` block (a score option file, or inline), with their scale.

    Inline options without a ``name`` are named ``score_<dataset>_<method>`` (a ``/`` or ``\\`` in
    the dataset's name made ``_``: the name is a folder under ``experiments/``).
    """
    if isinstance(score, str):
        opt = load_options(score)
    else:
        opt = dict(score)
        dataset = re.sub(r'[/\\\0]', '_', str(dataset_opt.get('name', 'train')))
        opt.setdefault('name', f"score_{dataset}_{opt.get('method', 'loss_value')}")
        check_options(opt, f'{_where(dataset_opt)}:prune:score')
    opt['scale'] = _score_scale(opt, dataset_opt)
    return opt


def score_first(score: dict | str, dataset_opt: dict) -> str:
    """Run (or reuse) a scorer on this dataset before training: ``prune: score:``.

    ``score`` is a score option file or the same options inline; its dataset is always this one.
    Scores go to ``experiments/<score name>/scores.csv`` and are reused on resume or rerun while
    the proxy checkpoint, the dataset and the options are unchanged (by fingerprint). Inline options
    without a ``name`` score into ``score_<dataset>_<method>``, so another scorer never meets the
    first one's file; scores of other options or data in that folder are refused, never replaced.
    Under ``--launcher pytorch`` or ``slurm`` every rank builds the dataset, so all ranks share the work.
    """
    import torch.distributed as dist

    opt = score_options(score, dataset_opt)
    dataset = {k: v for k, v in dataset_opt.items() if k not in ('prune', 'phase', 'scale')}
    dataset['io_backend'] = {k: v for k, v in dataset_opt['io_backend'].items() if k not in ('db_paths', 'client_keys')}
    if dataset.get('type') == 'PrunedPairedImageDataset':
        dataset['type'] = 'PairedImageDataset'
    opt['dataset'] = dataset
    distributed = dist.is_available() and dist.is_initialized()
    return str(run_scoring(opt, dist=distributed, progress=False, reuse=True, overwrite=False))


def prune_dataset(dataset: Any, dataset_opt: dict, samples: Samples | None = None) -> PrunedDataset:
    """The view of ``dataset`` that its options' ``prune:`` block keeps (every sample without one)."""
    from basicsr.utils import get_root_logger

    samples = samples or dataset_samples(dataset, _where(dataset_opt))
    block = dataset_opt.get('prune')
    indices, scores = kept_indices(block, samples, dataset_opt) if block else (list(range(len(samples))), None)
    view = PrunedDataset(dataset, samples, indices, scores, None if scores is None else scores[indices])
    if block and dataset_opt.get('phase') == 'train':
        _check_enough(view, dataset_opt)
    get_root_logger().info(f'{type(dataset).__name__} [{dataset_opt.get("name")}]: kept {len(view)} of '
                           f'{view.total} samples' + (f' ({dict(block)})' if block else ''))
    return view


def _check_enough(view: PrunedDataset, dataset_opt: dict) -> None:
    batch = dataset_opt.get('batch_size_per_gpu')
    if batch and len(view) < batch:
        raise ValueError(f'{_where(dataset_opt)}: the kept set has {len(view)} samples, fewer than one batch '
                         f'(batch_size_per_gpu={batch}); keep more or lower the batch size')


def _build_quietly(dataset_opt: dict) -> Any:
    """The dataset class of ``dataset_opt`` built without its block, leaving BasicSR's logger as it was."""
    from basicsr.utils.registry import DATASET_REGISTRY

    plain = dict(dataset_opt, io_backend=dict(dataset_opt.get('io_backend') or {}))
    plain.pop('prune')
    if plain.get('type') == 'PrunedPairedImageDataset':
        plain['type'] = 'PairedImageDataset'
    try:
        with logger_untouched():
            return DATASET_REGISTRY.get(plain['type'])(plain)
    except Exception:  # noqa: BLE001  (BasicSR's own build reports its errors, with their traceback)
        return None


def check_prune_blocks(opt: dict) -> None:
    """Options callback: every ``prune:`` block applies to its dataset, checked before BasicSR writes anything.

    BasicSR creates ``experiments/<name>`` before it builds the datasets; building each pruned
    dataset's class here (without the block; listing samples is cheap) refuses a class that cannot
    be keyed, duplicate keys and keep lists or score files of another dataset first. A ``score:``
    block is only parsed here: its scorer runs when the dataset is built.
    """
    for name, dataset_opt in (opt.get('datasets') or {}).items():
        if not isinstance(dataset_opt, dict) or not dataset_opt.get('prune'):
            continue
        dataset_opt = dict(dataset_opt, name=dataset_opt.get('name', name))
        dataset = _build_quietly(dataset_opt)
        if dataset is None:
            continue
        samples = dataset_samples(dataset, _where(dataset_opt))
        prune = PruneOptions.from_block(dataset_opt['prune'], f'{_where(dataset_opt)}:prune')
        if prune.source != 'score':
            kept_indices(dataset_opt['prune'], samples, dataset_opt)
        else:  # its keys, name: and scale (a scorer that needs one the options do not set) before it runs
            score_options(prune.value, dataset_opt)


def apply_prune(dataset: Any, dataset_opt: dict) -> Any:
    """Dataset callback: a dataset whose options carry ``prune:`` becomes the view of its kept samples."""
    if not dataset_opt.get('prune') or isinstance(dataset, PrunedDataset):
        return dataset
    samples = dataset_samples(dataset, _where(dataset_opt))
    if len(dataset) != len(samples):
        raise ValueError(f'{_where(dataset_opt)}: {type(dataset).__name__} has {len(dataset)} items but lists '
                         'a different number of samples, so a sample cannot be told by its index; prune: cannot '
                         'apply to it')
    return prune_dataset(dataset, dataset_opt, samples)
