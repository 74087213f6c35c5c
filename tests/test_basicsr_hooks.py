"""The one wrapper of BasicSR's builders: callbacks in order, and every fix switchable, the seeded shuffle too."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.switches import FIXES, enabled


def test_builders_are_wrapped_once_and_callbacks_run_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import basicsr.data
    import basicsr.models
    import basicsr.test
    import basicsr.train

    assert basicsr.train.build_dataset is basicsr.data.build_dataset is basicsr.test.build_dataset
    assert basicsr.train.build_model is basicsr.models.build_model is basicsr.test.build_model
    assert not hasattr(basicsr.data.build_dataset.__wrapped__, '__wrapped__')  # wrapped exactly once
    hooks.install()  # a second install changes nothing
    assert not hasattr(basicsr.data.build_dataset.__wrapped__, '__wrapped__')

    seen: list[str] = []
    monkeypatch.setitem(hooks._callbacks, 'dataset', list(hooks._callbacks['dataset']))
    hooks.register('dataset', lambda ds, opt: seen.append('late') or ds, order=90)
    hooks.register('dataset', lambda ds, opt: seen.append('early') or ds, order=10)
    dataset = basicsr.data.build_dataset({'name': 'x', 'type': 'SingleImageDataset', 'dataroot_lq': '.',
                                          'io_backend': {'type': 'disk'}, 'phase': 'val', 'scale': 2})
    assert seen == ['early', 'late'] and len(dataset) >= 0
    with pytest.raises(ValueError, match='unknown hook point'):
        hooks.register('loss', print)


def test_every_fix_has_a_switch() -> None:
    assert set(FIXES) == {'functional_tensor', 'cpu_resume', 'gloo_launcher', 'weights_only', 'spawn_workers',
                          'utf8_keys', 'pool_models_cpu', 'slurm_launcher', 'atomic_saves', 'moved_names',
                          'jpeg_quality', 'adam_betas', 'fused_act_native', 'fork_workers', 'distutils_version',
                          'epoch_count', 'resume_epoch', 'seeded_shuffle'}
    assert all(enabled(name) for name in FIXES)
    with pytest.raises(ValueError, match='unknown fix'):
        enabled('typo')


@pytest.mark.parametrize('disable,seeded', [('', True), ('seeded_shuffle', False), ('all', False)])
def test_the_seeded_shuffle_can_be_switched_off(disable: str, seeded: bool) -> None:
    code = ('import sys, types\n'  # with every fix off, the import shim by hand: basicsr cannot load without it
            'from torchvision.transforms import _functional_tensor as ft\n'
            'shim = types.ModuleType("torchvision.transforms.functional_tensor")\n'
            'shim.__dict__.update({k: v for k, v in vars(ft).items() if not k.startswith("__")})\n'
            'sys.modules[shim.__name__] = shim\n'
            'import srprune_basicsr\n'
            'from basicsr.data.data_sampler import EnlargedSampler\n'
            's = EnlargedSampler(list(range(50)), 1, 0)\n'
            's.set_epoch(3)\n'
            'plain = list(s)\n'
            's.shuffle_seed = 7\n'
            'print(plain != list(s))\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env={**os.environ, 'SRPRUNE_COMPAT_DISABLE': disable})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(seeded)
