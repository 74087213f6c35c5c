"""The converged study's machinery: budgets per arm, validation along runs, convergence, fewest steps, Holm."""

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, run_cli

from srprune_basicsr.study.arms import check_arms, expand_arms
from srprune_basicsr.study.runner import load_study
from srprune_basicsr.study.statistics import holm, paired_p_value
from srprune_basicsr.study.tables import (
    best_checkpoint_md,
    converged_budget,
    convergence_md,
    fewest_steps_md,
    label_log_axis,
    multiplicity_md,
)


def test_compute_arms_mapping_runs_each_arm_at_its_budgets() -> None:
    study = {'keep_ratios': [0.5], 'methods': {'lv': {}},
             'budget': {'total_iter': [300, 600, 1200], 'compute_arms': {'full': [300, 600], 'lv@0.5': [600]}}}
    assert [a.label for a in expand_arms(study)] == ['full~300it', 'full~600it', 'lv@0.5~600it', 'full~1200it',
                                                     'random@0.5~1200it', 'lv@0.5~1200it']
    for bad, message in (({'full': [450]}, r"compute_arms:full: \[450\] not in budget:total_iter"),
                         ({'full': 300}, 'compute_arms:full must be a non-empty list of budgets'),
                         ({'lv@0.25': [300]}, r"budget:compute_arms: \['lv@0.25'\] name no arm")):
        study['budget']['compute_arms'] = bad
        with pytest.raises(ValueError, match=f'study.yml: {"" if "name no arm" in message else "budget:"}{message}'):
            check_arms(study, 'study.yml')


def test_shipped_converged_study_runs_its_curve_and_arms() -> None:
    study = load_study(REPO / 'options' / 'study' / 'cpu_edsr_x2_converged.yml')
    labels = [arm.label for arm in expand_arms(study)]
    budgets = study['budget']['total_iter']
    assert [label for label in labels if label.startswith('full')] == [f'full~{b}it' for b in budgets]
    assert {label.split('~')[0] for label in labels if label.endswith('~16000it')} == {
        'full', 'random@0.1', 'random@0.25', 'random@0.5', 'random@0.75', 'loss_value@0.1+0.3',
        'loss_value@0.5+0.05', 'sobel@0.25', 'dynamic_uncertainty@0.75', 'online_loss', 'online_loss_hard'}
    assert 'sobel@0.25~8000it' in labels and 'loss_value@0.5+0.05~12000it' in labels
    assert study['budget']['val_every'] == 2000 and study['seeds'] == [0, 1, 2]
    for method in ('loss_value', 'sobel', 'dynamic_uncertainty'):  # scores kept beside the results
        assert (REPO / study['methods'][method]['scores']).is_file()
    confirm = load_study(REPO / 'options' / 'study' / 'cpu_edsr_x2_converged_confirm.yml')
    assert confirm['seeds'] == [3, 4, 5] and confirm['name'] == study['name'] + '_confirm'
    assert {k: v for k, v in confirm.items() if k not in ('seeds', 'name')} == {
        k: v for k, v in study.items() if k not in ('seeds', 'name')}  # the same runs on fresh seeds


@pytest.mark.parametrize('budget,message', [({'val_every': 0}, 'val_every must be a positive whole number'),
                                            ({'val_every': 2.5}, 'val_every must be a positive whole number'),
                                            ({'val_every': 100, 'checkpoint_freq': 300},
                                             r'val_every \(100\) .* budget:checkpoint_freq \(300\) differs')])
def test_bad_validation_interval_is_refused(tmp_path: Path, budget: dict, message: str) -> None:
    path = tmp_path / 'study.yml'
    path.write_text(yaml.safe_dump({'name': 's', 'scale': 2, 'train_options': 'x.yml', 'data': {}, 'benchmarks': {},
                                    'budget': {'total_iter': 600, **budget}}))
    with pytest.raises(ValueError, match=f'{path}: budget:{message}'):
        load_study(path)


