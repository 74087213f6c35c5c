"""Outputs never destroy data and bad inputs get one clear message (exit 2), sources hashed before and after.

Each test is one input a hostile-but-realistic user tried; see docs/safety.md for the guarantees.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import photo_crops, run_cli

from srprune_basicsr.formats.lmdb import read_meta_info, verify_lmdb
from srprune_basicsr.formats.scores import write_scores

NAMES = ('HR_sub.lmdb', 'LR_bicubic_X2_sub.lmdb', 'LR_bicubic_X4_sub.lmdb')


def digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (or ``root`` itself) by content."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob('*') if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def refused(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2, one clear line naming what is wrong, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in proc.stderr, (fragment, proc.stderr[-2000:])


@pytest.fixture
def data(tiny_data: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny sub-image LMDBs (GT, x2, x4) in ``D/``."""
    folder = tmp_path / 'D'
    for name in NAMES:
        shutil.copytree(tiny_data / 'train_sub' / name, folder / name)
    return folder


def keys_of(lmdb: Path) -> list[str]:
    return [e.key for e in read_meta_info(lmdb)]


# ------------------------------------------------------------------ the output never touches the input
@pytest.mark.parametrize('where,relation', [('same', 'is the input'), ('parent', 'contains the input'),
                                            ('inside', 'lies inside the input')])
def test_prepare_out_touching_hr_is_refused_even_with_overwrite(tmp_path: Path, where: str, relation: str) -> None:
    hr = tmp_path / 'photos' / 'HR'
    photo_crops(hr, 2, 96)
    out = {'same': hr, 'parent': hr.parent, 'inside': hr / 'sub'}[where]
    before = digest(hr)
    proc = run_cli(['prepare', '--hr', str(hr), '--out', str(out), '--scales', '2', '--crop', '48', '--step', '48',
                    '--overwrite'], tmp_path)
    refused(proc, relation, str(hr))
    assert digest(hr) == before


def test_rebuild_into_the_sources_folder_is_refused(data: Path, tmp_path: Path) -> None:
    keep = tmp_path / 'keep.txt'
    keep.write_text('\n'.join(keys_of(data / NAMES[0])[:4]) + '\n')
    before = digest(data)
    proc = run_cli(['lmdb', 'rebuild', '--src', str(data / NAMES[0]), '--src', str(data / NAMES[1]), '--keep',
                    str(keep), '--out', str(data), '--overwrite'], tmp_path)
    refused(proc, 'contains the input')
    assert digest(data) == before  # the sources and the sibling x4 LMDB are all still there


def test_lmdb_build_out_inside_its_folder_is_refused(tmp_path: Path) -> None:
    photo_crops(tmp_path / 'imgs', 2, 32)
    before = digest(tmp_path / 'imgs')
    refused(run_cli(['lmdb', 'build', '--folder', 'imgs', '--out', 'imgs/x.lmdb'], tmp_path), 'lies inside the input')
    assert digest(tmp_path / 'imgs') == before


def test_select_onto_its_scores_or_their_provenance_is_refused(tmp_path: Path) -> None:
    write_scores(tmp_path / 'dir' / 'scores.csv', [f'k{i}' for i in range(10)], np.arange(10.0), method='t')
    before = digest(tmp_path / 'dir')
    args = ['select', '--scores', 'dir/scores.csv', '--keep-ratio', '0.5']
    refused(run_cli([*args, '--out', 'dir/scores.csv', '--overwrite'], tmp_path), 'is the input')
    refused(run_cli([*args, '--out', 'dir/scores.txt'], tmp_path), 'provenance record', 'scores.json')
    assert digest(tmp_path / 'dir') == before


