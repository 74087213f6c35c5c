"""Every registered scorer (the toy one of ``toy_scorer.py`` included) is deterministic, resumable and
writes the score format: one finite float per dataset key, in dataset order, with scores.json beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import toy_scorer  # noqa: F401  (registers 'toy_brightness': one file, one registration)
from basicsr.archs import build_network

from srprune_basicsr.formats.history import History
from srprune_basicsr.formats.keys import root_keys
from srprune_basicsr.formats.scores import read_scores
from srprune_basicsr.scoring import runner
from srprune_basicsr.scoring.registry import SCORERS


def scorer_options(name: str, data: Path, tmp_path: Path) -> dict:
    """A score option dict for ``name`` on the tiny training set, with what that scorer needs."""
    opt = {'name': f'score_{name}', 'method': name, 'scale': 2, 'num_gpu': 0, 'score': {'batch_size': 3},
           'dataset': {'name': 'tiny', 'type': 'PairedImageDataset', 'io_backend': {'type': 'lmdb'},
                       'dataroot_gt': str(data / 'train_sub' / 'HR_sub.lmdb'),
                       'dataroot_lq': str(data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')}}
    if name == 'loss_value':
        torch.manual_seed(0)
        net = build_network({'type': 'FSRCNN', 'upscale': 2})
        torch.save({'params': net.state_dict()}, tmp_path / 'proxy.pth')
        opt.update(network_g={'type': 'FSRCNN', 'upscale': 2}, path={'pretrain_network_g': str(tmp_path / 'proxy.pth')})
    if name == 'dynamic_uncertainty':
        keys = root_keys(data / 'train_sub' / 'HR_sub.lmdb')
        history = History.create(tmp_path / 'prune_tracking', keys, 6, {'view': 'fixed', 'every': 1})
        rng = np.random.default_rng(0)
        for it in range(6):
            history.append(it + 1, rng.normal(30, 1, len(keys)), np.ones(len(keys), dtype=bool))
        opt.update(history=str(tmp_path / 'prune_tracking'), score={'batch_size': 3, 'window': 3})
    return opt


@pytest.mark.parametrize('name', sorted(SCORERS))
def test_scorer_is_deterministic_resumable_and_writes_the_format(name: str, tiny_data: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    opt = scorer_options(name, tiny_data, tmp_path)
    first = runner.run_scoring(dict(opt), tmp_path / 'a' / 'scores.csv', progress=False)
    scores = read_scores(first)
    assert scores.keys == root_keys(tiny_data / 'train_sub' / 'HR_sub.lmdb')
    assert np.isfinite(scores.values).all() and scores.meta['method'] == name and scores.meta['count'] == 16
    again = runner.run_scoring(dict(opt), tmp_path / 'b' / 'scores.csv', progress=False)
    assert again.read_bytes() == first.read_bytes()

    real_add, calls, interrupted = runner.Progress.add, [], []

    def interrupted_add(self, indices, values):  # noqa: ANN001,ANN202
        calls.append(len(indices))
        if len(calls) == 3 and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt
        return real_add(self, indices, values)

    monkeypatch.setattr(runner.Progress, 'add', interrupted_add)
    out = tmp_path / 'c' / 'scores.csv'
    with pytest.raises(KeyboardInterrupt):
        runner.run_scoring(dict(opt), out, progress=False)
    assert not out.exists()
    calls.clear()
    runner.run_scoring(dict(opt), out, progress=False)
    assert len(calls) == 6 - 2  # 16 samples in batches of 3: two batches were done before the interruption
    assert out.read_bytes() == first.read_bytes()


def test_a_scorer_name_is_registered_once() -> None:
    from srprune_basicsr.scoring.base import Scorer, register_scorer

    with pytest.raises(ValueError, match="scorer 'sobel' is registered twice"):
        register_scorer('sobel')(type('Other', (Scorer,), {}))
