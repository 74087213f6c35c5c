"""``srprune score``: build the dataset (and scorer) from an option file, score every sample, write scores.csv.

The pass is ``dataset_pass``'s: deterministic, in fixed batches of consecutive indices, shared
out over ranks. Each rank appends finished batches to ``<out>.progress.rank<r>`` (headed by a
fingerprint of the options, dataset and scorer provenance), so an interrupted run resumes where it
stopped and gives a byte-identical scores.csv; a progress file from other options is discarded.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from srprune_basicsr.formats.atomic import check_apart, check_replaceable, describes
from srprune_basicsr.formats.keys import dataset_keys
from srprune_basicsr.formats.lmdb import check_intact
from srprune_basicsr.formats.scores import write_scores
from srprune_basicsr.options import check_keys, check_run_name, import_packages, load_yaml
from srprune_basicsr.scoring import dataset_pass
from srprune_basicsr.scoring.base import Scorer, ScorerContext, option_keys
from srprune_basicsr.scoring.registry import SCORERS

TOP_KEYS = {'_source', 'imports', 'name', 'method', 'scale', 'num_gpu', 'manual_seed', 'dataset', 'network_g', 'path',
            'score', 'out', 'history'}


def load_options(path: str | os.PathLike) -> dict:
    """Read a score option file (BasicSR's YAML dialect) and check its keys."""
    opt = load_yaml(path, 'option file')
    check_options(opt, str(path))
    import_packages(opt, str(path))
    for key in ('name', 'dataset', 'scale'):
        if key not in opt:
            raise ValueError(f'{path}: missing key {key!r}')
    opt['_source'] = str(path)  # named in errors about the dataset
    return opt


def check_options(opt: dict, source: str) -> None:
    """Unknown keys and methods are errors naming ``source`` (a file, or where an inline block sits)."""
    check_keys(opt, TOP_KEYS, source)
    check_keys(opt.get('score') or {}, option_keys(), source, 'score: ')
    check_run_name(opt.get('name'), source)  # the scores go to experiments/<name>/
    if opt.get('method', 'loss_value') not in SCORERS:
        raise ValueError(f"{source}: method must be one of {tuple(SCORERS)}, got {opt.get('method')!r}")
    check_pass_options(opt.get('score') or {}, opt.get('scale'), source)


def check_pass_options(score: dict, scale: int | None, source: str) -> None:
    """The dataset pass's own ``score:`` keys: a positive batch size, a centre crop that is a multiple of the scale."""
    batch = score.get('batch_size', 32)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f'{source}: score:batch_size must be a positive integer, got {batch!r}')
    crop = score.get('center_crop')
    if crop is not None and (not isinstance(crop, int) or crop < 1 or (scale and crop % int(scale))):
        raise ValueError(f'{source}: score:center_crop must be a positive multiple of the scale {scale}, got {crop!r}')


def build_scorer(opt: dict, keys: list[str], device: torch.device) -> Scorer:
    """The registered scorer of ``opt['method']``, set up from the options."""
    return SCORERS[opt.get('method', 'loss_value')].from_options(ScorerContext(opt, keys, device))


build_score_dataset = dataset_pass.build_validation_dataset


class Progress:
    """Append-only record of finished batches for resuming: ``index,score`` lines after a fingerprint.

    Only complete lines count: a record cut short by an interruption (no final newline, or not
    ``int,float``) and everything after it are cut off the file and recomputed, so a resumed run
    writes the same bytes as an uninterrupted one.
    """

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.done: dict[int, float] = {}
        if path.is_file():
            text = path.read_text()
            if text.startswith(fingerprint + '\n'):
                path.write_text(self._read_complete(text))
            else:
                path.unlink()
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(fingerprint + '\n')
        self.file = open(path, 'a')

    def _read_complete(self, text: str) -> str:
        """Fill ``done`` from the complete records of ``text``; returns the text up to the first bad one."""
        lines = text.split('\n')
        good = [lines[0]]
        for line in lines[1:-1]:  # the last element follows the final newline: empty, or a cut record
            index, _, value = line.partition(',')
            try:
                self.done[int(index)] = float(value)
            except ValueError:
                break
            good.append(line)
        return '\n'.join(good) + '\n'

    def add(self, indices: np.ndarray, values: np.ndarray) -> None:
        self.file.write(''.join(f'{i},{v:.17g}\n' for i, v in zip(indices.tolist(), values.tolist(), strict=True)))
        self.file.flush()
        os.fsync(self.file.fileno())
        self.done.update(zip(indices.tolist(), values.tolist(), strict=True))

    def close(self, remove: bool) -> None:
        self.file.close()
        if remove:
            self.path.unlink(missing_ok=True)