def test_overwrite_replaces_only_what_srprune_made(tmp_path: Path) -> None:
    write_scores(tmp_path / 'scores.csv', [f'k{i}' for i in range(10)], np.arange(10.0), method='t')
    (tmp_path / 'notes.txt').write_text('my notes\n')
    args = ['select', '--scores', 'scores.csv', '--keep-ratio', '0.5']
    refused(run_cli([*args, '--out', 'notes.txt', '--overwrite'], tmp_path), 'was not made by srprune')
    assert (tmp_path / 'notes.txt').read_text() == 'my notes\n'
    assert run_cli([*args, '--out', 'keep.txt'], tmp_path).returncode == 0
    refused(run_cli([*args, '--out', 'keep.txt'], tmp_path), 'already exists; pass --overwrite')
    assert run_cli([*args, '--keep-ratio', '0.3', '--out', 'keep.txt', '--overwrite'], tmp_path).returncode == 0
    assert len((tmp_path / 'keep.txt').read_text().split()) == 3
    folder = tmp_path / 'mine'
    folder.mkdir()
    (folder / 'a.txt').write_text('a')
    photo_crops(tmp_path / 'imgs', 2, 32)
    refused(run_cli(['lmdb', 'build', '--folder', 'imgs', '--out', 'mine', '--overwrite'], tmp_path),
            'was not made by srprune', '.srprune-output')
    assert (folder / 'a.txt').read_text() == 'a'


@pytest.mark.slow
def test_concurrent_rebuilds_never_leave_an_incomplete_output(data: Path, tmp_path: Path) -> None:
    keep = tmp_path / 'keep.txt'
    keep.write_text('\n'.join(keys_of(data / NAMES[0])[::2]) + '\n')
    cmd = [sys.executable, '-m', 'srprune_basicsr', 'lmdb', 'rebuild', *sum((['--src', str(data / n)] for n in NAMES),
                                                                           []), '--keep', str(keep), '--out', 'out',
           '--overwrite']
    for attempt in range(10):
        procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        for rc, err in results:
            assert rc in (0, 2) and 'Traceback' not in err, (attempt, rc, err)
        assert any(rc == 0 for rc, _ in results), (attempt, results)  # one fails clearly at most, never both
        if any(rc == 0 for rc, _ in results):  # whoever returned 0 left a complete output
            assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == sorted([*NAMES, '.srprune-output',
                                                                                  'keep.json', 'keep.txt'])
            assert all(verify_lmdb(tmp_path / 'out' / n).ok and len(keys_of(tmp_path / 'out' / n)) == 8 for n in NAMES)
        assert not list(tmp_path.glob('*.partial')) and not list(tmp_path.glob('*.old'))


# ------------------------------------------------------------------ damaged inputs
def test_truncated_data_mdb_is_named_not_a_crash(data: Path, tmp_path: Path) -> None:
    target = data / NAMES[0] / 'data.mdb'
    os.truncate(target, target.stat().st_size // 2)
    proc = run_cli(['lmdb', 'verify', str(data / NAMES[0])], tmp_path)
    assert proc.returncode == 1 and 'data.mdb' in proc.stdout and 'truncated' in proc.stdout, proc
    keep = tmp_path / 'keep.txt'
    keep.write_text(keys_of(data / NAMES[1])[0] + '\n')
    refused(run_cli(['lmdb', 'rebuild', '--src', str(data / NAMES[0]), '--keep', str(keep), '--out', 'out'],
                    tmp_path), 'data.mdb', 'truncated')
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'out.partial').exists()


def test_bad_image_folders_are_named(tmp_path: Path) -> None:
    photo_crops(tmp_path / 'imgs', 2, 32)
    (tmp_path / 'imgs' / 'gone.png').symlink_to(tmp_path / 'nowhere.png')
    refused(run_cli(['lmdb', 'build', '--folder', 'imgs', '--out', 'x.lmdb'], tmp_path), 'point at nothing', 'gone.png')
    (tmp_path / 'imgs' / 'gone.png').unlink()
    (tmp_path / 'imgs' / 'empty.png').write_bytes(b'')
    refused(run_cli(['lmdb', 'build', '--folder', 'imgs', '--out', 'x.lmdb'], tmp_path), 'empty', 'empty.png')
    (tmp_path / 'imgs' / 'empty.png').unlink()
    shutil.copy(tmp_path / 'imgs' / 'img000.png', tmp_path / 'imgs' / 'my photo.png')
    refused(run_cli(['lmdb', 'build', '--folder', 'imgs', '--out', 'x.lmdb'], tmp_path), 'my photo.png')
    assert not (tmp_path / 'x.lmdb').exists()


