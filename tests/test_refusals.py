"""Bad input is refused before work starts, in one line that names the file and the key (exit 2).

Each test is one input a user tried: a scorer that would replace another's scores, a tracking
plan that cannot score, a pretrained network of another scale or arch, a cut score file, an
undecodable LMDB value, an option without the one it needs, a misspelt block, a corrupt image,
a run ``name:`` that is a path, a key given twice, a dataset type of another package, a binary score file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, realesrnet_options, run_cli, train_options, write_options
from test_safety import digest, refused

from srprune_basicsr.formats.keys import root_keys
from srprune_basicsr.formats.scores import ScoreFileError, Scores, match_dataset, read_scores, write_scores
from srprune_basicsr.options import check_block_names
from srprune_basicsr.preflight import check_training_options

FSRCNN = str(REPO / 'options' / 'train' / 'train_FSRCNN_x2.yml')


# ----------------------------------------------------------------------------- scores
def test_an_inline_scorer_never_replaces_another_scorers_scores(tiny_data: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from srprune_basicsr.data.pruned_dataset import score_first

    monkeypatch.chdir(tmp_path)
    dataset_opt = dict(train_options(tiny_data, 'x')['datasets']['train'], phase='train', scale=2)
    sobel = Path(score_first({'method': 'sobel'}, dataset_opt))
    first = sobel.read_bytes()
    bicubic = Path(score_first({'method': 'bicubic_psnr'}, dataset_opt))
    assert sobel.parent.name.endswith('_sobel') and bicubic.parent.name.endswith('_bicubic_psnr')
    assert sobel.read_bytes() == first and read_scores(bicubic).meta['method'] == 'bicubic_psnr'
    assert Path(score_first({'method': 'sobel'}, dataset_opt)) == sobel and sobel.read_bytes() == first  # reused
    with pytest.raises(ValueError, match=r'holds scores of sobel .* not of this run\'s bicubic_psnr .* it is kept'):
        score_first({'method': 'bicubic_psnr', 'name': sobel.parent.name}, dataset_opt)
    assert sobel.read_bytes() == first


def test_a_score_file_cut_short_is_refused(tmp_path: Path) -> None:
    path = write_scores(tmp_path / 'scores.csv', ['a', 'b', 'c'], [0.1234567, 0.5, 0.25], method='test')
    text = path.read_text()
    path.write_text(text[:-3])  # the last number cut, no line end
    with pytest.raises(ScoreFileError, match=r'scores.csv:4: the last row has no line end'):
        read_scores(path)
    path.write_text(text.rsplit('c,', 1)[0])  # the last row gone
    with pytest.raises(ScoreFileError, match=r'2 row\(s\), but .*scores.json records 3'):
        read_scores(path)
    path.write_text(text)
    assert read_scores(path).keys == ['a', 'b', 'c']


def test_keys_that_differ_only_in_unicode_normalisation_are_named_as_such() -> None:
    nfc, nfd = unicodedata.normalize('NFC', 'café_s001'), unicodedata.normalize('NFD', 'café_s001')
    scores = Scores([nfd, 'x_s001'], np.array([1.0, 2.0]), path=Path('scores.csv'))
    with pytest.raises(ScoreFileError, match=r"1 of them differ only in Unicode normalisation .* is NFD, the other "
                                             r"side's .* is NFC"):
        match_dataset(scores, [nfc, 'x_s001'])


# ----------------------------------------------------------------------------- training
def refused_train(tmp_path: Path, opt: dict, *fragments: str) -> None:
    """``srprune train`` refuses the option file and leaves no run folder behind."""
    write_options(tmp_path / f"{opt['name']}.yml", opt)
    refused(run_cli(['train', '-opt', f"{opt['name']}.yml"], tmp_path), *fragments)
    assert not (tmp_path / 'experiments' / opt['name']).exists()
    assert not list((tmp_path / 'experiments').glob(f"{opt['name']}_archived_*"))


@pytest.mark.slow
def test_train_crop_tracking_that_cannot_score_is_refused_before_training(tiny_data: Path, tmp_path: Path) -> None:
    # 16 samples, batch 4: an epoch is 4 iterations; a window of 2 snapshots 1 iteration apart sees each sample
    # about 0.5 times, and a score needs 2. The check runs when the model is built, after BasicSR made the folder.
    opt = train_options(tiny_data, 'crop_rare', total_iter=8,
                        prune_tracking={'view': 'train_crop', 'every': 1, 'window': 2})
    refused_train(tmp_path, opt, 'about 0.50 times per window', 'every >= 4', 'window >= 8')


def test_the_coverage_rule_accepts_every_epoch_and_enough_iterations() -> None:
    from srprune_basicsr.scoring.tracking import check_train_crop_coverage

    opt = {'datasets': {'train': {'batch_size_per_gpu': 4}}, 'train': {'total_iter': 100}}
    check_train_crop_coverage(16, per_epoch=4, every=4, window=2, opt=opt)  # every epoch, 2 per window
    check_train_crop_coverage(16, per_epoch=4, every=2, window=4, opt=opt)
    with pytest.raises(ValueError, match=r'about 1.50 times .* every >= 4, or window >= 3'):
        check_train_crop_coverage(16, per_epoch=4, every=3, window=2, opt=opt)
    # dataset_enlarge_ratio 100: an epoch of 400 iterations draws each sample 100 times
    opt['datasets']['train']['dataset_enlarge_ratio'] = 100
    check_train_crop_coverage(16, per_epoch=400, every=4, window=2, opt=opt)
    with pytest.raises(ValueError, match=r'about 1.00 times .* every >= 4, or window >= 4'):
        check_train_crop_coverage(16, per_epoch=400, every=2, window=2, opt=opt)


def image_pairs(folder: Path, sizes: dict[str, tuple[int, int]], scale: int = 2, lq_suffix: str = '') -> dict:
    """GT images of ``sizes`` (name -> (h, w)) in ``folder/gt``, their LQ in ``folder/lq`` (stem + ``lq_suffix``)."""
    rng = np.random.default_rng(0)
    for sub in ('gt', 'lq'):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for name, (h, w) in sizes.items():
        cv2.imwrite(str(folder / 'gt' / f'{name}.png'), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        cv2.imwrite(str(folder / 'lq' / f'{name}{lq_suffix}.png'),
                    rng.integers(0, 255, (h // scale, w // scale, 3), dtype=np.uint8))
    return {'dataroot_gt': str(folder / 'gt'), 'dataroot_lq': str(folder / 'lq'), 'io_backend': {'type': 'disk'}}


def check_refuses(path: Path, opt: dict, *fragments: str) -> str:
    """``check_training_options`` refuses ``opt`` (written to ``path``) with a message holding every fragment."""
    with pytest.raises(ValueError) as caught:
        check_training_options(write_options(path, opt))
    message = str(caught.value)
    assert message.startswith(f'{path}: ') and '\n' not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@pytest.mark.parametrize('change,fragments', [
    ({'gt_size': None}, ['gt_size is missing: RealESRNetModel crops every training batch it degrades to the '
                         'top-level gt_size']),
    ({'gt_size': '256'}, ["gt_size '256' must be a positive whole number of pixels"]),
    ({'gt_size': 30}, ['gt_size 30 is not a multiple of scale 4', 'use gt_size: 28 or 32']),
    ({'gt_size': 512}, ['gt_size 512 is larger than the 400 px GT patches datasets:train (RealESRGANDataset) '
                        'yields', 'use gt_size <= 400']),
    ({'gt_size': 512, 'model_type': 'RealESRGANModel'}, ['RealESRGANModel cannot crop it'])])
def test_a_real_esrgan_crop_its_degraded_batches_cannot_give_is_refused(tiny_data: Path, tmp_path: Path,
                                                                         change: dict, fragments: list) -> None:
    # Real-ESRGAN's models crop each degraded batch to the top-level gt_size: a KeyError, mismatched
    # patches or paired_random_crop's ValueError at the first iteration, after experiments/<name> existed
    opt = dict(realesrnet_options('re_crop', tiny_data / 'train_sub' / 'HR_sub.lmdb'), imports=['realesrgan'])
    opt.update(change)
    if opt['gt_size'] is None:
        del opt['gt_size']
    check_refuses(tmp_path / 're.yml', opt, *fragments)
    opt.update(gt_size=512, high_order_degradation=False)  # trains on the dataset's own pairs: not read, but ...
    check_refuses(tmp_path / 'gt_only.yml', opt, 'datasets:train (RealESRGANDataset) yields GT images only, but '
                  'with high_order_degradation: false', 'use a paired dataset (RealESRGANPairedDataset)')
    opt['datasets']['train'].update(type='RealESRGANPairedDataset', gt_size=32, io_backend={'type': 'lmdb'},
                                    dataroot_lq=str(tiny_data / 'train_sub' / 'LR_bicubic_X4_sub.lmdb'))
    check_training_options(write_options(tmp_path / 'paired.yml', opt))  # ... a paired set trains


@pytest.mark.slow
def test_a_real_esrgan_crop_is_refused_in_one_line_before_any_folder(tiny_data: Path, tmp_path: Path) -> None:
    opt = dict(realesrnet_options('re_crop', tiny_data / 'train_sub' / 'HR_sub.lmdb'), imports=['realesrgan'],
               gt_size=512)
    write_options(tmp_path / 're.yml', opt)
    proc = run_cli(['train', '-opt', 're.yml'], tmp_path)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith('srprune train: error: re.yml: gt_size 512 is larger than')
    assert not (tmp_path / 'experiments').exists()


def test_a_gt_size_that_is_no_multiple_of_the_scale_or_larger_than_an_image_is_refused(tiny_data: Path,
                                                                                         tmp_path: Path) -> None:
    # BasicSR's paired_random_crop failed when a batch drew the image, or cropped mismatched patches
    opt, path = train_options(tiny_data, 'crop'), tmp_path / 'crop.yml'
    opt['datasets']['train']['gt_size'] = 33
    check_refuses(path, opt, 'datasets:train:gt_size 33 is not a multiple of scale 2', 'use gt_size: 32 or 34')
    opt['datasets']['train']['gt_size'] = 50
    check_refuses(path, opt, "datasets:train:gt_size 50 is larger than the GT image 'img000_s001' (48x48 px, in "
                  f"{tiny_data / 'train_sub' / 'HR_sub.lmdb'}) (and 15 more of 16)", 'use gt_size <= 48 ')
    opt['datasets']['train'].update(gt_size=48, **image_pairs(tmp_path / 'f', {'a': (64, 80), 'small': (46, 90)}))
    check_refuses(path, opt, "gt_size 48 is larger than the GT image 'small.png' (46x90 px, in "
                  f"{tmp_path / 'f' / 'gt'}): BasicSR cannot crop", 'use gt_size <= 46 ')
    opt['datasets']['train']['gt_size'] = 46
    opt['datasets']['val']['gt_size'] = 1000  # validation does not crop
    check_training_options(write_options(path, opt))


@pytest.mark.slow
def test_train_refuses_a_gt_size_larger_than_a_folder_image_before_training(tiny_data: Path, tmp_path: Path) -> None:
    opt = train_options(tiny_data, 'crop_folder')
    opt['datasets']['train'].update(gt_size=48, **image_pairs(tmp_path / 'f', {'a': (64, 64), 'small': (40, 64)}))
    refused_train(tmp_path, opt, "crop_folder.yml: datasets:train:gt_size 48 is larger than the GT image 'small.png'")


def test_lq_files_that_filename_tmpl_does_not_name_are_refused(tiny_data: Path, tmp_path: Path) -> None:
    # BasicSR's paired_paths_from_folder failed with `AssertionError: baby.png is not in lq_paths.`
    opt, path = train_options(tiny_data, 'names'), tmp_path / 'names.yml'
    suffixed = image_pairs(tmp_path / 'x2', {'baby': (24, 24), 'bird': (24, 24)}, lq_suffix='x2')
    plain = image_pairs(tmp_path / 'same', {'baby': (24, 24), 'bird': (24, 24)})
    opt['datasets']['val'].update(suffixed)
    check_refuses(path, opt, f"datasets:val: GT file 'baby.png' in dataroot_gt {tmp_path / 'x2' / 'gt'} has no LQ "
                  f"file 'baby.png' in dataroot_lq {tmp_path / 'x2' / 'lq'} (it holds e.g. 'babyx2.png'): "
                  "filename_tmpl '{}' names the LQ file after the GT stem; filename_tmpl: '{}x2' pairs every file")
    opt['datasets']['val'].update(plain, filename_tmpl='{}x2')
    check_refuses(path, opt, "has no LQ file 'babyx2.png'", "(it holds e.g. 'baby.png')", "filename_tmpl '{}x2'",
                  "filename_tmpl: '{}' pairs every file")
    opt['datasets']['val']['filename_tmpl'] = {}  # YAML's unquoted {}
    check_refuses(path, opt, 'datasets:val:filename_tmpl is {}, not text', "quote it: filename_tmpl: '{}'")
    (tmp_path / 'same' / 'lq' / 'extra.png').write_bytes((tmp_path / 'same' / 'lq' / 'baby.png').read_bytes())
    opt['datasets']['val']['filename_tmpl'] = '{}'
    check_refuses(path, opt, f"dataroot_lq {tmp_path / 'same' / 'lq'} holds 3 files, dataroot_gt "
                  f"{tmp_path / 'same' / 'gt'} 2", "e.g. ['extra.png']")
    opt['datasets']['val'].update(suffixed, filename_tmpl='{}x2')
    check_training_options(write_options(path, opt))


@pytest.mark.slow
def test_train_refuses_lq_files_that_filename_tmpl_does_not_name(tiny_data: Path, tmp_path: Path) -> None:
    opt = train_options(tiny_data, 'names')
    opt['datasets']['val'].update(image_pairs(tmp_path / 'x2', {'baby': (24, 24)}, lq_suffix='x2'))
    refused_train(tmp_path, opt, "names.yml: datasets:val: GT file 'baby.png' in dataroot_gt", "no LQ file 'baby.png'",
                  f"{tmp_path / 'x2' / 'lq'}", "filename_tmpl: '{}x2' pairs every file")


def fake_checkpoint(folder: Path, arch: dict, scale: int | None) -> Path:
    """A BasicSR-style experiment folder: models/net_g_4.pth of ``arch`` and (if ``scale``) its option file."""
    from basicsr.archs import build_network

    (folder / 'models').mkdir(parents=True)
    torch.save({'params': build_network(dict(arch)).state_dict()}, folder / 'models' / 'net_g_4.pth')
    if scale is not None:
        (folder / 'train.yml').write_text(yaml.safe_dump({'name': folder.name, 'scale': scale, 'network_g': arch}))
    return folder / 'models' / 'net_g_4.pth'


def test_a_pretrained_network_of_another_scale_or_arch_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    opt = train_options(tiny_data, 'pre')
    net = dict(opt['network_g'])
    x4 = fake_checkpoint(tmp_path / 'x4', dict(net, upscale=4), scale=4)
    fsrcnn = fake_checkpoint(tmp_path / 'fsrcnn', {'type': 'FSRCNN', 'upscale': 2}, scale=None)
    named = fake_checkpoint(tmp_path / 'named', {'type': 'FSRCNN', 'upscale': 2}, scale=2)
    same = fake_checkpoint(tmp_path / 'same', net, scale=2)
    cases = [(x4, 'was trained at scale 4'), (fsrcnn, 'does not fit network_g'), (named, 'is a FSRCNN')]
    for checkpoint, message in cases:
        opt['path'] = {'pretrain_network_g': str(checkpoint), 'strict_load_g': True}
        with pytest.raises(ValueError, match=message):
            check_training_options(write_options(tmp_path / 'pre.yml', opt))
    opt['path'] = {'pretrain_network_g': str(x4), 'strict_load_g': False}  # fine-tuning x2 from x4 loads what fits
    check_training_options(write_options(tmp_path / 'pre.yml', opt))
    opt['path'] = {'pretrain_network_g': str(fsrcnn), 'strict_load_g': False}  # loads what fits, as BasicSR does
    check_training_options(write_options(tmp_path / 'pre.yml', opt))
    opt['path'] = {'pretrain_network_g': str(same), 'strict_load_g': True}
    check_training_options(write_options(tmp_path / 'pre.yml', opt))


@pytest.mark.slow
def test_train_refuses_a_pretrained_network_of_another_scale_and_keeps_an_earlier_run(tiny_data: Path,
                                                                                     tmp_path: Path) -> None:
    opt = train_options(tiny_data, 'pre')
    earlier = tmp_path / 'experiments' / 'pre'
    (earlier / 'models').mkdir(parents=True)
    (earlier / 'models' / 'net_g_2.pth').write_bytes(b'an earlier run')
    before = digest(earlier)
    checkpoint = fake_checkpoint(tmp_path / 'x4', dict(opt['network_g'], upscale=4), scale=4)
    opt['path'] = {'pretrain_network_g': str(checkpoint), 'strict_load_g': True}
    write_options(tmp_path / 'pre.yml', opt)
    refused(run_cli(['train', '-opt', 'pre.yml'], tmp_path), 'pre.yml: path:pretrain_network_g', 'scale 4')
    assert digest(earlier) == before and not list((tmp_path / 'experiments').glob('pre_archived_*'))


@pytest.mark.slow
def test_a_refusal_after_basicsr_made_the_folder_puts_the_archived_run_back(tiny_data: Path, tmp_path: Path) -> None:
    # a kept set smaller than a batch is only known once the dataset is built, after BasicSR archived `small`
    earlier = tmp_path / 'experiments' / 'small'
    earlier.mkdir(parents=True)
    (earlier / 'notes.txt').write_text('an earlier run')
    opt = train_options(tiny_data, 'small')
    two = root_keys(opt['datasets']['train']['dataroot_gt'])[:2]
    (tmp_path / 'keep.txt').write_text(''.join(f'{k}\n' for k in two))
    opt['datasets']['train']['prune'] = {'keep': str(tmp_path / 'keep.txt')}  # 2 samples, batch 4
    write_options(tmp_path / 'small.yml', opt)
    refused(run_cli(['train', '-opt', 'small.yml'], tmp_path), 'fewer than one batch')
    assert (earlier / 'notes.txt').read_text() == 'an earlier run'
    assert not list((tmp_path / 'experiments').glob('small_archived_*'))


BROKEN_PACKAGE = "import os\n\nraise RuntimeError('needs CUDA 11\\nsecond line')\n"  # fails in its own code


def test_an_import_that_fails_inside_the_package_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from srprune_basicsr.options import import_packages

    (tmp_path / 'brokenpkg').mkdir()
    (tmp_path / 'brokenpkg' / '__init__.py').write_text(BROKEN_PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"^x.yml: imports: importing 'brokenpkg' failed: RuntimeError: needs CUDA 11 "
                                         r'\(the error is raised inside the package; .*\)$') as caught:
        import_packages({'imports': ['brokenpkg']}, 'x.yml')
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    (tmp_path / 'brokenpkg' / '__init__.py').write_text('import no_such_dependency_xyz\n')
    with pytest.raises(ValueError, match=r"importing 'brokenpkg' failed: ModuleNotFoundError: No module named "
                                         r"'no_such_dependency_xyz'"):
        import_packages({'imports': 'brokenpkg'}, 'x.yml')


@pytest.mark.slow
def test_train_refuses_an_import_that_fails_inside_the_package(tiny_data: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / 'pkgs' / 'brokenpkg').mkdir(parents=True)
    (tmp_path / 'pkgs' / 'brokenpkg' / '__init__.py').write_text(BROKEN_PACKAGE)
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(filter(None, [str(tmp_path / 'pkgs'),
                                                                   os.environ.get('PYTHONPATH')])))
    write_options(tmp_path / 'imp.yml', train_options(tiny_data, 'imp', imports=['brokenpkg']))
    message = "imp.yml: imports: importing 'brokenpkg' failed: RuntimeError: needs CUDA 11"
    refused(run_cli(['train', '-opt', 'imp.yml'], tmp_path), f'srprune train: error: {message}')
    (tmp_path / 'train.py').write_text(REPO_TRAIN_PY)
    one_line(repo_train_py(tmp_path, 'imp.yml'), f'train.py: error: {message}')
    assert not (tmp_path / 'experiments').exists()


def test_a_misspelt_plugin_block_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown key prune_trackng; did you mean prune_tracking\?"):
        check_block_names({'prune_trackng': {'window': 3}}, 'x.yml')
    with pytest.raises(ValueError, match=r'unknown key datasets:train:prun; did you mean datasets:train:prune\?'):
        check_block_names({'datasets': {'train': {'prun': {'keep_ratio': 0.5}}}}, 'x.yml')
    check_block_names({'datasets': {'train': {'phase': 'train', 'prune': {}}}, 'dist': False, 'name': 'n'}, 'x.yml')


@pytest.mark.slow
def test_a_misspelt_block_is_refused_by_basicsrs_own_train_py(tiny_data: Path, tmp_path: Path) -> None:
    # a repo's train.py roots experiments/ at its own folder (python -m basicsr.train would root it in site-packages)
    opt = train_options(tiny_data, 'typo', prune_trackng={'window': 2})
    opt['datasets']['train']['prnue'] = {'keep_ratio': 0.5}
    write_options(tmp_path / 'typo.yml', opt)
    refused(run_cli(['train', '-opt', 'typo.yml'], tmp_path), "did you mean prune_tracking?")
    (tmp_path / 'train.py').write_text(REPO_TRAIN_PY)
    proc = repo_train_py(tmp_path, 'typo.yml')
    one_line(proc, 'train.py: error: typo.yml: unknown key prune_trackng; did you mean prune_tracking?')
    del opt['prune_trackng']
    write_options(tmp_path / 'typo.yml', opt)
    one_line(repo_train_py(tmp_path, 'typo.yml'),
             'train.py: error: typo.yml: unknown key datasets:train:prnue; did you mean datasets:train:prune?')
    debug = repo_train_py(tmp_path, 'typo.yml', '--debug')  # BasicSR's --debug keeps the traceback, as srprune's
    assert 'Traceback' in debug.stderr and debug.stderr.strip().splitlines()[-1].startswith('ValueError: typo.yml')
    assert not (tmp_path / 'experiments').exists()  # refused before BasicSR made any folder


def repo_train_py(folder: Path, option_file: str, *extra: str) -> subprocess.CompletedProcess:
    """``python train.py -opt OPTION_FILE`` in ``folder``: BasicSR's own entry, the plugin autoloaded."""
    return subprocess.run([sys.executable, 'train.py', '-opt', option_file, *extra], cwd=folder, capture_output=True,
                          text=True, timeout=300, env={**run_env(), 'CUDA_VISIBLE_DEVICES': ''})


