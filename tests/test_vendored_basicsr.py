"""Repos that ship their own basicsr (DAT, SRFormer, MambaIR): the plugin applies only the fixes that fit it.

``tests/fixtures/dat_fixture`` stands in for such a repo: a trimmed basicsr 1.3.5 without
``data/degradations.py``, ``ops/`` and ``utils/color_util.py``. Each test assembles it in its own
folder and runs it as a user runs DAT, from the repo's root with ``PYTHONPATH=.``. Also here: with
auto-registration off, an option file whose plugin blocks BasicSR would silently ignore is refused.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, latest_log, run_cli, train_options, write_options

import srprune_basicsr_autoload as autoload
from srprune_basicsr._basicsr.fixes import BY_NAME, FIXES
from srprune_basicsr._basicsr.fixes.base import missing_piece
from srprune_basicsr._basicsr.switches import FIXES as SWITCHES
from srprune_basicsr.formats.keys import root_keys
from srprune_basicsr.options import DATASET_BLOCKS, PLUGIN_BLOCKS

FIXTURE = REPO / 'tests' / 'fixtures' / 'dat_fixture'
SKIPPED = {'jpeg_quality': 'missing basicsr.data.degradations', 'fused_act_native': 'missing basicsr.ops',
           'moved_names': 'missing basicsr.utils.color_util'}  # what the trimmed copy lacks


def dat_clone(tmp_path: Path) -> Path:
    """The stand-in repo: the shared modules of the installed basicsr, completed by the fixture's own files."""
    root, installed = tmp_path / 'DAT', Path(importlib.util.find_spec('basicsr').origin).parent
    for relative in (FIXTURE / 'copied_from_basicsr.txt').read_text().split():
        (root / 'basicsr' / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(installed / relative, root / 'basicsr' / relative)
    shutil.copytree(FIXTURE / 'basicsr', root / 'basicsr', dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns('__pycache__'))
    return root


def run_in_repo(root: Path, args: list[str], program: str = sys.executable, **env: str) -> subprocess.CompletedProcess:
    """``PYTHONPATH=. <program> <args>`` in the repo's root, on the CPU, with every fix on unless ``env`` says."""
    env = dict(os.environ, SRPRUNE_COMPAT_DISABLE='', CUDA_VISIBLE_DEVICES='', PYTHONUNBUFFERED='1', PYTHONPATH='.',
               **env)
    return subprocess.run([program, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def srprune() -> str:
    return str(Path(sys.executable).with_name('srprune'))


def dat_options(tiny_data: Path, keep: Path | None, name: str = 'dat_pruned') -> dict:
    """DAT's x2 layout on the tiny LMDBs: PairedImageDataset, the recording DATModel, a kept list."""
    opt = train_options(tiny_data, name, total_iter=3)
    opt['model_type'] = 'DATModel'
    del opt['val']
    del opt['datasets']['val']
    opt['datasets']['train'].update(batch_size_per_gpu=2, gt_size=32)
    if keep is not None:
        opt['datasets']['train']['prune'] = {'keep': str(keep)}
    opt['network_g'] = {'type': 'TinyDAT', 'in_chans': 3, 'embed_dim': 8, 'upscale': 2}
    opt['train']['pixel_opt'] = {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}
    opt['logger']['save_checkpoint_freq'] = 100
    return opt


def keep_list(tiny_data: Path, tmp_path: Path) -> list[str]:
    keys = root_keys(tiny_data / 'train_sub' / 'HR_sub.lmdb')[::3]  # 6 of the 16 sub-images
    (tmp_path / 'keep.txt').write_text(''.join(f'{k}\n' for k in keys))
    return keys


@pytest.mark.slow
def test_a_repos_own_basicsr_trains_on_the_pruned_subset(tiny_data: Path, tmp_path: Path) -> None:
    root = dat_clone(tmp_path)
    keys = keep_list(tiny_data, tmp_path)
    write_options(root / 'dat_pruned.yml', dat_options(tiny_data, tmp_path / 'keep.txt'))
    proc = run_in_repo(root, ['basicsr/train.py', '-opt', 'dat_pruned.yml'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = root / 'experiments' / 'dat_pruned'
    # 6 kept samples, batch 2, 3 iterations: one epoch, each kept sample trained on once, no other
    assert sorted((exp / 'fed_keys.txt').read_text().split()) == sorted(keys)
    log = latest_log(exp)
    assert 'PairedImageDataset [skimage_photos_sub]: kept 6 of 16 samples' in log and 'iter:       3,' in log
    summary = next(line for line in log.splitlines() if 'fixes applied' in line)
    assert f"basicsr 1.3.5 ({root / 'basicsr'}): 15 fixes applied; 3 skipped: " in summary
    assert all(f'{name} ({why})' in summary for name, why in SKIPPED.items())


def test_srprune_fixes_lists_what_a_repos_own_basicsr_lacks(tmp_path: Path) -> None:
    root = dat_clone(tmp_path)
    proc = run_in_repo(root, ['fixes', '--json'], program=srprune())
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report['basicsr'] == {'version': '1.3.5', 'path': str(root / 'basicsr')}
    assert {row['name']: row['why_not'] for row in report['fixes'] if row['applies'] == 'no'} == SKIPPED
    assert all(row['applies'] == 'yes' for row in report['fixes'] if row['name'] not in SKIPPED)


@pytest.mark.parametrize('disable', ['', 'jpeg_quality,epoch_count'])
def test_srprune_fixes_on_the_installed_basicsr(tmp_path: Path, disable: str) -> None:
    proc = run_cli(['fixes'], tmp_path, disable=disable, launcher=[srprune()])
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith('basicsr 1.4.2 (') and lines[1].split() == ['fix', 'kind', 'applies', 'why', 'not']
    states = {line.split()[0]: line.split()[2] for line in lines[2:]}
    off = set(filter(None, disable.split(',')))
    assert states == {name: 'off' if name in off else 'yes' for name in SWITCHES}
    assert all('switched off (SRPRUNE_COMPAT_DISABLE)' in line for line in lines[2:] if line.split()[0] in off)


def test_every_fix_is_a_module_with_its_switch() -> None:
    assert [fix.name for fix in FIXES] == list(BY_NAME) and set(BY_NAME) == set(SWITCHES)
    assert all(fix.kind in ('version', 'semantics') for fix in FIXES)
    assert all(not fix.needs for fix in FIXES if fix.early)  # they run before basicsr is imported
    assert all(fix.apply.__module__ == f'srprune_basicsr._basicsr.fixes.{fix.name}' for fix in FIXES)


def test_a_missing_piece_is_named_and_a_broken_module_is_not_hidden(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert missing_piece('basicsr.data.data_sampler:EnlargedSampler') is None
    assert missing_piece('basicsr.data.no_such_module:x') == 'basicsr.data.no_such_module'
    assert missing_piece('basicsr.models.base_model:BaseModel.no_such') == 'basicsr.models.base_model.BaseModel.no_such'
    (tmp_path / 'broken_fixture_module.py').write_text('import no_such_dependency\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match='no_such_dependency'):
        missing_piece('broken_fixture_module')


FIX_FAILS = '''
import srprune_basicsr_autoload as autoload
autoload.loading = True
from srprune_basicsr._basicsr import fixes
autoload.loading = False
def broken():
    raise RuntimeError('boom')
object.__setattr__(fixes.BY_NAME['adam_betas'], 'apply', broken)
import basicsr
'''


def test_a_fix_that_fails_names_its_own_switch(tmp_path: Path) -> None:
    proc = run_in_repo(tmp_path, ['-c', FIX_FAILS])
    assert proc.returncode == 1 and 'boom' in proc.stderr
    assert 'raised by the basicsr fix adam_betas' in proc.stderr
    assert 'set SRPRUNE_COMPAT_DISABLE=adam_betas' in proc.stderr and 'SRPRUNE_AUTOLOAD=0' not in proc.stderr


def test_the_guard_knows_every_block_basicsr_would_ignore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autoload, 'plugged_in', lambda: False)  # as in a process that never imported the plugin
    assert set(autoload.DATASET_BLOCKS) == set(DATASET_BLOCKS)
    assert set(autoload.TOP_BLOCKS) == set(PLUGIN_BLOCKS) - {'distill', 'imports'}  # those fail or do no harm
    opt = {'prune_online': {'keep_ratio': 0.5}, 'prune_tracking': None,
           'datasets': {'train': {'prune': {'keep': 'k.txt'}}, 'val': {'prune': {}}}}
    assert autoload.unplugged_blocks(opt) == ['prune_online', 'datasets:train:prune']
    with pytest.raises(ValueError, match=r'^x\.yml: prune_online, datasets:train:prune: srprune_basicsr is not '
                                         r'plugged in \(SRPRUNE_AUTOLOAD=0\)') as err:
        autoload.refuse_unplugged(opt, 'x.yml')
    assert 'SRPRUNE_COMPAT_DISABLE=<fix>' in str(err.value)
    autoload.refuse_unplugged({'datasets': {'train': {'name': 'plain'}}}, 'x.yml')  # nothing to ignore


@pytest.mark.slow
@pytest.mark.parametrize('block', ['prune', 'prune_tracking', None])
def test_with_autoload_off_a_plugin_block_is_refused_not_ignored(tiny_data: Path, tmp_path: Path,
                                                                 block: str | None) -> None:
    """DAT's basicsr imports without the plugin; BasicSR would then ignore the block and train on every sample."""
    root = dat_clone(tmp_path)
    opt = dat_options(tiny_data, tmp_path / 'keep.txt' if block == 'prune' else None)
    keep_list(tiny_data, tmp_path)
    if block == 'prune_tracking':
        opt['prune_tracking'] = {'view': 'fixed'}
    write_options(root / 'dat_pruned.yml', opt)
    proc = run_in_repo(root, ['basicsr/train.py', '-opt', 'dat_pruned.yml'], SRPRUNE_AUTOLOAD='0')
    exp = root / 'experiments' / 'dat_pruned'
    if block is None:  # nothing the plugin would have done: BasicSR trains as it does alone
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert 'Number of train images: 16' in latest_log(exp) and not (exp / 'fed_keys.txt').exists()
        return
    where = 'datasets:train:prune' if block == 'prune' else 'prune_tracking'
    assert proc.returncode == 1
    assert f'ValueError: dat_pruned.yml: {where}: srprune_basicsr is not plugged in (SRPRUNE_AUTOLOAD=0)' in proc.stderr
    assert not exp.exists()


def test_the_documented_needs_are_the_fixes_own() -> None:
    rows = [line.split(' | ') for line in (REPO / 'docs' / 'basicsr-fixes.md').read_text().splitlines()
            if line.startswith('| `') and line.count(' | ') == 1]
    documented = {name.strip('| `'): sorted(re.findall(r'`([^`]+)`', needs)) for name, needs in rows}
    assert documented == {fix.name: sorted(n.replace(':', '.') for n in fix.needs) or ['import basicsr'] * fix.early
                          for fix in FIXES}


def test_srprune_fixes_without_an_importable_basicsr_is_one_line_and_rc_2(tmp_path: Path) -> None:
    proc = run_cli(['fixes'], tmp_path, disable='functional_tensor', launcher=[srprune()])
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["srprune fixes: error: cannot import basicsr: ModuleNotFoundError: "
                                                "No module named 'torchvision.transforms.functional_tensor'"]