@pytest.mark.parametrize('args,message', [
    (['--scales', '-2'], '--scales must be positive integers'),
    (['--scales', '2', '--compress-level', '12'], '--compress-level must be a PNG level from 0 to 9'),
])
def test_prepare_numbers_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    photo_crops(tmp_path / 'hr', 2, 96)
    refused(run_cli(['prepare', '--hr', 'hr', '--out', 'out', '--crop', '48', '--step', '48', '--lmdb', *args],
                    tmp_path), message)
    assert not (tmp_path / 'out').exists()


def test_report_refuses_a_keep_list_or_gt_lmdb_of_other_data(data: Path, tmp_path: Path) -> None:
    keys = keys_of(data / NAMES[0])
    write_scores(tmp_path / 's.csv', keys, np.arange(16.0), method='t', dataset={'dataroot_gt': str(data / NAMES[0])})
    (tmp_path / 'keep.txt').write_text('\n'.join([keys[0], 'ghost_s001']) + '\n')
    refused(run_cli(['report', '--scores', 's.csv', '--keep', 'keep.txt', '--out', 'r'], tmp_path),
            'keep.txt', 'not in', 'ghost_s001')
    write_scores(tmp_path / 'o.csv', [f'other_s{i:03d}' for i in range(16)], np.arange(16.0), method='t')
    refused(run_cli(['report', '--scores', 'o.csv', '--gt-lmdb', str(data / NAMES[0]), '--out', 'r'], tmp_path),
            'not in this GT LMDB')
    proc = run_cli(['report', '--scores', 'o.csv', '--out', 'r'], tmp_path)
    assert proc.returncode == 0 and 'samples_skipped: no GT LMDB (give --gt-lmdb)' in proc.stdout
    assert not (tmp_path / 'r' / 'samples.png').exists() and (tmp_path / 'r' / 'score_hist.png').is_file()


def test_light_errors_are_one_line_and_debug_keeps_the_traceback(tmp_path: Path) -> None:
    refused(run_cli(['select', '--scores', 'missing.csv', '--keep-ratio', '0.5', '--out', 'k.txt'], tmp_path),
            'missing.csv: no such score file')
    proc = run_cli(['--debug', 'select', '--scores', 'missing.csv', '--keep-ratio', '0.5', '--out', 'k.txt'], tmp_path)
    assert proc.returncode == 1 and 'Traceback' in proc.stderr


def test_images_written_by_cv2_are_fine(tmp_path: Path) -> None:  # a control for the folder checks above
    photo_crops(tmp_path / 'imgs', 2, 32)
    cv2.imwrite(str(tmp_path / 'imgs' / 'extra.png'), np.zeros((32, 32, 3), np.uint8))
    assert run_cli(['lmdb', 'build', '--folder', 'imgs', '--out', 'x.lmdb'], tmp_path).returncode == 0
    assert keys_of(tmp_path / 'x.lmdb') == ['extra', 'img000', 'img001']


# ------------------------------------------------------------------ scoring
def score_options(data: Path, tmp_path: Path, **changes: object) -> dict:
    import torch
    from basicsr.archs import build_network

    torch.manual_seed(0)
    torch.save({'params': build_network({'type': 'SRCNN', 'upscale': 2}).state_dict()}, tmp_path / 'proxy.pth')
    opt = {'name': 'score_safety', 'method': 'loss_value', 'scale': 2, 'num_gpu': 0,
           'dataset': {'name': 'tiny', 'type': 'PairedImageDataset', 'io_backend': {'type': 'lmdb'},
                       'dataroot_gt': str(data / NAMES[0]), 'dataroot_lq': str(data / NAMES[1])},
           'network_g': {'type': 'SRCNN', 'upscale': 2}, 'path': {'pretrain_network_g': str(tmp_path / 'proxy.pth')},
           'score': {'batch_size': 3}}
    return {**opt, **changes}