def test_holm_matches_a_hand_computation_and_p_values_match_scipy() -> None:
    from scipy import stats

    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    arm, reference = {0: 31.2, 1: 31.25, 2: 31.31}, {0: 31.1, 1: 31.2, 2: 31.22}
    expected = stats.ttest_rel([arm[s] for s in range(3)], [reference[s] for s in range(3)]).pvalue
    assert paired_p_value(arm, reference) == pytest.approx(expected)
    assert paired_p_value({0: 1.0}, {0: 0.0}) is None


def fake_runs(psnr: dict[str, dict[int, float]], offsets: dict[int, float], benchmarks: tuple = ('Set5', 'BSD100'),
              steps: dict[str, int] | None = None) -> list[dict]:
    """Result records: label (``arm~Nit``) -> budget... -> seed offsets; the same value on every benchmark."""
    results = []
    for label, per_seed in psnr.items():
        base, iters = label.split('~')
        iters = int(iters[:-2])
        method = base.split('@')[0]
        ratio = float(base.split('@')[1]) if '@' in base else 1.0
        for seed, value in per_seed.items():
            run_steps = (steps or {}).get(label, iters) + (seed if label.startswith('online') else 0)
            results.append({'arm': label, 'method': method, 'keep_ratio': ratio, 'band': 0.0, 'seed': seed,
                            'iters': iters, 'online': label.startswith('online'), 'steps': run_steps,
                            'train_seconds': run_steps / 10,
                            'benchmarks': {b: {'psnr': value + offsets.get(seed, 0.0), 'ssim': 0.9}
                                           for b in benchmarks}})
    return results


def seeds_of(value: float, noise: tuple = (0.0, 0.004, -0.003)) -> dict[int, float]:
    return {seed: value + n for seed, n in enumerate(noise)}


def test_converged_budget_is_the_smallest_whose_gain_from_three_quarters_passes() -> None:
    runs = {'full~300it': seeds_of(30.0), 'full~400it': seeds_of(30.2), 'full~600it': seeds_of(30.29),
            'full~800it': seeds_of(30.30, (0.0, 0.002, 0.001))}
    results = fake_runs(runs, {})
    # 300 -> 400: +0.2 (no); 600 -> 800: +0.01 with a narrow interval (yes)
    assert converged_budget(results, ['Set5', 'BSD100']) == 800
    md = '\n'.join(convergence_md(results, ['Set5', 'BSD100']))
    assert '| 300 → 400 |' in md and md.count('| no |') == 1 and md.count('| yes |') == 1
    assert 'Converged budget B = 800 iterations.' in md and 'on BSD100 is below 0.02 dB' in md
    # a small mean whose interval reaches past 0.03 does not count: the noise could hide a gain
    runs['full~800it'] = seeds_of(30.30, (0.0, 0.05, -0.04))
    assert converged_budget(fake_runs(runs, {}), ['Set5', 'BSD100']) is None


def test_a_fixed_reference_budget_keeps_the_comparisons_where_the_study_made_them(tmp_path: Path) -> None:
    """budget:reference_iter: a confirmation's own full-data runs converge earlier, its comparisons stay at B."""
    runs = {'full~600it': seeds_of(30.29), 'full~800it': seeds_of(30.30, (0.0, 0.002, 0.001)),
            'full~1200it': seeds_of(30.30), 'rule@0.5~1200it': seeds_of(30.1), 'random@0.5~1200it': seeds_of(30.0)}
    results = fake_runs(runs, {}, benchmarks=('BSD100',))
    assert converged_budget(results, ['BSD100']) == 800  # found from these runs alone
    assert '3 comparisons at 800 iterations' not in '\n'.join(multiplicity_md(results, ['BSD100']))
    fixed = '\n'.join(multiplicity_md(results, ['BSD100'], 1200) + fewest_steps_md(results, ['BSD100'], 1200)
                      + convergence_md(results, ['BSD100'], 1200))
    assert '3 comparisons at 1200 iterations' in fixed and 'Fewest steps to full data at 1200 iterations' in fixed
    assert 'Converged budget B = 800 iterations.' in fixed
    assert 'The comparisons below are at B = 1200 iterations, which the study fixes' in fixed
    path = tmp_path / 'study.yml'
    for value in (1000, '1200', True):
        path.write_text(yaml.safe_dump({'name': 's', 'scale': 2, 'train_options': 'x.yml', 'data': {},
                                        'benchmarks': {}, 'budget': {'total_iter': [800, 1200],
                                                                     'reference_iter': value}}))
        with pytest.raises(ValueError, match=rf'{path}: budget:reference_iter must be one of budget:total_iter '
                                             r'\[800, 1200\]'):
            load_study(path)