def _stored_fingerprint(scores_path: Path) -> str | None:
    """The fingerprint of the run that wrote ``scores_path``, if its scores.json describes that very file."""
    meta = scores_path.with_suffix('.json')
    try:
        record = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return record.get('fingerprint') if describes(record, scores_path) else None


def _describe_stored(scores_path: Path) -> str:
    """What an existing scores.json says it scored (for a refusal that names both runs)."""
    try:
        meta = json.loads(scores_path.with_suffix('.json').read_text())
    except (OSError, ValueError):
        return 'an unknown run (no readable scores.json)'
    if not describes(meta, scores_path):
        return 'an unknown run (its scores.json describes another file: a write stopped between the two renames)'
    dataset = (meta.get('dataset') or {}).get('dataroot_gt') or (meta.get('dataset') or {}).get('dataroot_lq')
    return (f"{meta.get('method', '?')} {meta.get('parameters', {})} on {meta.get('sample_count', '?')} samples"
            + (f' of {dataset}' if dataset else ''))


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


def score_device(opt: dict) -> torch.device:
    """The current GPU unless there is none or ``num_gpu: 0``."""
    if torch.cuda.is_available() and opt.get('num_gpu', 'auto') != 0:
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def score_pass(scorer: Scorer, dataset: object, batches: list[np.ndarray], record: Progress, opt: dict,
               progress: bool) -> None:
    """Score ``batches`` (those not yet in ``record``) and append each finished batch to it."""
    score = opt.get('score') or {}
    bar = tqdm(total=len(batches), desc=f'score {scorer.name}', unit='batch', disable=not progress)
    for indices in batches:
        values = np.empty(len(indices), dtype=np.float64)
        if scorer.reads_images:
            for positions, lq, gt in dataset_pass.load_batch(dataset, indices, score.get('center_crop'), opt['scale']):
                values[positions] = scorer.score_batch(lq, gt, indices[positions])
        else:
            values[:] = scorer.score_batch(None, None, indices)
        record.add(indices, values)
        bar.update()
    bar.close()


def score_inputs(opt: dict) -> list:
    """What a score run reads: the data roots, the proxy checkpoint, the history (an output never touches them)."""
    dataset = opt.get('dataset') or {}
    return [dataset.get('dataroot_gt'), dataset.get('dataroot_lq'), dataset.get('meta_info'),
            dataset.get('meta_info_file'), (opt.get('path') or {}).get('pretrain_network_g'), opt.get('history')]


