"""``srprune score``: build the dataset (and proxy) from an option file, score every sample, write scores.csv.

The pass is deterministic (whole sub-images or a fixed centre crop, no flips). Samples are scored
in fixed batches of consecutive indices; under ``--launcher pytorch`` rank r takes batches r, r+W,
..., so every batch has the same content as in a single-process run and the values are equal.
Each rank appends finished batches to ``<out>.progress.rank<r>`` (headed by a fingerprint of the
options, dataset and checkpoint), so an interrupted run resumes where it stopped and gives a
byte-identical scores.csv; a progress file from other options is discarded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from srprune_basicsr.data.lmdb_tools import sha256_of
from srprune_basicsr.data.pruned_paired_dataset import sample_key
from srprune_basicsr.scoring.baselines import BicubicPsnrScorer, RandomScorer, SobelScorer
from srprune_basicsr.scoring.loss_value import LossValueScorer
from srprune_basicsr.scoring.scores import write_scores

TOP_KEYS = {'name', 'method', 'scale', 'num_gpu', 'manual_seed', 'dataset', 'network_g', 'path', 'score', 'out'}
SCORE_KEYS = {'loss', 'border', 'center_crop', 'batch_size', 'seed', 'channels_last'}
METHODS = ('loss_value', 'random', 'sobel', 'bicubic_psnr')


def load_options(path: str | os.PathLike) -> dict:
    """Read a score option file (BasicSR's YAML dialect) and check its keys."""
    from basicsr.utils.options import ordered_yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: no such option file')
    opt = yaml.load(path.read_text(), Loader=ordered_yaml()[0])
    opt = json.loads(json.dumps(opt))  # OrderedDict -> dict
    check_options(opt, str(path))
    for key in ('name', 'dataset', 'scale'):
        if key not in opt:
            raise ValueError(f'{path}: missing key {key!r}')
    return opt


def check_options(opt: dict, source: str) -> None:
    """Unknown keys and methods are errors naming ``source`` (a file, or where an inline block sits)."""
    path = source
    unknown = set(opt) - TOP_KEYS
    if unknown:
        raise ValueError(f'{path}: unknown key(s) {sorted(unknown)}; known: {sorted(TOP_KEYS)}')
    unknown = set(opt.get('score') or {}) - SCORE_KEYS
    if unknown:
        raise ValueError(f'{path}: unknown score: key(s) {sorted(unknown)}; known: {sorted(SCORE_KEYS)}')
    if opt.get('method', 'loss_value') not in METHODS:
        raise ValueError(f"{path}: method must be one of {METHODS}, got {opt.get('method')!r}")


def load_proxy(opt: dict) -> tuple[torch.nn.Module, str]:
    """Build ``network_g`` and load ``path:pretrain_network_g``; a mismatch names both."""
    from basicsr.archs import build_network

    net = build_network(dict(opt['network_g']))
    ckpt = (opt.get('path') or {}).get('pretrain_network_g')
    if not ckpt:
        raise ValueError('method loss_value needs path:pretrain_network_g (the trained proxy)')
    if not Path(ckpt).is_file():
        raise FileNotFoundError(f'{ckpt}: no such proxy checkpoint')
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    param_key = opt['path'].get('param_key_g', 'params')
    if isinstance(state, dict) and param_key in state:
        state = state[param_key]
    state = {k.removeprefix('module.'): v for k, v in state.items()}
    try:
        net.load_state_dict(state, strict=opt['path'].get('strict_load_g', True))
    except RuntimeError as err:
        raise ValueError(f"{ckpt} does not match network_g {opt['network_g']}: {str(err).splitlines()[0]} "
                         f'{str(err).splitlines()[1:3]}') from None
    return net, sha256_of(ckpt)


def build_scorer(opt: dict, total: int, device: torch.device) -> tuple[object, dict]:
    """The scorer of ``opt['method']`` and the provenance it adds."""
    method = opt.get('method', 'loss_value')
    score = opt.get('score') or {}
    if method == 'loss_value':
        net, sha = load_proxy(opt)
        scorer = LossValueScorer(net, device, score.get('loss', 'mse'), score.get('border', 'auto'),
                                 score.get('channels_last', True))
        return scorer, {'proxy_checkpoint': opt['path']['pretrain_network_g'], 'proxy_sha256': sha,
                        'border': scorer.border}
    if method == 'random':
        return RandomScorer(score.get('seed', 0), total), {}
    if method == 'sobel':
        return SobelScorer(), {}
    scorer = BicubicPsnrScorer(opt['scale'], score.get('border', 'auto'))
    return scorer, {'border': scorer.border}


def build_score_dataset(opt: dict):  # noqa: ANN201  (a BasicSR dataset)
    """The dataset in its deterministic (validation-phase) form: whole sub-images, no augmentation."""
    from basicsr.data import build_dataset

    dataset_opt = dict(opt['dataset'], phase='val', scale=opt['scale'])
    dataset_opt.setdefault('name', 'score')
    dataset_opt.pop('prune', None)
    return build_dataset(dataset_opt)


def center_crop(img: torch.Tensor, size: int | None, option: str = 'score:center_crop') -> torch.Tensor:
    """The central ``size`` x ``size`` crop (``None``: the whole image); ``option`` names the setting in errors."""
    if not size:
        return img
    h, w = img.shape[-2:]
    if size > min(h, w):
        raise ValueError(f'{option} {size} is larger than a {h}x{w} sample')
    top, left = (h - size) // 2, (w - size) // 2
    return img[..., top:top + size, left:left + size]


def batches(total: int, batch_size: int, rank: int, world: int) -> Iterator[np.ndarray]:
    """Batches of consecutive indices; this rank's share is every world-th batch."""
    starts = range(0, total, batch_size)
    for number, start in enumerate(starts):
        if number % world == rank:
            yield np.arange(start, min(start + batch_size, total))


class Progress:
    """Append-only record of finished batches for resuming: ``index,score`` lines after a fingerprint."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.done: dict[int, float] = {}
        if path.is_file():
            lines = path.read_text().splitlines()
            if lines and lines[0] == fingerprint:
                for line in lines[1:]:
                    parts = line.split(',')
                    if len(parts) == 2 and parts[1]:
                        self.done[int(parts[0])] = float(parts[1])
            else:
                path.unlink()
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(fingerprint + '\n')
        self.file = open(path, 'a')

    def add(self, indices: np.ndarray, values: np.ndarray) -> None:
        self.file.write(''.join(f'{i},{v:.17g}\n' for i, v in zip(indices.tolist(), values.tolist(), strict=True)))
        self.file.flush()
        os.fsync(self.file.fileno())
        self.done.update(zip(indices.tolist(), values.tolist(), strict=True))

    def close(self, remove: bool) -> None:
        self.file.close()
        if remove:
            self.path.unlink(missing_ok=True)


def _batch_tensors(dataset, indices: np.ndarray, crop: int | None, scale: int) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    items = [dataset[int(i)] for i in indices]
    lq = torch.stack([center_crop(it['lq'], crop // scale if crop else None) for it in items])
    gt = torch.stack([center_crop(it['gt'], crop) for it in items])
    return lq, gt


def _stored_fingerprint(scores_path: Path) -> str | None:
    meta = scores_path.with_suffix('.json')
    try:
        return json.loads(meta.read_text()).get('fingerprint')
    except (OSError, ValueError):
        return None


def _gather(done: dict[int, float], dist: bool) -> dict[int, float]:
    if not dist:
        return done
    import torch.distributed as tdist

    parts: list = [None] * tdist.get_world_size()
    tdist.all_gather_object(parts, done)
    merged: dict[int, float] = {}
    for part in parts:
        merged.update(part)
    return merged


def run_scoring(opt: dict, out: str | os.PathLike | None = None, dist: bool = False, progress: bool = True,
                reuse: bool = False) -> Path:
    """Score every sample of ``opt['dataset']``; rank 0 writes scores.csv (+ scores.json).

    With ``reuse``, an existing scores.csv whose scores.json carries the same fingerprint (method,
    options, dataset keys and paths, proxy checkpoint sha256) is returned as it is.
    """
    from basicsr.utils import get_root_logger
    from basicsr.utils.dist_util import get_dist_info

    rank, world = get_dist_info()
    out = Path(out or opt.get('out') or Path('experiments') / opt['name'] / 'scores.csv')
    score = opt.get('score') or {}
    num_gpu = opt.get('num_gpu', 'auto')
    use_cuda = torch.cuda.is_available() and num_gpu != 0
    device = torch.device('cuda', torch.cuda.current_device()) if use_cuda else torch.device('cpu')
    dataset = build_score_dataset(opt)
    lmdb = dataset.io_backend_opt['type'] == 'lmdb'
    keys = [sample_key(p, lmdb) for p in dataset.paths]
    scorer, extra = build_scorer(opt, len(keys), device)
    batch_size = int(score.get('batch_size', 32))
    dataset_record = {k: str(Path(opt['dataset'][k]).resolve()) for k in ('dataroot_gt', 'dataroot_lq')
                      if opt['dataset'].get(k)}
    provenance = {'dataset': dict(dataset_record, io_backend=opt['dataset'].get('io_backend')),
                  'sample_count': len(keys), 'scale': opt['scale'], 'option_name': opt['name'], **extra}
    parameters = dict(score)
    if opt.get('method', 'loss_value') == 'loss_value':
        parameters.setdefault('loss', 'mse')
    fingerprint = hashlib.sha256(json.dumps([opt.get('method', 'loss_value'), parameters, provenance, keys],
                                            sort_keys=True, default=str).encode()).hexdigest()
    if reuse and out.is_file() and _stored_fingerprint(out) == fingerprint:
        get_root_logger().info(f'srprune: reusing {out} (same proxy, dataset and scorer options)')
        return out
    record = Progress(out.with_name(f'{out.name}.progress.rank{rank}'), fingerprint)
    todo = [b for b in batches(len(keys), batch_size, rank, world) if not all(int(i) in record.done for i in b)]
    bar = tqdm(total=len(todo), desc=f'score {opt.get("method", "loss_value")}', unit='batch',
               disable=not progress or rank != 0)
    for indices in todo:
        lq, gt = _batch_tensors(dataset, indices, score.get('center_crop'), opt['scale'])
        record.add(indices, np.asarray(scorer.score_batch(lq, gt, indices), dtype=np.float64))
        bar.update()
    bar.close()
    merged = _gather(record.done, dist)
    if rank == 0:
        missing = [keys[i] for i in range(len(keys)) if i not in merged]
        if missing:
            raise RuntimeError(f'{out}: {len(missing)} sample(s) were not scored, e.g. {missing[:5]}')
        write_scores(out, keys, [merged[i] for i in range(len(keys))], method=opt.get('method', 'loss_value'),
                     parameters=parameters, fingerprint=fingerprint, **provenance)
    if dist:
        import torch.distributed as tdist

        tdist.barrier()
    record.close(remove=True)
    return out