@pytest.mark.slow
def test_score_output_rules(data: Path, tmp_path: Path) -> None:
    import yaml

    (tmp_path / 's.yml').write_text(yaml.safe_dump(score_options(data, tmp_path)))
    before = digest(data)
    refused(run_cli(['score', '-opt', 's.yml', '--out', str(data / NAMES[0] / 'meta_info.txt'), '--overwrite'],
                    tmp_path), 'lies inside the input')
    (tmp_path / 'mine.csv').write_text('precious\n')
    refused(run_cli(['score', '-opt', 's.yml', '--out', 'mine.csv'], tmp_path), 'already exists; pass --overwrite')
    refused(run_cli(['score', '-opt', 's.yml', '--out', 'mine.csv', '--overwrite'], tmp_path), 'not made by srprune')
    assert (tmp_path / 'mine.csv').read_text() == 'precious\n' and digest(data) == before
    assert run_cli(['score', '-opt', 's.yml', '--out', 'ok.csv'], tmp_path).returncode == 0
    assert run_cli(['score', '-opt', 's.yml', '--out', 'ok.csv', '--overwrite'], tmp_path).returncode == 0


def test_an_lq_set_of_another_scale_is_refused(data: Path, tmp_path: Path) -> None:
    from srprune_basicsr.scoring.runner import run_scoring

    opt = score_options(data, tmp_path)
    opt['dataset'] = dict(opt['dataset'], dataroot_lq=str(data / NAMES[2]))  # the x4 LMDB under scale 2
    first = keys_of(data / NAMES[0])[0]
    with pytest.raises(ValueError, match=rf"sample '{first}': GT 48x48 .* is not 2 x its LQ 12x12"):
        run_scoring(opt, tmp_path / 'x.csv', progress=False)
    assert not (tmp_path / 'x.csv').exists()


def test_a_proxy_trained_at_another_scale_is_refused(data: Path, tmp_path: Path) -> None:
    import yaml

    from srprune_basicsr.scoring.runner import run_scoring

    models = tmp_path / 'experiments' / 'proxy_x4' / 'models'
    models.mkdir(parents=True)
    opt = score_options(data, tmp_path)
    shutil.copy(tmp_path / 'proxy.pth', models / 'net_g_latest.pth')
    (models.parent / 'train_proxy_x4.yml').write_text(yaml.safe_dump({'name': 'proxy_x4', 'scale': 4}))
    opt['path'] = {'pretrain_network_g': str(models / 'net_g_latest.pth')}
    with pytest.raises(ValueError, match='trained at scale 4 .*train_proxy_x4.yml.*scale 2'):
        run_scoring(opt, tmp_path / 'x.csv', progress=False)