def test_fewest_steps_needs_the_lower_bound_within_the_margin_on_every_benchmark() -> None:
    runs = {'full~400it': seeds_of(29.9), 'full~800it': seeds_of(30.0),
            'rule~400it': seeds_of(29.99, (0.0, 0.003, -0.002)), 'rule~800it': seeds_of(30.0),
            'online~800it': seeds_of(29.8)}
    results = fake_runs(runs, {}, steps={'online~800it': 500})
    md = '\n'.join(fewest_steps_md(results, ['Set5', 'BSD100']))
    assert 'Fewest steps to full data at 800 iterations' in md
    assert '| full | 800 | 100% | 0 |' in md  # full data at 400 is 0.1 dB below: not within 0.05
    assert '| rule | 400 | 50% | 400 |' in md  # within 0.05 dB of full@800 at half the steps
    assert '| online | not reached |' in md


def test_best_checkpoint_is_each_runs_peak_against_full_datas_last() -> None:
    results = fake_runs({'full~800it': seeds_of(30.0), 'random@0.25~800it': seeds_of(29.5)}, {},
                        benchmarks=('BSD100',))
    for r in results:  # full data still rises at its end; the subset peaks midway, then overfits
        last = r['benchmarks']['BSD100']['psnr']
        rise = [-0.2, -0.1, 0.0] if r['method'] == 'full' else [0.3, 0.4, 0.0]
        r['curve'] = [{'steps': step, 'BSD100': last + d} for step, d in zip((400, 600, 800), rise, strict=True)]
    md = '\n'.join(best_checkpoint_md(results, ['BSD100']))
    assert 'Best checkpoint along training at 800 iterations' in md and 'upper bound' in md
    row = next(line for line in md.splitlines() if line.startswith('| random@0.25~800it'))
    assert '| 29.900 ± 0.009 (n=3) (600) |' in row  # its best: 29.5 + 0.4 (and the seed noise) at step 600
    assert row.endswith('| -0.100 [-0.100, -0.100], 0/3 |')  # against full's last checkpoint, paired by seed
    assert next(line for line in md.splitlines() if line.startswith('| full~800it')).endswith('(800) |  |')
    assert best_checkpoint_md(fake_runs({'full~800it': seeds_of(30.0)}, {}), ['BSD100']) == []  # no curves


def test_multiplicity_adjusts_the_family_at_the_reference_budget() -> None:
    runs = {'full~800it': seeds_of(30.0), 'random@0.5~800it': seeds_of(29.9, (0.0, 0.01, -0.004)),
            'rule@0.5~800it': seeds_of(29.95, (0.0, 0.03, -0.05)), 'full~400it': seeds_of(29.0)}
    results = fake_runs(runs, {})
    md = '\n'.join(multiplicity_md(results, ['BSD100']))
    assert '3 comparisons at 800 iterations' in md and '~400it' not in md
    rows = [line for line in md.splitlines() if line.startswith('| random@0.5')]
    assert rows and rows[0].endswith('| yes |')  # 0.1 dB below full, tight: holds after Holm
    assert all(line.endswith('| no |') for line in md.splitlines() if line.startswith('| rule@0.5'))


def test_log_axis_ticks_are_the_values_in_plain_numbers() -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0.02, 0.03, 0.1, 0.25], [1, 2, 3, 4])
    label_log_axis(ax, [0.02, 0.03, 0.1, 0.25])
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ['0.02', '0.03', '0.1', '0.25']
    label_log_axis(ax, [0.1, 0.180556])
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ['0.1', '0.18']
    assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    ax.plot([2000, 16000], [1, 2])
    label_log_axis(ax, [2000, 8000, 16000])
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ['2k', '8k', '16k']
    plt.close(fig)
    assert np.isfinite(0.0)


