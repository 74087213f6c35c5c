"""`srprune study`: arms, a tiny study through the CLI, tables, resume."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_cli

from srprune_basicsr.study.arms import Arm, expand_arms
from srprune_basicsr.study.runner import load_study


def test_arms_cover_full_random_methods_bands_and_distilled() -> None:
    arms = expand_arms({'keep_ratios': [0.1, 0.5], 'methods': {'loss_value': {'bands': [0, 0.05, 0.6]}},
                        'distilled': {'dataroot_gt': 'x', 'dataroot_lq': 'y'}})
    labels = [a.label for a in arms]
    assert labels == ['full', 'random@0.1', 'random@0.5', 'loss_value@0.1', 'loss_value@0.1+0.05',
                      'loss_value@0.1+0.6', 'loss_value@0.5', 'loss_value@0.5+0.05', 'distilled']
    refined = Arm('loss_value', 0.5, 0.05).rule(seed=0)
    assert (refined.keep_ratio, refined.order, refined.drop_hardest) == (0.5, 'hardest', 0.05)
    assert Arm('random', 0.25).rule(seed=3).seed == 3 and Arm('full').rule(0) is None


def test_named_distilled_sets_get_random_arms_of_their_size() -> None:
    study = {'keep_ratios': [0.1], 'random_like_distilled': True,
             'distilled': {'pixel': {'dataroot_gt': 'p', 'dataroot_lq': 'pl'},
                           'latent': {'dataroot_gt': 'l', 'dataroot_lq': 'll'}}}
    arms = expand_arms(study, {'pixel': 0.025, 'latent': 0.025})
    assert [a.label for a in arms] == ['full', 'random@0.1', 'random@0.025', 'distilled-pixel', 'distilled-latent']
    assert {a.slug for a in arms if a.method == 'distilled'} == {'distilled-pixel', 'distilled-latent'}
    assert all(a.keep_ratio == 0.025 for a in arms if a.method == 'distilled')  # Δ random pairs with random@0.025
    assert [a.label for a in expand_arms(study)][-2:] == ['distilled-pixel', 'distilled-latent']  # sizes unknown


def test_bands_can_differ_per_keep_ratio() -> None:
    arms = expand_arms({'keep_ratios': [0.1, 0.25, 0.5],
                        'methods': {'loss_value': {'bands': {'0.1': [0.3, 0.4], 0.5: [0.0, 0.05]}}}})
    labels = [a.label for a in arms if a.method == 'loss_value']
    assert labels == ['loss_value@0.1+0.3', 'loss_value@0.1+0.4', 'loss_value@0.25', 'loss_value@0.5',
                      'loss_value@0.5+0.05']
    with pytest.raises(ValueError, match=r'methods:loss_value:bands: keep ratio 0.2 is not in keep_ratios'):
        expand_arms({'keep_ratios': [0.1], 'methods': {'loss_value': {'bands': {0.2: [0.0]}}}})


def test_shard_argument_is_checked(capsys: pytest.CaptureFixture) -> None:
    import argparse

    from srprune_basicsr.cli import main

    with pytest.raises(SystemExit) as exit_info:  # a negative shard is named, not "expected one argument"
        main(['study', '-opt', 'x.yml', '--shard', '-1/2'])
    assert exit_info.value.code == 2 and '--shard -1/2: I must be in 0..N-1' in capsys.readouterr().err

    from srprune_basicsr.cli.study import _shard

    assert _shard('1/4') == (1, 4)
    for bad, message in (('4/4', 'I must be in 0..N-1'), ('1-4', 'wants I/N'), ('a/b', 'wants I/N')):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            _shard(bad)


def test_shipped_study_options_load() -> None:
    study = load_study(REPO / 'options' / 'study' / 'cpu_fsrcnn_x2.yml')
    assert study['seeds'] == [0, 1, 2] and study['keep_ratios'] == [0.1, 0.25, 0.5, 0.75]
    assert study['budget']['total_iter'] == [600, 1200] and study['methods']['dynamic_uncertainty']['keep_ratios'] == [
        0.5, 0.75]
    calibrated = load_study(REPO / 'options' / 'study' / 'cpu_edsr_x2.yml')
    labels = [arm.label for arm in expand_arms(calibrated, {'pixel': 91 / 504})]
    assert len(labels) == 16 and labels[:8] == ['full', 'random@0.02', 'random@0.05', 'random@0.1', 'random@0.25',
                                                'random@0.5', 'random@0.75', 'random@0.180556']
    confirm = load_study(REPO / 'options' / 'study' / 'cpu_edsr_x2_confirm.yml')
    assert confirm['seeds'] == [3, 4, 5] and not set(confirm['seeds']) & set(calibrated['seeds'])
    for key in ('network_g', 'data', 'budget', 'benchmarks', 'train_options'):
        assert confirm[key] == calibrated[key], key  # the same runs but for the seeds
    gpu = load_study(REPO / 'options' / 'study' / 'gpu_edsr_t91_x2.yml')
    assert [arm.label for arm in expand_arms(gpu)] == ['full', 'random@0.1', 'random@0.25', 'lv_per_source@0.1+0.3',
                                                       'sobel@0.25']


def test_bad_study_options_fail_clearly(tmp_path: Path) -> None:
    base = {'name': 's', 'scale': 2, 'train_options': 'x.yml', 'data': {}, 'benchmarks': {}}
    for change, message in (({'budgt': {}}, r"unknown key\(s\) \['budgt'\]"),
                            ({'methods': {'sobel': {}}}, 'methods:sobel needs exactly one of'),
                            ({'budget': {'iters': 3}}, r"unknown budget key\(s\) \['iters'\]"),
                            ({'name': '../elsewhere'}, r"name: '../elsewhere' is a path")):
        path = tmp_path / 'bad.yml'
        path.write_text(yaml.safe_dump({**base, **change}))
        with pytest.raises(ValueError, match=message):
            load_study(path)


@pytest.mark.slow
def test_tiny_study_writes_tables_and_plots_and_resumes(tiny_data: Path, tmp_path: Path) -> None:
    study = {'name': 'tiny_study', 'scale': 2, 'num_gpu': 0, 'seeds': [0], 'keep_ratios': [0.5],
             'train_options': str(REPO / 'options' / 'train' / 'train_FSRCNN_x2.yml'),
             'data': {'dataroot_gt': 'data/HR_sub.lmdb', 'dataroot_lq': 'data/LR_bicubic_X2_sub.lmdb'},  # relative
             'benchmarks': {'tiny': str(tiny_data / 'val'), 'tiny_hr': str(tiny_data / 'hr_val')},
             'budget': {'total_iter': 2, 'batch_size': 4, 'gt_size': 32, 'num_worker': 0},
             'network_g': {'bicubic_skip': True, 'd': 16},
             'methods': {'sobel': {'score': {'method': 'sobel'}, 'bands': [0.0, 0.25]}},
             'distilled': {'dataroot_gt': 'distilled/HR_sub.lmdb', 'dataroot_lq': 'distilled/LR_bicubic_X2_sub.lmdb'}}
    (tmp_path / 'data').symlink_to(tiny_data / 'train_sub')
    shutil.copytree(tiny_data / 'train_sub', tmp_path / 'distilled')  # a stand-in for a distilled set
    (tmp_path / 'study.yml').write_text(yaml.safe_dump(study))
    # two shards share the folder: the first tables what it has, the second completes the tables
    proc = run_cli(['study', '-opt', 'study.yml', '--shard', '0/2'], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '2 of 5 runs not finished yet' in proc.stdout
    root = tmp_path / 'studies' / 'tiny_study'
    assert sorted(p.name for p in (root / 'results').iterdir()) == ['distilled_s0.json', 'full_s0.json',
                                                                    'sobel_r0p5_s0.json']
    proc = run_cli(['study', '-opt', 'study.yml', '--shard', '1/2'], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'not finished yet' not in proc.stdout and 'skipped' not in proc.stdout
    rows = (root / 'study.csv').read_text().splitlines()
    assert rows[0] == 'arm,method,keep_ratio,band,seed,benchmark,psnr,ssim,steps,train_seconds'
    assert len(rows) == 1 + 5 * 2
    md = (root / 'study.md').read_text()
    for arm in ('full', 'random@0.5', 'sobel@0.5', 'sobel@0.5+0.25', 'distilled'):
        assert f'| {arm} |' in md
    for name in ('psnr_vs_ratio_tiny.png', 'psnr_vs_ratio_tiny_hr.png', 'training_curves.png'):
        assert (root / name).stat().st_size > 5_000
    kept = (root / 'keep' / 'sobel_r0p5_b0p25_s0.txt').read_text().split()
    assert len(kept) == 8
    opt = yaml.safe_load((root / 'options' / 'sobel_r0p5_s0.yml').read_text())
    assert opt['datasets']['train']['seeded_shuffle'] is True and opt['train']['total_iter'] == 2
    assert opt['network_g'] == {'type': 'FSRCNN', 'num_in_ch': 3, 'num_out_ch': 3, 'upscale': 2, 'd': 16, 's': 12,
                                'm': 4, 'bicubic_skip': True}  # the template's network, the study's overrides
    distilled = yaml.safe_load((root / 'options' / 'distilled_s0.yml').read_text())['datasets']['train']
    assert distilled['dataroot_gt'] == str((tmp_path / 'distilled' / 'HR_sub.lmdb').resolve())
    assert distilled['type'] == 'PairedImageDataset' and 'prune' not in distilled
    # a rerun skips every finished run; a lost result is recomputed alone
    before = json.loads((root / 'results' / 'full_s0.json').read_text())
    (root / 'results' / 'random_r0p5_s0.json').unlink()
    proc = run_cli(['study', '-opt', 'study.yml'], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count('done before, skipped') == 4 and 'random@0.5 seed 0:' in proc.stdout
    assert json.loads((root / 'results' / 'full_s0.json').read_text()) == before
    # a changed budget does not silently mix with the runs made under the old one
    study['budget']['total_iter'] = 3
    (tmp_path / 'study.yml').write_text(yaml.safe_dump(study))
    proc = run_cli(['study', '-opt', 'study.yml'], tmp_path, timeout=600)
    assert proc.returncode == 2 and 'full_s0.json: made with other study options' in proc.stderr
    # and without results, a training begun under the old budget is not resumed under the new one
    for result in (root / 'results').iterdir():
        result.unlink()
    proc = run_cli(['study', '-opt', 'study.yml'], tmp_path, timeout=600)
    assert proc.returncode == 2 and 'would resume a training started with other study options' in proc.stderr


def test_missing_benchmark_folder_fails_before_any_training(tiny_data: Path, tmp_path: Path) -> None:
    from srprune_basicsr.study.runner import Study

    study = {'name': 's', 'scale': 2, 'train_options': str(REPO / 'options' / 'train' / 'train_FSRCNN_x2.yml'),
             'data': {'dataroot_gt': str(tiny_data / 'train_sub' / 'HR_sub.lmdb')},
             'benchmarks': {'Set5': str(tmp_path / 'nope')}}
    with pytest.raises(FileNotFoundError, match=r"benchmarks: no such folder\(s\) \{'Set5'"):
        Study(study, tmp_path / 'root')


def test_recipe_follows_what_is_trained_not_how_it_is_logged(tiny_data: Path, tmp_path: Path) -> None:
    from srprune_basicsr.formats.keys import root_keys
    from srprune_basicsr.formats.scores import write_scores
    from srprune_basicsr.study.runner import Study

    gt = str(tiny_data / 'train_sub' / 'HR_sub.lmdb')
    keys = root_keys(gt, 'lmdb')
    scores = tmp_path / 'scores.csv'
    write_scores(scores, keys, list(range(len(keys))), 'loss_value')
    study = {'name': 's', 'scale': 2, 'train_options': str(REPO / 'options' / 'train' / 'train_FSRCNN_x2.yml'),
             'data': {'dataroot_gt': gt, 'dataroot_lq': gt}, 'benchmarks': {'tiny': str(tiny_data / 'val')},
             'budget': {'total_iter': 10}, 'keep_ratios': [0.5],
             'methods': {'loss_value': {'scores': str(scores), 'bands': [0.0]}}}
    arm = Arm('loss_value', 0.5)

    def recipe(**changes: object) -> str:
        return Study({**study, **changes}, tmp_path / 'root').recipe(arm, seed=0)

    base = recipe()
    assert recipe(budget={'total_iter': 10, 'checkpoint_freq': 5}) == base  # logging only
    assert recipe(methods={'loss_value': {'scores': str(scores), 'bands': [0.0, 0.25]}}) == base  # more arms
    assert recipe(budget={'total_iter': 11}) != base
    assert recipe(network_g={'d': 16}) != base
    write_scores(scores, keys, list(range(len(keys)))[::-1], 'loss_value', overwrite=True)  # rescored: other subsets
    assert recipe() != base


def test_bad_network_override_fails_before_any_training(tiny_data: Path, tmp_path: Path) -> None:
    from srprune_basicsr.study.runner import Study

    study = {'name': 's', 'scale': 2, 'train_options': str(REPO / 'options' / 'train' / 'train_FSRCNN_x2.yml'),
             'data': {'dataroot_gt': str(tiny_data / 'train_sub' / 'HR_sub.lmdb')},
             'benchmarks': {'tiny': str(tiny_data / 'val')}, 'network_g': {'bicubic_skp': True}}
    with pytest.raises(ValueError, match=r"network_g \(from .*train_FSRCNN_x2.yml and the study\).*bicubic_skp"):
        Study(study, tmp_path / 'root')
    assert not (tmp_path / 'root').exists()



def test_study_imports_are_checked_and_one_name_is_a_list(tmp_path: Path) -> None:
    from srprune_basicsr.options import imports_of

    assert imports_of({'imports': 'realesrgan'}, 's') == ['realesrgan']
    assert imports_of({'imports': ['a', 'b']}, 's') == ['a', 'b'] and imports_of({}, 's') == []
    with pytest.raises(ValueError, match=r'x.yml: imports must be a list of package names, got 3'):
        imports_of({'imports': 3}, 'x.yml')
    path = tmp_path / 'study.yml'
    path.write_text(yaml.safe_dump({'name': 's', 'scale': 2, 'train_options': 'x.yml', 'data': {}, 'benchmarks': {},
                                    'imports': 'no_such_pkg'}))
    with pytest.raises(ValueError, match=f"{path}: imports: package 'no_such_pkg' is not installed"):
        load_study(path)


@pytest.mark.parametrize('budget,message', [([600, 0], 'positive whole number'), ([600, 600], r'lists \[600\] more'),
                                            ([], 'positive whole number'), ([1.5], 'positive whole number')])
def test_bad_iteration_budgets_are_refused(budget: list, message: str) -> None:
    from srprune_basicsr.study.arms import check_arms

    with pytest.raises(ValueError, match=f'study.yml: budget:total_iter .*{message}'):
        check_arms({'budget': {'total_iter': budget}}, 'study.yml')


def test_two_budgets_double_the_arms_and_pair_within_a_budget() -> None:
    from srprune_basicsr.study.tables import comparisons, iterations_md

    arms = expand_arms({'keep_ratios': [0.5], 'budget': {'total_iter': [1200, 600]}})
    assert [a.label for a in arms] == ['full~600it', 'random@0.5~600it', 'full~1200it', 'random@0.5~1200it']
    assert arms[1].slug == 'random_r0p5_i600it' and [a.label for a in expand_arms({'keep_ratios': [0.5]})] == [
        'full', 'random@0.5']
    results = [{'arm': a.label, 'method': a.method, 'keep_ratio': a.keep_ratio, 'band': 0.0, 'seed': s,
                'iters': a.iters, 'benchmarks': {'B': {'psnr': 30.0 + a.iters / 1000 - 0.1 * (a.method == 'random')
                                                       + 0.01 * s, 'ssim': 0.9}}}
               for a in arms for s in (0, 1)]
    diff = comparisons(results, 'B')['random@0.5~600it']['full']
    assert diff.mean == pytest.approx(-0.1) and diff.seeds == 2  # against full at 600, not at 1200
    table = '\n'.join(iterations_md(results, ['B']))
    assert '| full | 30.605' in table and '| random@0.5 | 30.505' in table
    assert table.splitlines()[-1].endswith('| no |')  # random never reaches full at 1200 iterations


def test_a_method_may_run_at_some_keep_ratios_only() -> None:
    from srprune_basicsr.study.arms import check_arms

    study = {'keep_ratios': [0.1, 0.5, 0.75], 'methods': {'du': {'keep_ratios': [0.75, 0.5]},
                                                          'lv': {'keep_ratios': [0.1], 'bands': {0.1: [0.3]}}}}
    assert [a.label for a in expand_arms(study) if a.method in ('du', 'lv')] == ['du@0.5', 'du@0.75', 'lv@0.1+0.3']
    for bad, message in (([0.25], r"methods:du:keep_ratios: 0.25 is not in the study's keep_ratios"),
                         ([], 'methods:du:keep_ratios must be a non-empty list'),
                         ('0.5', 'methods:du:keep_ratios must be a non-empty list')):
        with pytest.raises(ValueError, match=f'study.yml: {message}'):
            check_arms({'keep_ratios': [0.5], 'methods': {'du': {'keep_ratios': bad}}}, 'study.yml')


def test_compute_arms_run_at_every_budget_the_others_at_the_largest() -> None:
    from srprune_basicsr.study.arms import check_arms

    study = {'keep_ratios': [0.5], 'methods': {'lv': {}},
             'budget': {'total_iter': [300, 600, 1200], 'compute_arms': ['full', 'lv@0.5']}}
    assert [a.label for a in expand_arms(study)] == ['full~300it', 'lv@0.5~300it', 'full~600it', 'lv@0.5~600it',
                                                     'full~1200it', 'random@0.5~1200it', 'lv@0.5~1200it']
    study['budget']['compute_arms'] = ['full', 'lv@0.25']
    with pytest.raises(ValueError, match=r"study.yml: budget:compute_arms: \['lv@0.25'\] name no arm of this study; "
                                         r"its arms: \['full', 'random@0.5', 'lv@0.5'\]"):
        check_arms(study, 'study.yml')


def tiny_fsrcnn_study(tiny_data: Path, name: str, budget: dict, **keys: object) -> dict:
    """A study option dict: FSRCNN with a bicubic skip on the tiny data, seeds 0-1, keep ratio 0.5, batch 4."""
    return {'name': name, 'scale': 2, 'num_gpu': 0, 'seeds': [0, 1], 'keep_ratios': [0.5],
            'train_options': str(REPO / 'options' / 'train' / 'train_FSRCNN_x2.yml'),
            'data': {'dataroot_gt': str(tiny_data / 'train_sub' / 'HR_sub.lmdb'),
                     'dataroot_lq': str(tiny_data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')},
            'benchmarks': {'tiny': str(tiny_data / 'val')},
            'budget': {**budget, 'batch_size': 4, 'gt_size': 32, 'num_worker': 0},
            'network_g': {'bicubic_skip': True, 'd': 16}, **keys}


@pytest.mark.slow
def test_a_tiny_study_with_two_budgets(tiny_data: Path, tmp_path: Path) -> None:
    study = tiny_fsrcnn_study(tiny_data, 'budgets', {'total_iter': [1, 3]})
    (tmp_path / 'study.yml').write_text(yaml.safe_dump(study))
    proc = run_cli(['study', '-opt', 'study.yml'], tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / 'studies' / 'budgets'
    assert len(list((root / 'results').glob('*.json'))) == 8
    opt = yaml.safe_load((root / 'options' / 'random_r0p5_i3it_s1.yml').read_text())
    assert opt['train']['total_iter'] == 3
    md = (root / 'study.md').read_text()
    assert '## Iterations' in md and '| random@0.5 |' in md and '| 1 it | 3 it | reaches full |' in md
    assert '| random@0.5~3it |' in md and ', ' in md.split('| random@0.5~3it |')[1].splitlines()[0]
    assert (root / 'psnr_vs_iters_tiny.png').stat().st_size > 5_000
    images = (root / 'study_images.csv').read_text().splitlines()
    assert len(images) == 1 + 8 * 2  # two validation images per run


@pytest.mark.slow
def test_the_gpu_study_file_runs_at_a_tiny_budget(tiny_data: Path, tmp_path: Path) -> None:
    """The shipped GPU study, every arm at 1 iteration on CPU: its paths, methods, rules and tables hold together."""
    import numpy as np

    from srprune_basicsr.formats.keys import root_keys
    from srprune_basicsr.formats.scores import write_scores

    study = yaml.safe_load((REPO / 'options' / 'study' / 'gpu_edsr_x2.yml').read_text())
    datasets = tmp_path / 'datasets'
    shutil.copytree(tiny_data / 'train_sub', datasets / 'study_x2')
    for bench in study['benchmarks'].values():
        (tmp_path / bench).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / bench).symlink_to(tiny_data / 'val')
    keys = root_keys(datasets / 'study_x2' / 'HR_sub.lmdb')
    rng = np.random.default_rng(0)
    files = {spec['scores'] for spec in study['methods'].values()}
    files |= {spec['rule']['texture_scores'] for spec in study['methods'].values() if 'texture_scores' in spec.get(
        'rule', {})}
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_scores(tmp_path / name, keys, rng.random(len(keys)), method='test')
    for spec in study['distilled'].values():  # a stand-in for the distilled set: 4 of the sub-images
        for key in ('dataroot_gt', 'dataroot_lq'):
            (tmp_path / spec[key]).parent.mkdir(parents=True, exist_ok=True)
    distilled = next(iter(study['distilled'].values()))
    for key, name in (('dataroot_gt', 'HR_sub.lmdb'), ('dataroot_lq', 'LR_bicubic_X2_sub.lmdb')):
        shutil.copytree(tiny_data / 'train_sub' / name, tmp_path / distilled[key])
    study.update(num_gpu=0, seeds=[0], train_options=str(REPO / study['train_options']),
                 network_g={'num_feat': 16, 'num_block': 1})
    study['budget'].update(total_iter=1, batch_size=2, gt_size=32, num_worker=0, checkpoint_freq=1)
    (tmp_path / 'gpu.yml').write_text(yaml.safe_dump(study))
    proc = run_cli(['study', '-opt', 'gpu.yml'], tmp_path, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / 'studies' / study['name']
    md = (root / 'study.md').read_text()
    arms = expand_arms(study, {name: 1.0 for name in study['distilled']})
    assert len(list((root / 'results').glob('*.json'))) == len(arms) and 'not finished yet' not in proc.stdout
    for arm in ('full', 'random@0.25', 'dynamic_uncertainty@0.75', 'distilled-pixel'):
        assert f'| {arm} |' in md


def test_a_mixed_rule_draws_its_random_share_with_the_arms_seed() -> None:
    import numpy as np

    from srprune_basicsr.selection import select_indices

    arm = Arm('lv_mix', 0.1, 0.3, modifiers=(('random_share', 0.2),))
    assert [arm.rule(seed).seed for seed in (0, 3)] == [0, 3]
    scores = np.random.default_rng(0).random(1000)
    kept = {seed: set(select_indices(scores, arm.rule(seed)).tolist()) for seed in (0, 1)}
    band = set(select_indices(scores, Arm('loss_value', 0.08, 0.3).rule(0)).tolist())
    assert band <= kept[0] and band <= kept[1] and kept[0] != kept[1]  # the same band, another random 20%
    assert Arm('loss_value', 0.1, 0.3).rule(5).seed == 0  # no random part: one subset for every seed


def _lr_study(tiny_data: Path, tmp_path: Path, name: str, **budget: object) -> dict:
    study = {'name': name, 'scale': 2, 'num_gpu': 0, 'keep_ratios': [0.5],
             'train_options': str(REPO / 'options' / 'train' / 'train_FSRCNN_x2.yml'),
             'data': {'dataroot_gt': str(tiny_data / 'train_sub' / 'HR_sub.lmdb'),
                      'dataroot_lq': str(tiny_data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')},
             'benchmarks': {'tiny': str(tiny_data / 'val')}, 'network_g': {'d': 16},
             'budget': {'batch_size': 4, 'gt_size': 32, **budget}}
    return study


@pytest.mark.slow
def test_the_same_seed_gives_every_arm_the_same_initial_weights(tiny_data: Path, tmp_path: Path) -> None:
    """Pairing by seed rests on this: full and a subset with one seed start from one network.

    One step at learning rate 0 (the template's step schedule, so it stays 0) saves the initial weights.
    """
    import torch

    study = _lr_study(tiny_data, tmp_path, 'init_study', total_iter=1, lr=0.0, schedule='template', num_worker=0)
    study['seeds'] = [0, 1]
    (tmp_path / 'study.yml').write_text(yaml.safe_dump(study))
    proc = run_cli(['study', '-opt', 'study.yml'], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    def weights(arm: str, seed: int) -> dict:
        path = tmp_path / 'studies' / 'init_study' / 'experiments' / f'init_study_{arm}_s{seed}' / 'models'
        return torch.load(path / 'net_g_latest.pth', map_location='cpu')['params']

    full, subset, other = weights('full', 0), weights('random_r0p5', 0), weights('full', 1)
    assert full.keys() == subset.keys() and all(torch.equal(full[k], subset[k]) for k in full)
    assert not all(torch.equal(full[k], other[k]) for k in full)  # and another seed starts elsewhere


@pytest.mark.slow
def test_the_same_arm_and_seed_trained_twice_gives_the_same_psnr(tiny_data: Path, tmp_path: Path) -> None:
    """A study is reproducible: two folders, one arm and seed (data loader worker included), one PSNR."""
    psnr = []
    for name in ('again_a', 'again_b'):
        study = {**_lr_study(tiny_data, tmp_path, name, total_iter=6, lr=1e-3, num_worker=1), 'seeds': [2],
                 'keep_ratios': [], 'random_like_distilled': False}
        (tmp_path / f'{name}.yml').write_text(yaml.safe_dump(study))
        proc = run_cli(['study', '-opt', f'{name}.yml'], tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads((tmp_path / 'studies' / name / 'results' / 'full_s2.json').read_text())
        psnr.append(result['benchmarks']['tiny']['psnr'])
    assert psnr[0] == pytest.approx(psnr[1], abs=1e-6) and psnr[0] > 10


def test_arms_patterns_choose_the_runs_and_a_typo_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    from srprune_basicsr.study.runner import Study

    study = {**_lr_study(tiny_data, tmp_path, 'chosen', total_iter=1), 'seeds': [0, 1], 'keep_ratios': [0.1, 0.5],
             'methods': {'sobel': {'score': {'method': 'sobel'}}},
             'distilled': {'dataroot_gt': str(tmp_path / 'not_made_yet'), 'dataroot_lq': str(tmp_path / 'nor_this')}}
    runner = Study(study, tmp_path / 'root')
    chosen = runner.chosen_pairs(['full', 'random@*'])
    assert [(arm.label, seed) for arm, seed in chosen] == [(label, s) for label in ('full', 'random@0.1', 'random@0.5')
                                                           for s in (0, 1)]
    runner.check_inputs(arms=['random@*'])  # the distilled set is not needed by these arms, nor checked
    with pytest.raises(FileNotFoundError, match='not_made_yet'):
        runner.check_inputs()
    with pytest.raises(ValueError, match=r"--arms 'randm@\*' matches no arm of this study; its arms: \['full'"):
        runner.chosen_pairs(['randm@*'])


def test_tables_without_a_finished_run_is_refused_and_writes_nothing(tiny_data: Path, tmp_path: Path) -> None:
    study = {**_lr_study(tiny_data, tmp_path, 'not_run', total_iter=1), 'seeds': [0]}
    (tmp_path / 'study.yml').write_text(yaml.safe_dump(study))
    proc = run_cli(['study', '-opt', 'study.yml', '--tables'], tmp_path, timeout=300)
    assert proc.returncode == 2 and 'no finished run of this study yet' in proc.stderr
    assert not (tmp_path / 'studies').exists()
    proc = run_cli(['study', '-opt', 'study.yml', '--tables', '--arms', 'full'], tmp_path, timeout=300)
    assert proc.returncode == 2 and '--arms and --shard do not apply to it' in proc.stderr


def test_an_online_method_is_one_arm_on_the_whole_set() -> None:
    from srprune_basicsr.study.arms import check_arms

    study = {'keep_ratios': [0.5], 'methods': {'ol': {'online': {'criterion': 'loss', 'ratio': 0.5}}},
             'budget': {'total_iter': [300, 600], 'compute_arms': ['full', 'random@0.5']}}
    arms = expand_arms(study)
    assert [a.label for a in arms] == ['full~300it', 'random@0.5~300it', 'full~600it', 'random@0.5~600it',
                                       'ol~600it']
    assert arms[-1].rule(0) is None and dict(arms[-1].online) == {'criterion': 'loss', 'ratio': 0.5}
    study['methods']['ol']['online']['ratio'] = 1.5
    with pytest.raises(ValueError, match=r'study.yml: methods:ol:online: prune_online:ratio must be a number in'):
        check_arms(study, 'study.yml')
    study['methods']['ol'] = {'online': {'criterion': 'loss'}, 'bands': [0.05]}
    with pytest.raises(ValueError, match=r"methods:ol: an online method .* \['bands'\] do not apply"):
        check_arms(study, 'study.yml')


@pytest.mark.slow
def test_a_tiny_study_with_an_online_arm_tables_its_steps(tiny_data: Path, tmp_path: Path) -> None:
    study = tiny_fsrcnn_study(tiny_data, 'online', {'total_iter': [8, 12], 'compute_arms': ['full'], 'val_every': 4},
                              methods={'online_loss': {'online': {'criterion': 'loss', 'ratio': 0.5}}})
    (tmp_path / 'study.yml').write_text(yaml.safe_dump(study))
    proc = run_cli(['study', '-opt', 'study.yml', '--arms', 'full*', 'online*'], tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / 'studies' / 'online'
    opt = yaml.safe_load((root / 'options' / 'online_loss_i12it_s0.yml').read_text())
    assert opt['prune_online'] == {'criterion': 'loss', 'ratio': 0.5} and opt['train']['total_iter'] == 12
    results = {p.stem: json.loads(p.read_text()) for p in (root / 'results').glob('*.json')}
    online = results['online_loss_i12it_s0']
    record = json.loads((root / 'experiments' / 'online_online_loss_i12it_s0' / 'prune_online.json').read_text())
    assert online['online'] and online['steps'] == record['totals']['steps'] < 12
    assert results['full_i8it_s1']['steps'] == 8 and results['full_i8it_s1']['train_seconds'] > 0
    md = (root / 'study.md').read_text()
    assert '## Compute' in md and '### Online arms against runs of fewer steps' in md
    assert '| online_loss~12it | full~8it | 8 |' in md and '| online_loss~12it | full~12it | 12 |' in md
    header, *rows = (root / 'study.csv').read_text().splitlines()
    assert header.endswith(',steps,train_seconds') and any(r.startswith('online_loss~12it,') for r in rows)
    assert (root / 'psnr_vs_steps_tiny.png').stat().st_size > 5_000
    # val_every: each run's PSNR every 4 steps from its own checkpoints, ending with its final result
    full = results['full_i12it_s0']
    assert [p['steps'] for p in full['curve']] == [4, 8, 12]
    assert full['curve'][-1]['tiny'] == full['benchmarks']['tiny']['psnr']
    from srprune_basicsr.study.evaluate import evaluate_checkpoint

    network = {**opt['network_g']}
    models = root / 'experiments' / 'online_full_i12it_s0' / 'models'
    again = evaluate_checkpoint(network, models / 'net_g_4.pth', study['benchmarks'], 2, 0, ssim=False)
    assert full['curve'][0]['tiny'] == again['tiny']['psnr'] and full['curve'][0]['tiny'] != full['curve'][-1]['tiny']
    assert [p['steps'] for p in online['curve']] == [s for s in (4, 8) if s < online['steps']] + [online['steps']]
    curves = (root / 'study_curves.csv').read_text().splitlines()
    assert curves[0] == 'arm,seed,steps,benchmark,psnr' and 'full~12it,0,4,tiny,' in '\n'.join(curves)
    assert (root / 'psnr_along_training_tiny.png').stat().st_size > 5_000