def test_a_progress_record_cut_mid_number_is_recomputed(data: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from srprune_basicsr.scoring import runner

    opt = score_options(data, tmp_path)
    clean = runner.run_scoring(dict(opt), tmp_path / 'clean' / 'scores.csv', progress=False)
    real_add, calls = runner.Progress.add, []

    def interrupted(self, indices, values):  # noqa: ANN001,ANN202
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_add(self, indices, values)

    monkeypatch.setattr(runner.Progress, 'add', interrupted)
    out = tmp_path / 'cut' / 'scores.csv'
    with pytest.raises(KeyboardInterrupt):
        runner.run_scoring(dict(opt), out, progress=False)
    monkeypatch.setattr(runner.Progress, 'add', real_add)
    progress = out.with_name('scores.csv.progress.rank0')
    os.truncate(progress, progress.stat().st_size - 17)  # the last record loses its end, mid-number
    runner.run_scoring(dict(opt), out, progress=False)
    assert out.read_bytes() == clean.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize('change,message', [
    ({'score': {'border': -3}}, "score:border must be 'auto' or a non-negative integer, got -3"),
    ({'score': {'center_crop': 47}}, 'score:center_crop must be a positive multiple of the scale 2, got 47'),
    ({'score': {'batch_size': 0}}, 'score:batch_size must be a positive integer, got 0'),
])
def test_bad_score_numbers_are_named(data: Path, tmp_path: Path, change: dict, message: str) -> None:
    import yaml

    (tmp_path / 's.yml').write_text(yaml.safe_dump(score_options(data, tmp_path, **change)))
    refused(run_cli(['score', '-opt', 's.yml', '--out', 'x.csv'], tmp_path), message)
    assert not (tmp_path / 'x.csv').exists()


@pytest.mark.slow
def test_history_window_zero_is_refused(tmp_path: Path) -> None:
    from srprune_basicsr.formats.history import History

    history = History.create(tmp_path / 'prune_tracking', ['a', 'b'], 4, {'view': 'fixed', 'every': 1, 'window': 3})
    for it in range(4):
        history.append(it + 1, np.array([30.0 + it, 31.0]), np.ones(2, dtype=bool))
    refused(run_cli(['score', '--from-history', 'prune_tracking', '--window', '0'], tmp_path),
            'window must be at least 2 snapshots, got 0')


# ------------------------------------------------------------------ datasets, study, demo
class ClipDataset(torch.utils.data.Dataset):
    """A video-style dataset: keys name clips whose frames are read around them (``num_frame``)."""

    def __init__(self, opt: dict) -> None:
        self.opt, self.keys = opt, ['000/00000001', '000/00000002']

    def __len__(self) -> int:
        return len(self.keys)


class UnlistedDataset(ClipDataset):
    """A dataset that lists its samples nowhere the plugin can read."""

    def __init__(self, opt: dict) -> None:
        self.opt, self.frames = opt, {'a': 1}


@pytest.mark.parametrize('cls,frames,reason', [
    (ClipDataset, {'num_frame': 5}, 'its samples are video clips'),
    (UnlistedDataset, {}, 'it lists its samples in neither a paths nor a keys list')])
def test_a_prune_block_on_a_dataset_that_cannot_be_keyed_is_an_error(data: Path, cls: type, frames: dict,
                                                                     reason: str) -> None:
    from srprune_basicsr.data.pruned_dataset import apply_prune

    opt = {'name': 'clips', 'type': cls.__name__, 'dataroot_gt': str(data), 'phase': 'train',
           'io_backend': {'type': 'disk'}, 'scale': 2, 'prune': {'keep': 'keep.txt'}, **frames}
    with pytest.raises(ValueError, match=f'datasets:clips: cannot key the samples of {cls.__name__}: {reason}'):
        apply_prune(cls(opt), opt)


@pytest.mark.parametrize('change,message', [
    ({'methods': {'sobel': {'scores': 's.csv', 'bands': {0.5: [0.7]}}}}, 'band 0.7 at keep ratio 0.5'),
    ({'methods': {'sobel': {'scores': 's.csv', 'bands': [0.7]}}}, 'band 0.7 at keep ratio 0.5'),
    ({'seeds': []}, 'seeds must be a non-empty list'),
    ({'keep_ratios': [0]}, r'keep_ratios must be a list of shares in \(0, 1\]'),
    ({'keep_ratios': [1.5]}, r'keep_ratios must be a list of shares in \(0, 1\]'),
    ({'distilled': {'pixel': {'dataroot_GT': 'x'}}}, 'distilled:pixel: give dataroot_gt and dataroot_lq'),
])
def test_a_study_is_checked_whole_before_the_first_arm(tmp_path: Path, change: dict, message: str) -> None:
    import yaml

    from srprune_basicsr.study.runner import load_study

    study = {'name': 'bad', 'scale': 2, 'train_options': 't.yml', 'data': {}, 'benchmarks': {}, 'keep_ratios': [0.5],
             **change}
    (tmp_path / 'study.yml').write_text(yaml.safe_dump(study))
    with pytest.raises(ValueError, match=message):
        load_study(tmp_path / 'study.yml')


def test_a_list_band_that_fits_some_ratios_runs_there_with_a_note() -> None:
    from srprune_basicsr.study.arms import check_arms, expand_arms

    study = {'keep_ratios': [0.1, 0.5], 'methods': {'sobel': {'scores': 's.csv', 'bands': [0.6]}}}
    assert check_arms(study, 'x') == ['sobel: band 0.6 skipped at keep ratio 0.5 (keep ratio + band > 1)']
    assert [a.label for a in expand_arms(study) if a.method == 'sobel'] == ['sobel@0.1+0.6']


@pytest.mark.slow
def test_demo_refuses_a_foreign_workdir_and_bad_iterations(tmp_path: Path) -> None:
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'thesis.tex').write_text('precious')
    refused(run_cli(['demo', '--workdir', 'mine', '--overwrite'], tmp_path), 'holds files the demo did not make')
    assert (tmp_path / 'mine' / 'thesis.tex').read_text() == 'precious'
    for iters in ('0', '-5'):
        proc = run_cli(['demo', '--workdir', 'd', '--iters', iters], tmp_path)
        assert proc.returncode == 2 and 'must be at least 1' in proc.stderr and not (tmp_path / 'd').exists()


