"""The global random streams of a training process, saved with a checkpoint and restored on resume.

BasicSR seeds Python's ``random``, NumPy's global generator and torch's once, at start; its random
crops and flips (``paired_random_crop``, ``augment``) draw from ``random`` in the process that loads
the data. A run resumed inside an epoch (``prune_online:``) continues that epoch's data order where
it stopped, but after a fresh seeding its crops and flips would be the ones of the run's first
samples, not of the samples that come next. Saving the streams with each checkpoint and putting
them back just before the resumed epoch's first sample is drawn makes the rest of the run draw what
the uninterrupted run drew. Loader worker processes seed their own streams (BasicSR's
``worker_init_fn``, the same every epoch), which this does not reach.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch


def capture() -> dict[str, np.ndarray]:
    """This process's Python, NumPy and torch (CPU and, once initialised, CUDA) random states, as arrays."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {'py_version': np.int64(version), 'py_internal': np.array(internal, dtype=np.uint64),
             'py_gauss': np.float64(np.nan if gauss is None else gauss), 'np_keys': np.asarray(keys),
             'np_pos': np.int64(pos), 'np_has_gauss': np.int64(has_gauss), 'np_cached': np.float64(cached),
             'np_name': np.array(name), 'torch_cpu': torch.get_rng_state().numpy()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['torch_cuda'] = np.stack([s.numpy() for s in torch.cuda.get_rng_state_all()])
    return state


def restore(state: dict[str, np.ndarray]) -> None:
    """Put back what ``capture`` saved (the CUDA states only where the same devices are present)."""
    gauss = float(state['py_gauss'])
    random.setstate((int(state['py_version']), tuple(int(v) for v in state['py_internal']),
                     None if np.isnan(gauss) else gauss))
    np.random.set_state((str(state['np_name']), state['np_keys'], int(state['np_pos']), int(state['np_has_gauss']),
                         float(state['np_cached'])))
    torch.set_rng_state(torch.from_numpy(np.array(state['torch_cpu'], dtype=np.uint8)))
    if 'torch_cuda' in state and torch.cuda.is_available() and torch.cuda.device_count() == len(state['torch_cuda']):
        torch.cuda.set_rng_state_all([torch.from_numpy(np.array(s, dtype=np.uint8)) for s in state['torch_cuda']])


def save(path: Path) -> None:
    """``capture`` into ``path`` (written under a temporary name, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'{path.stem}.partial.npz')
    np.savez(tmp, **capture())
    tmp.replace(path)


def load(path: Path) -> dict[str, np.ndarray] | None:
    """What ``save`` wrote, or None when there is no such file (a checkpoint saved before it existed)."""
    if not path.is_file():
        return None
    with np.load(path) as saved:
        return {key: saved[key] for key in saved.files}