def one_line(proc: subprocess.CompletedProcess, message: str) -> None:
    """Under BasicSR's own train.py a refusal is one line, the last, and no traceback (exit status non-zero)."""
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(message), proc.stderr[-2000:]


def run_env() -> dict:
    import os

    return dict(os.environ, PYTHONUNBUFFERED='1')


# ----------------------------------------------------------------------------- study
def test_a_study_checks_every_arms_inputs_before_the_first_arm_trains(tiny_data: Path, tmp_path: Path) -> None:
    from srprune_basicsr.study.runner import Study

    gt = str(tiny_data / 'train_sub' / 'HR_sub.lmdb')
    keys = root_keys(gt, 'lmdb')
    good, cut = tmp_path / 'good.csv', tmp_path / 'cut.csv'
    write_scores(good, keys, list(range(len(keys))), 'loss_value')
    write_scores(cut, keys, list(range(len(keys))), 'sobel')
    cut.write_text(cut.read_text().rsplit('\n', 2)[0] + '\n')  # the last row gone
    study = {'name': 's', 'scale': 2, 'train_options': FSRCNN,
             'data': {'dataroot_gt': gt, 'dataroot_lq': str(tiny_data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')},
             'benchmarks': {'tiny': str(tiny_data / 'val')}, 'budget': {'total_iter': 2}, 'keep_ratios': [0.5],
             'methods': {'loss_value': {'scores': str(good)}, 'sobel': {'scores': str(cut)}}}
    with pytest.raises(ValueError, match=r'sobel@0.5 seed 0: .*cut.csv: 15 row\(s\), but .* records 16'):
        Study(study, tmp_path / 'root').run(log=False)
    assert not (tmp_path / 'root' / 'experiments').exists()


def test_a_distilled_set_that_is_missing_stops_the_study_before_training(tiny_data: Path, tmp_path: Path) -> None:
    from srprune_basicsr.study.runner import Study

    gt = str(tiny_data / 'train_sub' / 'HR_sub.lmdb')
    study = {'name': 's', 'scale': 2, 'train_options': FSRCNN,
             'data': {'dataroot_gt': gt, 'dataroot_lq': str(tiny_data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')},
             'benchmarks': {'tiny': str(tiny_data / 'val')}, 'budget': {'total_iter': 2}}
    runner = Study(study, tmp_path / 'root')
    runner.study = dict(study, distilled={'dataroot_gt': str(tmp_path / 'gone_gt'), 'dataroot_lq': gt})
    with pytest.raises(FileNotFoundError, match=r'distilled:dataroot_gt .*gone_gt: no such file or folder'):
        runner.check_inputs()


# ----------------------------------------------------------------------------- LMDB and command line
def test_rebuild_refuses_to_copy_an_undecodable_value(tiny_data: Path, tmp_path: Path) -> None:
    source = tmp_path / 'HR_sub.lmdb'
    shutil.copytree(tiny_data / 'train_sub' / 'HR_sub.lmdb', source)
    key = root_keys(str(source), 'lmdb')[3]
    env = lmdb.open(str(source), map_size=1 << 26)
    with env.begin(write=True) as txn:
        txn.put(key.encode(), txn.get(key.encode())[:-40])  # cut short, as a copy that stopped
    env.close()
    (tmp_path / 'keep.txt').write_text(f'{key}\n')
    before = digest(source)
    refused(run_cli(['lmdb', 'rebuild', '--src', str(source), '--keep', 'keep.txt', '--out', 'out'], tmp_path),
            f"key '{key}' holds a PNG cut short", 'lmdb verify --decode')
    assert not (tmp_path / 'out').exists() and digest(source) == before


def test_stored_image_framing_is_checked_without_decoding() -> None:
    from srprune_basicsr.formats.lmdb import stored_image_problem

    png = cv2.imencode('.png', np.zeros((6, 8, 3), np.uint8))[1].tobytes()
    jpeg = cv2.imencode('.jpg', np.zeros((6, 8, 3), np.uint8))[1].tobytes()
    assert stored_image_problem(png, (6, 8, 3)) is None and stored_image_problem(jpeg, (6, 8, 3)) is None
    assert 'of 6x8 px where meta_info.txt says 8x6' in stored_image_problem(png, (8, 6, 3))
    assert 'cut short' in stored_image_problem(png[:-1], (6, 8, 3))
    assert 'cut short' in stored_image_problem(jpeg[:-2], (6, 8, 3))
    assert 'not a PNG or JPEG' in stored_image_problem(b'hello world', (6, 8, 3))


@pytest.mark.parametrize('args,message', [
    (['select', '--scores', 's.csv', '--keep-ratio', '0.5', '--texture-strata', '3', '--out', 'k.txt'],
     '--texture-strata needs --texture-scores'),
    (['select', '--scores', 's.csv', '--keep-ratio', '0.5', '--strata', '5', '--out', 'k.txt'],
     '--strata needs --order stratified'),
    (['prepare', '--hr', 'hr', '--out', 'o', '--folders'], '--folders needs --lmdb'),
    (['prepare', '--hr', 'hr', '--out', 'o', '--benchmark', '--crop', '96'], '--crop needs sub-images'),
    (['score', '-opt', 's.yml', '--window', '3'], '--window needs --from-history'),
])
def test_an_option_without_the_one_it_needs_is_refused_alone(tmp_path: Path, args: list[str], message: str) -> None:
    write_scores(tmp_path / 's.csv', ['a_s001', 'b_s001'], [1.0, 2.0], method='test')
    refused(run_cli(args, tmp_path), message)
    assert not (tmp_path / 'k.txt').exists() and not (tmp_path / 'o').exists()


def test_a_corrupt_image_in_prepare_is_one_line_naming_it(tmp_path: Path) -> None:
    from conftest import photo_crops

    photo_crops(tmp_path / 'hr', 3, 96)
    (tmp_path / 'hr' / 'broken.png').write_bytes((tmp_path / 'hr' / 'img000.png').read_bytes()[:300])
    refused(run_cli(['prepare', '--hr', 'hr', '--out', 'out', '--scales', '2', '--crop', '48', '--step', '48',
                     '--lmdb', '--workers', '2'], tmp_path), 'hr/broken.png: cannot be decoded as an image')
    assert not (tmp_path / 'out').exists()


def test_a_benchmark_image_smaller_than_the_modulus_is_named(tmp_path: Path) -> None:
    (tmp_path / 'hr').mkdir()
    cv2.imwrite(str(tmp_path / 'hr' / 'tiny.png'), np.zeros((8, 30, 3), np.uint8))
    refused(run_cli(['prepare', '--benchmark', '--hr', 'hr', '--out', 'bench'], tmp_path),
            'hr/tiny.png: 8x30 px is smaller than the 12 px')


def test_a_missing_data_root_in_score_is_named(tmp_path: Path) -> None:
    (tmp_path / 's.yml').write_text(yaml.safe_dump({
        'name': 's', 'method': 'sobel', 'scale': 2,
        'dataset': {'name': 'x', 'type': 'PairedImageDataset', 'dataroot_gt': 'nope/HR', 'dataroot_lq': 'nope/LR',
                    'io_backend': {'type': 'disk'}}}))
    refused(run_cli(['score', '-opt', 's.yml'], tmp_path), 's.yml: dataset:dataroot_gt nope/HR: no such file')


def test_a_slurm_task_outside_its_array_says_so() -> None:
    from srprune_basicsr.cli.study import slurm_array_shard

    env = {'SLURM_ARRAY_TASK_ID': '9', 'SLURM_ARRAY_TASK_COUNT': '4', 'SLURM_ARRAY_TASK_MIN': '1',
           'SLURM_ARRAY_TASK_MAX': '4'}
    with pytest.raises(ValueError, match=r'SLURM_ARRAY_TASK_ID=9 is outside its array, whose tasks are 1..4'):
        slurm_array_shard(env)


# ----------------------------------------------------------------------------- run names, repeated keys
BAD_NAMES = ['../userdir', '../../escape', 'ABS', 'a/b', '', '.', '..', 'a\\b', 'nul\0byte', None]


def bad_name(name: str | None, tmp_path: Path) -> str | None:
    return str(tmp_path / 'abs') if name == 'ABS' else name


def nothing_moved(tmp_path: Path, before: dict[str, str]) -> None:
    """The user's folder and the earlier run are as they were; no folder was made or archived anywhere."""
    assert digest(tmp_path / 'userdir') == before['userdir'] and digest(tmp_path / 'experiments') == before['runs']
    assert sorted(p.name for p in (tmp_path / 'experiments').iterdir()) == ['earlier']
    assert not list(tmp_path.glob('**/*_archived_*')) and not (tmp_path.parent / 'escape').exists()
    assert not (tmp_path / 'abs').exists() and not (tmp_path / 'results').exists()
    assert not (tmp_path / 'tb_logger').exists()


def user_folders(tmp_path: Path) -> dict[str, str]:
    """A folder of the user's beside the run (``../userdir`` from experiments/) and an earlier run."""
    (tmp_path / 'userdir').mkdir()
    (tmp_path / 'userdir' / 'data.txt').write_text('precious')
    (tmp_path / 'experiments' / 'earlier').mkdir(parents=True)
    (tmp_path / 'experiments' / 'earlier' / 'notes.txt').write_text('an earlier run')
    return {'userdir': digest(tmp_path / 'userdir'), 'runs': digest(tmp_path / 'experiments')}


def score_option(tiny_data: Path, name: str | None, **extra: object) -> dict:
    return {'name': name, 'method': 'sobel', 'scale': 2, 'num_gpu': 0,
            'dataset': {'name': 'tiny', 'type': 'PairedImageDataset', 'io_backend': {'type': 'lmdb'},
                        'dataroot_gt': str(tiny_data / 'train_sub' / 'HR_sub.lmdb'),
                        'dataroot_lq': str(tiny_data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')}, **extra}


def benchmark_option(tiny_data: Path, name: str | None) -> dict:
    opt = yaml.safe_load((REPO / 'options' / 'test' / 'test_SRCNN_x2.yml').read_text())
    opt.update(name=name, num_gpu=0, path={'pretrain_network_g': None, 'strict_load_g': True})
    opt['datasets'] = {'test_1': {'name': 'tiny', 'type': 'PairedImageDataset', 'io_backend': {'type': 'disk'},
                                  'dataroot_gt': str(tiny_data / 'val' / 'GTmod12'),
                                  'dataroot_lq': str(tiny_data / 'val' / 'LRbicx2')}}
    return opt


@pytest.mark.parametrize('name', BAD_NAMES, ids=repr)
def test_a_run_name_that_is_not_a_folder_name_is_refused_before_anything_moves(tiny_data: Path, tmp_path: Path,
                                                                               name: str | None) -> None:
    # name: ../userdir made BasicSR rename the user's folder to userdir_archived_* and put a run folder there
    before = user_folders(tmp_path)
    name = bad_name(name, tmp_path)
    distill = yaml.safe_load((REPO / 'options' / 'distill' / 'distill_pixel_x2.yml').read_text())
    entries = (('train', train_options(tiny_data, 'x')), ('test', benchmark_option(tiny_data, name)),
               ('score', score_option(tiny_data, name)), ('train', distill))
    if name not in ('../userdir', ''):  # every entry point runs the one check: two names go through all
        entries = entries[:1]
    for command, opt in entries:
        opt['name'] = name
        write_options(tmp_path / 'bad.yml', opt)
        refused(run_cli([command, '-opt', 'bad.yml'], tmp_path), 'bad.yml: name: ', 'plain folder name')
        nothing_moved(tmp_path, before)


def test_an_inline_scorer_name_that_is_not_a_folder_name_is_refused(tiny_data: Path) -> None:
    from srprune_basicsr.data.pruned_dataset import score_options

    dataset_opt = dict(train_options(tiny_data, 'x')['datasets']['train'], phase='train', scale=2)
    with pytest.raises(ValueError, match=r"datasets:.*:prune:score: name: '\.\./userdir' is a path"):
        score_options({'method': 'sobel', 'name': '../userdir'}, dataset_opt)
    named = score_options({'method': 'sobel'}, dict(dataset_opt, name='DIV2K/sub'))['name']  # a default name
    assert named == 'score_DIV2K_sub_sobel'


def test_a_key_given_twice_is_refused_at_any_depth(tmp_path: Path) -> None:
    from srprune_basicsr.options import check_unique_keys_of, load_yaml

    path = tmp_path / 'o.yml'
    cases = [('name: a\nscale: 2\nname: b\n', 'key name is given twice (lines 1 and 3)'),
             ('datasets:\n  train:\n    type: A\n    "type": B\n',
              'key datasets:train:type is given twice (lines 3 and 4)'),
             ('nets:\n  - {a: 1}\n  - {b: 1,\n     b: 2}\n', 'key nets:1:b is given twice (lines 3 and 4)')]
    for text, message in cases:
        path.write_text(text)
        for read in (load_yaml, check_unique_keys_of):
            with pytest.raises(ValueError, match=re.escape(f'{path}: {message}')):
                read(path)
    # merge keys and the keys they bring are no repeat; 1 and '1' are two keys; BasicSR's !!float still reads
    path.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\nk: {1: a, '1': b}\nlr: !!float 2e-4\n")
    assert load_yaml(path)['other'] == {'x': 3, 'y': 2} and load_yaml(path)['lr'] == 2e-4
    check_unique_keys_of(path)


def test_a_key_given_twice_is_refused_by_train_and_score(tiny_data: Path, tmp_path: Path) -> None:
    # the second name: silently won: the run trained into experiments/second
    write_options(tmp_path / 'dup.yml', train_options(tiny_data, 'first'))
    with open(tmp_path / 'dup.yml', 'a') as f:
        f.write('name: second\n')
    refused(run_cli(['train', '-opt', 'dup.yml'], tmp_path), 'dup.yml: key name is given twice (lines 1 and ')
    write_options(tmp_path / 'score.yml', score_option(tiny_data, 'scored'))
    with open(tmp_path / 'score.yml', 'a') as f:
        f.write('method: random\n')
    refused(run_cli(['score', '-opt', 'score.yml'], tmp_path), 'score.yml: key method is given twice (lines 2 and ')
    assert not (tmp_path / 'experiments').exists()


REPO_TRAIN_PY = """import os.path as osp

from basicsr.train import train_pipeline

if __name__ == '__main__':  # a repo's train.py (Real-ESRGAN's, HAT's): the repo is the root of experiments/
    train_pipeline(osp.dirname(osp.abspath(__file__)))
"""


@pytest.mark.slow
def test_a_repos_train_py_refuses_a_path_as_name_and_a_key_given_twice(tiny_data: Path, tmp_path: Path) -> None:
    before = user_folders(tmp_path)
    (tmp_path / 'train.py').write_text(REPO_TRAIN_PY)
    write_options(tmp_path / 'bad.yml', train_options(tiny_data, '../userdir'))
    dup = yaml.safe_dump(train_options(tiny_data, 'first'), sort_keys=False) + 'name: second\n'
    (tmp_path / 'dup.yml').write_text(dup)
    for option_file, message in (('bad.yml', "train.py: error: bad.yml: name: '../userdir' is a path"),
                                 ('dup.yml', 'train.py: error: dup.yml: key name is given twice')):
        one_line(repo_train_py(tmp_path, option_file), message)
        nothing_moved(tmp_path, before)


# ----------------------------------------------------------------------------- score: types and files
def test_score_names_a_dataset_type_of_another_package(tiny_data: Path, tmp_path: Path) -> None:
    # it was a KeyError traceback from BasicSR's registry; train names the type (the same check)
    opt = score_option(tiny_data, 's')
    opt['dataset']['type'] = 'HATImageNetPairedDataset'
    write_options(tmp_path / 's.yml', opt)
    refused(run_cli(['score', '-opt', 's.yml'], tmp_path),
            "s.yml: dataset:type 'HATImageNetPairedDataset' is not registered", 'imports:')
    assert not (tmp_path / 'experiments').exists()


def test_a_hand_written_score_file_cut_short_is_refused(tmp_path: Path) -> None:
    path = tmp_path / 'scores.csv'
    path.write_text('key,score\nwoman_s011,0.25\nwoman_s012,0.')  # no scores.json: a file of the user's own
    with pytest.raises(ScoreFileError, match=r"scores.csv:3: the last row has no line end \('woman_s012,0.'\)"):
        read_scores(path)
    args = ['select', '--scores', 'scores.csv', '--keep-ratio', '0.5', '--out', 'keep.txt']
    refused(run_cli(args, tmp_path), 'scores.csv:3: the last row has no line end')
    assert not (tmp_path / 'keep.txt').exists()
    for text in ('key,score\nwoman_s011,0.25\nwoman_s012,0.5\n', 'key,score\r\nwoman_s011,0.25\r\nwoman_s012,0.5\r\n'):
        path.write_bytes(text.encode())  # complete hand-written files, Unix or Windows line ends
        assert read_scores(path).keys == ['woman_s011', 'woman_s012']
    written = write_scores(tmp_path / 'w.csv', ['a', 'b'], [0.5, 0.25], method='test')
    assert read_scores(written).keys == ['a', 'b']


@pytest.mark.parametrize('content', [b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00', b'key,score\na,1\n\xff\xfeb,2\n'],
                         ids=['png', 'not-utf8'])
def test_a_binary_file_given_as_scores_is_one_line(tmp_path: Path, content: bytes) -> None:
    (tmp_path / 's.csv').write_bytes(content)
    args = ['select', '--scores', 's.csv', '--keep-ratio', '0.5', '--out', 'keep.txt']
    refused(run_cli(args, tmp_path), 's.csv:', 'not a text score file')
    assert not (tmp_path / 'keep.txt').exists()


def test_an_unreadable_scores_json_is_named(tmp_path: Path) -> None:
    path = write_scores(tmp_path / 's.csv', ['a', 'b'], [0.5, 0.25], method='test')
    path.with_suffix('.json').write_bytes(b'\x89PNG\x00')
    with pytest.raises(ScoreFileError, match=r's.json: not a valid JSON provenance record of s.csv'):
        read_scores(path)