# ------------------------------------------------------------------ train and test option files
@pytest.mark.slow
@pytest.mark.parametrize('edit,message', [
    ({'train.optim_g.lr': '2e-4'}, "train:optim_g:lr is the text '2e-4', not a number"),
    ({'network_g.type': 'SRCN'}, "network_g:type 'SRCN' is not registered; did you mean ['SRCNN'"),
    ({'model_type': 'SRModle'}, "model_type 'SRModle' is not registered; did you mean ['SRModel'"),
    ({'datasets.train.type': 'PairedImageDatset'}, "datasets:train:type 'PairedImageDatset' is not registered"),
    ({'train.total_iter': '30'}, "train:total_iter is the text '30', not a number"),
    ({'datasets.train.dataroot_gt': 'nowhere.lmdb'}, 'datasets:train:dataroot_gt nowhere.lmdb: no such file'),
    ({'datasets.train.prune': {'keep_ratio': 0.5}}, 'give exactly one of'),
    ({'prune_tracking': {'windw': 3}}, "unknown key(s) ['windw']"),
    ({'datasets.train.prune': {'scores': 'missing.csv', 'keep_ratio': 0.5}}, 'missing.csv'),
    ({'model_type': 'SRDistillModel', 'distill': {'crops': 48}}, "unknown key(s) ['crops']"),
])
def test_train_refuses_bad_options_before_making_anything(tiny_data: Path, tmp_path: Path, edit: dict,
                                                          message: str) -> None:
    from conftest import train_options, write_options

    opt = train_options(tiny_data, 'refused')
    for dotted, value in edit.items():
        *parents, last = dotted.split('.')
        node = opt
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    write_options(tmp_path / 'bad.yml', opt)
    refused(run_cli(['train', '-opt', 'bad.yml'], tmp_path), 'bad.yml', message)
    assert not (tmp_path / 'experiments').exists()


@pytest.mark.slow
def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    (tmp_path / 'broken.yml').write_text('name: x\nscale: 2\ndatasets:\n  train: [unclosed\n')
    refused(run_cli(['train', '-opt', 'broken.yml'], tmp_path), 'broken.yml:', 'not valid YAML')


@pytest.mark.slow
def test_test_with_an_lq_set_of_another_scale_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    import yaml
    from conftest import REPO

    opt = yaml.safe_load((REPO / 'options' / 'test' / 'test_SRCNN_x2.yml').read_text())
    opt['datasets'] = {'test_1': {'name': 'tiny', 'type': 'PairedImageDataset', 'io_backend': {'type': 'disk'},
                                  'dataroot_gt': str(tiny_data / 'val' / 'GTmod12'),
                                  'dataroot_lq': str(tiny_data / 'val' / 'LRbicx4')}}
    opt['path'] = {'pretrain_network_g': None, 'strict_load_g': True}
    opt['num_gpu'] = 0
    (tmp_path / 't.yml').write_text(yaml.safe_dump(opt))
    refused(run_cli(['test', '-opt', 't.yml'], tmp_path), 'datasets:tiny', 'is not 2 x its LQ')


@pytest.mark.slow
def test_a_truncated_training_state_names_the_one_before_it(tiny_data: Path, tmp_path: Path) -> None:
    from conftest import train_options, write_options

    opt = train_options(tiny_data, 'resume_cut', total_iter=4)
    write_options(tmp_path / 'a.yml', opt)
    assert run_cli(['train', '-opt', 'a.yml'], tmp_path).returncode == 0
    states = tmp_path / 'experiments' / 'resume_cut' / 'training_states'
    latest = max(states.glob('*.state'), key=lambda p: int(p.stem))
    os.truncate(latest, 100)
    opt['train']['total_iter'] = 6
    write_options(tmp_path / 'b.yml', opt)
    refused(run_cli(['train', '-opt', 'b.yml', '--auto_resume'], tmp_path), f'{latest.name}: cannot be read',
            'truncated', 'the earlier state', '2.state')


