"""PrunedPairedImageDataset: BasicSR's PairedImageDataset restricted to the kept samples.

It takes everything PairedImageDataset takes plus a ``prune:`` block, so a user's only edit to an
existing option file is the dataset ``type`` and that block::

    prune:
      scores: experiments/score_srcnn_x4/scores.csv   # or  keep: path/to/keep.txt
      keep_ratio: 0.5
      order: hardest          # hardest | easiest | random | stratified
      drop_hardest: 0.05      # fractions of the whole set: keeps ranks 5%..55%
      seed: 0

The selection is the same code as ``srprune select``. Each sample also carries its ``key`` and
its ``index`` (position in the kept set), so training hooks can tell samples apart.
"""

from __future__ import annotations

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils import get_root_logger
from basicsr.utils.registry import DATASET_REGISTRY

from srprune_basicsr.formats.keep import read_keep_list
from srprune_basicsr.formats.keys import key_of_path
from srprune_basicsr.formats.scores import match_dataset, read_scores
from srprune_basicsr.scoring.runner import check_options, load_options, run_scoring
from srprune_basicsr.selection import PruneOptions, select_indices


@DATASET_REGISTRY.register()
class PrunedPairedImageDataset(PairedImageDataset):
    """PairedImageDataset over the samples a ``prune:`` block keeps (all of them without one)."""

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.keys = [key_of_path(p['gt_path'], self.io_backend_opt['type'] == 'lmdb') for p in self.paths]
        self.total = len(self.paths)
        self.all_scores = None  # every sample's score when a scorer or scores file chose the subset
        self.kept_scores = None
        prune = opt.get('prune')
        if prune:
            kept = self._kept_indices(prune, opt.get('name', '?'))
            self.paths = [self.paths[i] for i in kept]
            self.keys = [self.keys[i] for i in kept]
        self._check_enough(opt)
        get_root_logger().info(f"PrunedPairedImageDataset [{opt.get('name')}]: kept {len(self.paths)} of "
                               f'{self.total} samples' + (f' ({prune})' if prune else ''))

    def _kept_indices(self, block: dict, name: str) -> list[int]:
        prune = PruneOptions.from_block(block, f'datasets:{name}:prune')
        if prune.source == 'keep':
            keep = read_keep_list(prune.value)
            position = {k: i for i, k in enumerate(self.keys)}
            missing = [k for k in keep if k not in position]
            if missing:
                raise ValueError(f"{prune.value}: {len(missing)} key(s) not in the dataset, e.g. {missing[:5]}")
            return sorted(position[k] for k in keep)
        scores_path = prune.value if prune.source == 'scores' else self._score_first(prune.value, name)
        scores = match_dataset(read_scores(scores_path), self.keys)
        kept = select_indices(scores, prune.rule)
        self.all_scores, self.kept_scores = scores, scores[kept]
        return kept.tolist()

    def _score_first(self, score: dict | str, name: str) -> str:
        """Run (or reuse) a scorer on this dataset before training: ``prune: score:``.

        ``score`` is a score option file or the same options inline; its dataset is always this
        one. Scores go to ``experiments/<score name>/scores.csv`` and are reused on resume or rerun
        while the proxy checkpoint, the dataset and the options are unchanged (by fingerprint).
        Under ``--launcher pytorch`` every rank builds the dataset, so all ranks share the work.
        """
        import torch.distributed as dist

        if isinstance(score, str):
            opt = load_options(score)
        else:
            opt = dict(score)
            opt.setdefault('name', f'score_{name}')
            check_options(opt, f'datasets:{name}:prune:score')
        opt['scale'] = self.opt['scale']
        opt['dataset'] = {'name': name, 'type': 'PairedImageDataset', 'io_backend': dict(self.opt['io_backend']),
                          'dataroot_gt': self.opt['dataroot_gt'], 'dataroot_lq': self.opt['dataroot_lq']}
        for key in ('filename_tmpl', 'meta_info_file'):
            if key in self.opt:
                opt['dataset'][key] = self.opt[key]
        opt['dataset']['io_backend'].pop('db_paths', None)
        opt['dataset']['io_backend'].pop('client_keys', None)
        distributed = dist.is_available() and dist.is_initialized()
        return str(run_scoring(opt, dist=distributed, progress=False, reuse=True, overwrite=True))

    def _check_enough(self, opt: dict) -> None:
        batch = opt.get('batch_size_per_gpu')
        if opt.get('phase') == 'train' and batch and len(self.paths) < batch:
            raise ValueError(f"datasets:{opt.get('name')}: the kept set has {len(self.paths)} samples, fewer than "
                             f'one batch (batch_size_per_gpu={batch}); keep more or lower the batch size')

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item['key'] = self.keys[index]
        item['index'] = index
        return item


def refuse_unapplied_prune(dataset: object, dataset_opt: dict) -> object:
    """Dataset callback: a ``prune:`` block on a dataset that does not apply it is an error, not a no-op."""
    if dataset_opt.get('prune') and not isinstance(dataset, PrunedPairedImageDataset):
        raise ValueError(f"datasets:{dataset_opt.get('name', '?')}: type {dataset_opt.get('type')} does not apply "
                         'a prune: block, so the full set would train; use type: PrunedPairedImageDataset (paired '
                         'data) or remove prune:')
    return dataset