def test_a_run_made_in_several_sittings_counts_each_sittings_log(tmp_path: Path) -> None:
    from srprune_basicsr.study.runner import Study

    (tmp_path / 'train_run_20261204_100000.log').write_text(
        '2026-12-04 10:00:00,100 INFO: start\n  a line without a time\n2026-12-04 10:01:40,900 INFO: iter 100\n')
    (tmp_path / 'train_run_20261204_110000.log').write_text(
        '2026-12-04 11:00:00,000 INFO: resumed\n2026-12-04 11:00:30,000 INFO: end\n')
    (tmp_path / 'train_run_20261204_120000.log').write_text('2026-12-04 12:00:00,000 INFO: one line only\n')
    assert Study.logged_seconds(tmp_path) == 130.0


def test_a_running_study_of_the_same_name_with_other_options_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    from srprune_basicsr.formats.atomic import OutputBusyError
    from srprune_basicsr.study.runner import Study

    def study(seeds: list[int]) -> Study:
        return Study({'name': 'one', 'scale': 2, 'seeds': seeds, 'keep_ratios': [0.5], 'budget': {'total_iter': 1},
                      'train_options': str(REPO / 'options' / 'train' / 'train_FSRCNN_x2.yml'),
                      'data': {'dataroot_gt': str(tiny_data / 'train_sub' / 'HR_sub.lmdb'),
                               'dataroot_lq': str(tiny_data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')},
                      'benchmarks': {'tiny': str(tiny_data / 'val')}}, tmp_path / 'one')

    first = study([0])
    first.claim_root()
    first.hold_definition()
    shard = study([0])  # a second shard of the same study shares the folder
    shard.hold_definition()
    other = study([1])
    with pytest.raises(OutputBusyError, match=r"one: a study of the same name \('one'\) with other options is running"):
        other.hold_definition()
    # as a user meets it: the second `srprune study` stops with one line, before training anything
    (tmp_path / 'other.yml').write_text(yaml.safe_dump(other.study))
    proc = run_cli(['study', '-opt', 'other.yml', '--root', str(tmp_path / 'one')], tmp_path, timeout=300)
    assert proc.returncode == 2 and 'with other options is running in this folder' in proc.stderr
    assert not (tmp_path / 'one' / 'experiments').exists()
    first._definition_lock.close()
    shard._definition_lock.close()
    other.hold_definition()  # once the first has ended, the other may run (its runs are added)


def test_committed_tables_give_back_the_records_their_plots_are_drawn_from() -> None:
    """tools/replot_study.py reads a study's tables back into result records: the same differences as study.md."""
    import importlib.util

    from srprune_basicsr.study.tables import comparisons

    spec = importlib.util.spec_from_file_location('replot_study', REPO / 'tools' / 'replot_study.py')
    replot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(replot)
    results, benchmarks = replot.records_from_tables(REPO / 'docs' / 'results' / 'cpu_edsr_x2')
    assert benchmarks == ['Set5', 'Set14', 'BSD100'] and len(results) == 48
    assert comparisons(results, 'BSD100')['sobel@0.25']['random'].text() == '+0.095 [+0.028, +0.161], 3/3'
    online, _ = replot.records_from_tables(REPO / 'docs' / 'results' / 'cpu_edsr_x2_online')
    assert {r['arm'] for r in online if r['online']} >= {'online_loss~2000it', 'online_loss_hard~2000it'}
    assert all(r['iters'] in (1260, 1470, 2000) for r in online)


@pytest.mark.slow
def test_converged_study_script_saves_restores_and_runs_named_arms(tiny_data: Path, tmp_path: Path) -> None:
    """tools/converged_study.sh over sittings: runs saved to docs/results, restored into a fresh folder, skipped."""
    import os
    import shutil
    import subprocess
    import sys

    repo = tmp_path / 'repo'  # the script works in the repository holding it
    (repo / 'tools').mkdir(parents=True)
    shutil.copy(REPO / 'tools' / 'converged_study.sh', repo / 'tools')
    (repo / 'datasets').symlink_to(tiny_data / 'train_sub')
    study = {'name': 'study_tiny_conv', 'scale': 2, 'num_gpu': 0, 'seeds': [0], 'keep_ratios': [0.5],
             'train_options': str(REPO / 'options' / 'train' / 'train_FSRCNN_x2.yml'),
             'data': {'dataroot_gt': 'datasets/HR_sub.lmdb', 'dataroot_lq': 'datasets/LR_bicubic_X2_sub.lmdb'},
             'benchmarks': {'tiny': str(tiny_data / 'val')}, 'network_g': {'bicubic_skip': True, 'd': 16},
             'budget': {'total_iter': [1, 2], 'batch_size': 4, 'gt_size': 32, 'num_worker': 0}}
    (repo / 'options' / 'study').mkdir(parents=True)
    (repo / 'options' / 'study' / 'tiny.yml').write_text(yaml.safe_dump(study))
    env = {**os.environ, 'PYTHON': sys.executable, 'SHARDS': '1', 'STUDY': 'options/study/tiny.yml',
           'PATH': f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # srprune of this environment

    def script(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(['bash', str(repo / 'tools' / 'converged_study.sh'), *args], env={**env, **extra},
                              capture_output=True, text=True, timeout=600)

    missing = script('run', STUDY='options/study/none.yml')
    assert missing.returncode == 2 and 'STUDY: no option file options/study/none.yml' in missing.stderr
    assert script('run', SHARDS='two').returncode == 2 and not (repo / 'studies').exists()
    (repo / 'options' / 'study' / 'nameless.yml').write_text('scale: 2\n')
    nameless = script('run', STUDY='options/study/nameless.yml')
    assert nameless.returncode == 2 and 'STUDY: options/study/nameless.yml has no name:' in nameless.stderr
    named = script('run', 'full~2it')  # only the arm named
    assert named.returncode == 0, named.stderr[-3000:]
    results = repo / 'studies' / 'study_tiny_conv' / 'results'
    assert sorted(p.name for p in results.iterdir()) == ['full_i2it_s0.json']
    ran = script('run')  # the budget curve, then the rest
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert 'full~2it seed 0: done before, skipped' in ran.stdout and len(list(results.iterdir())) == 4
    saved = script('save')
    docs = repo / 'docs' / 'results' / 'tiny_conv'
    assert saved.returncode == 0 and 'saved 4 runs and the tables to docs/results/tiny_conv' in saved.stdout
    assert '| random@0.5~2it |' in (docs / 'study.md').read_text() and (docs / 'study.csv').is_file()
    shutil.rmtree(repo / 'studies')  # a fresh checkout: the committed runs go back and are not trained again
    restored = script('restore')
    assert restored.returncode == 0 and 'restored 4 finished runs' in restored.stdout
    again = script('run')
    trained = [line for line in again.stdout.splitlines() if ' seed 0: ' in line]
    assert again.returncode == 0 and {line.split(' seed')[0] for line in trained} == {
        'full~1it', 'full~2it', 'random@0.5~1it', 'random@0.5~2it'}
    assert all(line.endswith('done before, skipped') for line in trained)
    confirm = {**study, 'name': 'study_tiny_conv_confirm', 'seeds': [1]}  # its fresh-seed twin, full data only
    (repo / 'options' / 'study' / 'tiny_confirm.yml').write_text(yaml.safe_dump(confirm))
    assert script('run', 'full~2it', STUDY='options/study/tiny_confirm.yml').returncode == 0
    pooled = script('pool')
    assert pooled.returncode == 0 and 'saved the pooled tables to docs/results/tiny_conv_pooled' in pooled.stdout
    md = (repo / 'docs' / 'results' / 'tiny_conv_pooled' / 'study.md').read_text()
    assert 'study_tiny_conv (seeds 0); study_tiny_conv_confirm (seeds 1)' in md and '(n=2)' in md
    assert 'left out: full~1it, random@0.5~1it, random@0.5~2it.' in md


def test_a_study_and_its_confirmation_pool_their_seeds_for_the_arms_both_ran(tiny_data: Path, tmp_path: Path) -> None:
    """`srprune study -opt A --pool B`: the shared arms over both studies' seeds, and what pooling may not mix."""
    import json

    from srprune_basicsr.study.runner import Study
    from srprune_basicsr.study.statistics import paired_difference

    def options(name: str, seeds: list[int], lr: float = 1e-3) -> dict:
        return {'name': name, 'scale': 2, 'seeds': seeds, 'keep_ratios': [0.5],
                'budget': {'total_iter': 1, 'lr': lr},
                'train_options': str(REPO / 'options' / 'train' / 'train_FSRCNN_x2.yml'),
                'data': {'dataroot_gt': str(tiny_data / 'train_sub' / 'HR_sub.lmdb'),
                         'dataroot_lq': str(tiny_data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')},
                'benchmarks': {'tiny': str(tiny_data / 'val')}}

    psnr = {('full', 0): 30.00, ('full', 1): 30.10, ('random@0.5', 0): 29.80, ('random@0.5', 1): 29.95,
            ('full', 3): 30.05, ('full', 4): 30.02, ('random@0.5', 3): 29.90}  # B ran random on seed 3 only

    def finish(opt: dict, arms: tuple[str, ...]) -> None:  # result records as the study writes them
        (tmp_path / f"{opt['name']}.yml").write_text(yaml.safe_dump(opt))
        study = Study(opt, tmp_path / 'studies' / opt['name'])
        for arm, seed in study.pairs():
            if arm.label in arms and (arm.label, seed) in psnr:
                path = study.result_path(arm, seed)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({
                    'arm': arm.label, 'method': arm.method, 'keep_ratio': arm.keep_ratio, 'band': 0.0, 'seed': seed,
                    'iters': arm.iters, 'recipe': study.recipe(arm, seed), 'online': False, 'steps': 1,
                    'train_seconds': 1.0,
                    'benchmarks': {'tiny': {'psnr': psnr[arm.label, seed], 'ssim': 0.9}}}))

    finish(options('a', [0, 1]), ('full', 'random@0.5'))
    finish(options('b', [3, 4]), ('full', 'random@0.5'))
    proc = run_cli(['study', '-opt', 'a.yml', '--root', 'studies/a', '--pool', 'b.yml'], tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / 'studies' / 'a_pooled' / 'study.md').read_text()
    assert 'Pooled over 2 studies: a (seeds 0, 1); b (seeds 3, 4).' in md and 'nominal 95% coverage' in md
    full = {s: psnr['full', s] for s in (0, 1, 3, 4)}
    rand = {s: psnr['random@0.5', s] for s in (0, 1, 3)}
    assert f"| full | {np.mean(list(full.values())):.3f} ± " in md and '(n=4)' in md
    assert f"| {paired_difference(rand, full).text()} |" in md  # paired over the 3 seeds random has
    rows = (tmp_path / 'studies' / 'a_pooled' / 'study.csv').read_text().splitlines()
    assert len(rows) == 1 + 7 and not (tmp_path / 'studies' / 'a_pooled' / 'training_curves.png').exists()

    (tmp_path / 'studies' / 'b' / 'results' / 'random_r0p5_s3.json').unlink()  # b ran full only: random is left out
    assert run_cli(['study', '-opt', 'a.yml', '--root', 'studies/a', '--pool', 'b.yml'], tmp_path,
                   timeout=300).returncode == 0
    md = (tmp_path / 'studies' / 'a_pooled' / 'study.md').read_text()
    assert 'Arms not run in every study, left out: random@0.5.' in md and '| random@0.5 |' not in md

    for opt, message in ((options('c', [1, 5]), r"seeds \[1\] are in both 'a' and 'c': a run would count twice"),
                         (options('d', [3, 4], lr=2e-3), r"arm 'full' is not the same recipe in every study")):
        finish(opt, ('full',))
        proc = run_cli(['study', '-opt', 'a.yml', '--root', 'studies/a', '--pool', f"{opt['name']}.yml"], tmp_path,
                       timeout=300)
        assert proc.returncode == 2 and re.search(message, proc.stderr), proc.stderr
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'notes.txt').write_text('mine')
    proc = run_cli(['study', '-opt', 'a.yml', '--root', 'studies/a', '--pool', 'b.yml', '--pool-root', 'mine'],
                   tmp_path, timeout=300)
    assert proc.returncode == 2 and 'no srprune pooling put there' in proc.stderr
    assert (tmp_path / 'mine' / 'notes.txt').read_text() == 'mine' and len(list((tmp_path / 'mine').iterdir())) == 1