# ------------------------------------------------------------------ file names
@pytest.mark.slow
@pytest.mark.parametrize('disable,ok', [('', True), ('utf8_keys', False)])
def test_unicode_names_work_end_to_end(tmp_path: Path, disable: str, ok: bool) -> None:
    photo_crops(tmp_path / 'hr', 2, 96)
    (tmp_path / 'hr' / 'img000.png').rename(tmp_path / 'hr' / 'café.png')
    proc = run_cli(['prepare', '--hr', 'hr', '--out', 'sub', '--scales', '2', '--crop', '48', '--step', '48',
                    '--lmdb'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'café_s001' in keys_of(tmp_path / 'sub' / 'HR_sub.lmdb') and verify_lmdb(tmp_path / 'sub' / 'HR_sub.lmdb').ok
    code = ('import srprune_basicsr\n'
            'from basicsr.data import build_dataset\n'
            'ds = build_dataset({"name": "u", "type": "PairedImageDataset", "io_backend": {"type": "lmdb"}, '
            '"dataroot_gt": "sub/HR_sub.lmdb", "dataroot_lq": "sub/LR_bicubic_X2_sub.lmdb", "phase": "val", '
            '"scale": 2})\n'
            'print([ds[i]["gt"].shape[-1] for i in range(len(ds))])\n')
    proc = run_cli(['-c', code], tmp_path, disable=disable, launcher=[sys.executable])
    assert (proc.returncode == 0) is ok, proc.stderr[-2000:]
    if ok:
        assert proc.stdout.strip() == str([48] * 8)
    else:
        assert 'UnicodeEncodeError' in proc.stderr


@pytest.mark.slow
def test_a_missing_network_checkpoint_on_resume_is_named(tiny_data: Path, tmp_path: Path) -> None:
    from conftest import train_options, write_options

    opt = train_options(tiny_data, 'resume_net', total_iter=4)
    write_options(tmp_path / 'a.yml', opt)
    assert run_cli(['train', '-opt', 'a.yml'], tmp_path).returncode == 0
    (tmp_path / 'experiments' / 'resume_net' / 'models' / 'net_g_4.pth').unlink()
    opt['train']['total_iter'] = 6
    write_options(tmp_path / 'b.yml', opt)
    refused(run_cli(['train', '-opt', 'b.yml', '--auto_resume'], tmp_path), '4.state resumes iteration 4',
            'net_g_4.pth is missing')


def test_rule_keys_beside_a_keep_list_are_refused_not_ignored(data: Path, tmp_path: Path) -> None:
    from basicsr.data import build_dataset

    (tmp_path / 'keep.txt').write_text('\n'.join(keys_of(data / NAMES[0])[:8]) + '\n')
    opt = {'name': 'kept', 'type': 'PrunedPairedImageDataset', 'io_backend': {'type': 'lmdb'}, 'phase': 'val',
           'scale': 2, 'dataroot_gt': str(data / NAMES[0]), 'dataroot_lq': str(data / NAMES[1]),
           'prune': {'keep': str(tmp_path / 'keep.txt'), 'keep_ratio': 0.1}}
    with pytest.raises(ValueError, match=r"datasets:kept:prune: \['keep_ratio'\] select from scores"):
        build_dataset(opt)


def test_temporaries_shared_records_and_other_kinds_are_not_taken_for_ours(tmp_path: Path) -> None:
    photo_crops(tmp_path / 'imgs', 2, 32)
    (tmp_path / 'x.lmdb.partial').mkdir()
    (tmp_path / 'x.lmdb.partial' / 'draft.txt').write_text('mine')
    refused(run_cli(['lmdb', 'build', '--folder', 'imgs', '--out', 'x.lmdb'], tmp_path), 'x.lmdb.partial',
            'would remove it')
    assert (tmp_path / 'x.lmdb.partial' / 'draft.txt').read_text() == 'mine'
    shutil.rmtree(tmp_path / 'x.lmdb.partial')
    assert run_cli(['lmdb', 'build', '--folder', 'imgs', '--out', 'x.lmdb'], tmp_path).returncode == 0
    write_scores(tmp_path / 's.csv', keys_of(tmp_path / 'x.lmdb'), np.arange(2.0), method='t')
    refused(run_cli(['report', '--scores', 's.csv', '--out', 'x.lmdb', '--overwrite'], tmp_path),
            'no .srprune-output of a report output')  # an LMDB srprune made is still no report folder
    assert verify_lmdb(tmp_path / 'x.lmdb').ok
    write_scores(tmp_path / 'res.csv', ['a', 'b'], [1.0, 2.0], method='t')  # its record is res.json
    (tmp_path / 'res.txt').write_text('my results\n')
    refused(run_cli(['select', '--scores', 's.csv', '--keep-ratio', '0.5', '--out', 'res.txt', '--overwrite'],
                    tmp_path), 'res.json does not name srprune_basicsr and res.txt')
    assert (tmp_path / 'res.txt').read_text() == 'my results\n'


def test_a_replacement_swaps_in_one_step_and_a_stop_between_two_renames_is_undone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from srprune_basicsr.formats import atomic

    def write(value: str, overwrite: bool = True) -> None:
        with atomic.atomic_output_dir(final, overwrite=overwrite) as folder:
            (folder / 'v').write_text(value)

    def leftovers() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(('.old', '-partial', '.partial')))

    final, old = tmp_path / 'out', tmp_path / 'out.old'
    write('1', overwrite=False)
    a, b = tmp_path / 'a', tmp_path / 'b'
    a.mkdir(), b.mkdir(), (a / 'x').touch()
    swapped = atomic.exchange(a, b)
    assert swapped == (b / 'x').is_file() and swapped != (a / 'x').is_file()  # swapped, or told it cannot
    assert swapped or not sys.platform.startswith('linux')  # Linux has had renameat2 since 3.15
    calls = []
    real_exchange = atomic.exchange
    monkeypatch.setattr(atomic, 'exchange', lambda *paths: calls.append(real_exchange(*paths)) or calls[-1])
    (tmp_path / 'out.old').mkdir()  # a set-aside copy of ours that a stopped fallback did not remove
    (tmp_path / 'out.old' / '.srprune-output').write_text((final / '.srprune-output').read_text())
    write('2')  # in one step where the system swaps
    assert calls == [swapped] and (final / 'v').read_text() == '2' and leftovers() == []
    # a run without the swap, stopped between its two renames: no output under the final name
    monkeypatch.setattr(atomic, 'exchange', lambda *paths: False)
    final.rename(old)
    with pytest.warns(UserWarning, match=r'out: put back from out.old, where a run stopped while replacing it'):
        with pytest.raises(atomic.OutputExistsError):  # the previous output is back, and kept without --overwrite
            write('3', overwrite=False)
    assert (final / 'v').read_text() == '2' and leftovers() == []
    write('4')
    assert (final / 'v').read_text() == '4' and leftovers() == []
    (old / 'v').parent.mkdir()  # a set-aside folder srprune did not make is never moved or removed
    (old / 'v').write_text('theirs')
    shutil.rmtree(final)
    with pytest.raises(atomic.UnsafeOutputError, match='out.old exists and was not made by srprune'):
        write('5')
    assert (old / 'v').read_text() == 'theirs' and not final.exists()


def test_a_file_and_a_record_from_two_writes_are_told_apart(tmp_path: Path) -> None:
    """A file and its record are renamed into place one after the other: a stop between pairs a new file with
    the old record. The record's digest tells; the scorer then never reuses the file as the old run's."""
    import json

    from srprune_basicsr.formats.atomic import describes
    from srprune_basicsr.scoring.runner import _describe_stored, _stored_fingerprint

    path = write_scores(tmp_path / 'scores.csv', ['a', 'b'], [1.0, 2.0], method='t', fingerprint='f' * 64)
    record = json.loads((tmp_path / 'scores.json').read_text())
    assert describes(record, path) and _stored_fingerprint(path) == 'f' * 64
    newer = tmp_path / 'newer.csv'  # another run's file renamed in, its record not
    write_scores(newer, ['a', 'b'], [3.0, 4.0], method='t', fingerprint='e' * 64)
    os.replace(newer, path)
    assert not describes(record, path) and _stored_fingerprint(path) is None
    assert 'describes another file' in _describe_stored(path)
    from srprune_basicsr.formats.scores import ScoreFileError, read_scores
    with pytest.raises(ScoreFileError, match=r'scores.csv: not the file .*scores.json describes \(its SHA-256'):
        read_scores(path)  # select, report and prune: never read with another run's record
    del record['output_sha256']  # a record from before the digest was kept: taken as it is
    assert describes(record, path)