def run_scoring(opt: dict, out: str | os.PathLike | None = None, dist: bool = False, progress: bool = True,
                reuse: bool = False, overwrite: bool = False) -> Path:
    """Score every sample of ``opt['dataset']``; rank 0 writes scores.csv (+ scores.json).

    With ``reuse``, an existing scores.csv whose scores.json carries the same fingerprint (method,
    options, dataset keys and paths, scorer provenance such as the proxy's sha256) is returned as it is.
    An existing scores.csv is otherwise replaced only with ``overwrite`` (and only if this package
    wrote it); the output may not touch an input. Both are checked before any scoring.
    """
    from basicsr.utils import get_root_logger
    from basicsr.utils.dist_util import get_dist_info
    from basicsr.utils.registry import DATASET_REGISTRY

    from srprune_basicsr.checks import check_registered

    rank, world = get_dist_info()
    out = Path(out or opt.get('out') or Path('experiments') / opt['name'] / 'scores.csv')
    score = opt.get('score') or {}
    check_apart(out, score_inputs(opt))
    check_apart(out.with_suffix('.json'), score_inputs(opt), option=f'the provenance record of {out},')
    where = f"{opt.get('_source', opt['name'])}: dataset"
    check_registered(DATASET_REGISTRY, opt['dataset'].get('type'), f'{where}:type')
    for key in ('dataroot_gt', 'dataroot_lq', 'meta_info', 'meta_info_file'):
        root = opt['dataset'].get(key)
        if root and not Path(str(root)).expanduser().exists():
            raise FileNotFoundError(f'{where}:{key} {root}: no such file or folder')
        if root and key.startswith('dataroot'):
            check_intact(root, f'{where}:{key}')
    built = build_score_dataset(opt)
    keys = dataset_keys(built, where)
    lr = dataset_pass.lr_source(built, where)
    scorer = build_scorer(opt, keys, score_device(opt))
    if scorer.reads_images and scorer.needs_lr and lr == 'none':
        raise ValueError(f'{where}: {opt["dataset"].get("type")} holds only LQ images, and {scorer.name} compares an '
                         'LR with its GT; score it with a method that needs only one image (sobel, random)')
    dataset_record = {k: str(Path(opt['dataset'][k]).resolve()) for k in ('dataroot_gt', 'dataroot_lq', 'meta_info',
                                                                         'meta_info_file') if opt['dataset'].get(k)}
    provenance = {'dataset': dict(dataset_record, io_backend=opt['dataset'].get('io_backend'),
                                  type=opt['dataset'].get('type')),
                  'sample_count': len(keys), 'scale': opt['scale'], 'option_name': opt['name'],
                  'lr': scorer.lr_used(lr, opt['scale']), **scorer.provenance()}
    parameters = scorer.parameters(score)
    fingerprint = hashlib.sha256(json.dumps([scorer.name, parameters, provenance, keys],
                                            sort_keys=True, default=str).encode()).hexdigest()
    if reuse and out.is_file():
        if _stored_fingerprint(out) == fingerprint:
            get_root_logger().info(f'srprune: reusing {out} (same scorer, options and dataset)')
            return out
        if not overwrite:
            raise ValueError(f'{out} holds scores of {_describe_stored(out)}, not of this run\'s {scorer.name} '
                             f'{parameters} on {len(keys)} samples; it is kept: give the score block another '
                             '`name:` or move the old folder away to score again')
    check_replaceable(out, overwrite, out.with_suffix('.json'))  # every rank: none may start what rank 0 refuses
    get_root_logger().info(f'srprune: scoring {len(keys)} samples with {scorer.name} into {out}')
    record = Progress(out.with_name(f'{out.name}.progress.rank{rank}'), fingerprint)
    batches = dataset_pass.rank_batches(len(keys), int(score.get('batch_size', 32)), rank, world)
    todo = [b for b in batches if not all(int(i) in record.done for i in b)]
    need_lr = scorer.reads_images and scorer.needs_lr
    with dataset_pass.fixed_view(built, opt['scale'], where, need_lr) as dataset:  # closes an LMDB it opened
        score_pass(scorer, dataset, todo, record, opt, progress and rank == 0)
    merged = _gather(record.done, dist)
    if rank == 0:
        missing = [keys[i] for i in range(len(keys)) if i not in merged]
        if missing:
            raise RuntimeError(f'{out}: {len(missing)} sample(s) were not scored, e.g. {missing[:5]}')
        write_scores(out, keys, [merged[i] for i in range(len(keys))], method=scorer.name,
                     parameters=parameters, overwrite=overwrite, inputs=score_inputs(opt), fingerprint=fingerprint,
                     **provenance)
    if dist:
        import torch.distributed as tdist

        tdist.barrier()
    record.close(remove=True)
    return out
