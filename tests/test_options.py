"""The option files we ship parse as BasicSR parses them and train through `srprune train`."""

import importlib.util
from pathlib import Path

import pytest
import yaml
from basicsr.utils.options import ordered_yaml
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY
from conftest import REPO, latest_log, psnr_values, run_cli

import srprune_basicsr  # noqa: F401
from srprune_basicsr.checks import is_registered
from srprune_basicsr.options import import_packages
from srprune_basicsr.presets import PRESETS

OPTION_FILES = sorted((REPO / 'options').rglob('*.yml')) + sorted(PRESETS.rglob('*.yml'))
NUMERIC = [('train', 'optim_g', 'lr'), ('train', 'total_iter'), ('val', 'val_freq'),
           ('logger', 'save_checkpoint_freq')]


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=ordered_yaml()[0])


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: str(p.relative_to(REPO.parent)))
def test_option_file_is_valid_for_basicsr(path: Path) -> None:
    opt = load(path)
    assert 'debug' not in opt['name'], 'BasicSR changes logging and checkpoint frequency for "debug" names'
    if 'study' in path.parts or path.name.startswith('study_'):  # srprune study options: a template, data, arms
        from srprune_basicsr.study.arms import expand_arms
        from srprune_basicsr.study.runner import load_study

        study = load_study(path)
        beside = path.parent / study['train_options']  # a preset's template sits beside it
        template = load(beside if beside.is_file() else REPO / study['train_options'])
        network = {**template['network_g'], **(study.get('network_g') or {})}
        arms = 3 if path.is_relative_to(PRESETS) else 4  # the demo: full, random and one band
        assert network['type'] in ARCH_REGISTRY and len(expand_arms(study)) >= arms
        return
    if 'score' in path.parts:  # srprune score options: one dataset, a network only for loss_value
        from srprune_basicsr.scoring.runner import load_options

        assert load_options(path)['dataset']['type'] in DATASET_REGISTRY
        return
    missing = [name for name in opt.get('imports') or [] if importlib.util.find_spec(name) is None]
    if missing:  # a third-party repo's file (HAT): its components register only where that package is
        assert opt['datasets']['train']['type'] in DATASET_REGISTRY
        return
    import_packages(opt, str(path))
    networks = [key for key in opt if key.startswith('network_')]
    assert networks and all(is_registered(ARCH_REGISTRY, opt[key]['type']) for key in networks)
    assert is_registered(MODEL_REGISTRY, opt['model_type'])
    if opt['model_type'] == 'SRDistillModel':
        from srprune_basicsr.distill.options import distill_options

        distill_options(opt['distill'], opt)
    if 'prune_tracking' in opt:
        from srprune_basicsr.scoring.tracking import tracking_options

        tracking_options(dict(opt['prune_tracking']), opt['scale'])
    for dataset in opt['datasets'].values():
        assert dataset['type'] in DATASET_REGISTRY
    for keys in NUMERIC:
        node = opt
        for key in keys:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if node != {}:
            assert isinstance(node, (int, float)), f'{path}: {":".join(keys)} is {node!r}; write !!float 2e-4'


@pytest.mark.slow
@pytest.mark.parametrize('name,scale', [('train_SRCNN_x2.yml', 2), ('train_FSRCNN_x4.yml', 4),
                                        ('train_FSRCNN_x2_tracking.yml', 2)])
def test_shipped_train_option_runs(tiny_data: Path, tmp_path: Path, name: str, scale: int) -> None:
    forced = [f'datasets:train:dataroot_gt={tiny_data}/train_sub/HR_sub.lmdb',
              f'datasets:train:dataroot_lq={tiny_data}/train_sub/LR_bicubic_X{scale}_sub.lmdb',
              f'datasets:val:dataroot_gt={tiny_data}/val/GTmod12',
              f'datasets:val:dataroot_lq={tiny_data}/val/LRbicx{scale}',
              'datasets:train:gt_size=32', 'datasets:train:num_worker_per_gpu=0', 'datasets:train:batch_size_per_gpu=4',
              'train:total_iter=2', 'val:val_freq=2', 'logger:use_tb_logger=false']
    if 'tracking' in name:
        forced += ['prune_tracking:every=1', 'prune_tracking:window=2']
    proc = run_cli(['train', '-opt', str(REPO / 'options' / 'train' / name), '--force_yml', *forced], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / load(REPO / 'options' / 'train' / name)['name']
    assert (exp / 'models' / 'net_g_latest.pth').is_file()
    assert psnr_values(latest_log(exp))
    if 'tracking' in name:
        assert len((exp / 'scores_du.csv').read_text().splitlines()) == 17  # header + 16 sub-images


@pytest.mark.slow
@pytest.mark.parametrize('name', ['train_FSRCNN_x2_pruned.yml', 'train_EDSR_Mx2_pruned.yml'])
def test_shipped_pruned_option_runs(tiny_data: Path, tmp_path: Path, name: str) -> None:
    from srprune_basicsr.formats.lmdb import read_meta_info
    from srprune_basicsr.formats.scores import write_scores

    keys = [e.key for e in read_meta_info(tiny_data / 'train_sub' / 'HR_sub.lmdb')]
    write_scores(tmp_path / 'scores.csv', keys, list(range(len(keys))), method='test')
    forced = [f'datasets:train:prune:scores={tmp_path}/scores.csv',
              f'datasets:train:dataroot_gt={tiny_data}/train_sub/HR_sub.lmdb',
              f'datasets:train:dataroot_lq={tiny_data}/train_sub/LR_bicubic_X2_sub.lmdb',
              f'datasets:val:dataroot_gt={tiny_data}/val/GTmod12', f'datasets:val:dataroot_lq={tiny_data}/val/LRbicx2',
              'datasets:train:gt_size=32', 'datasets:train:num_worker_per_gpu=0', 'datasets:train:batch_size_per_gpu=4',
              'train:total_iter=2', 'val:val_freq=2', 'logger:use_tb_logger=false']
    path = REPO / 'options' / 'train' / name
    proc = run_cli(['train', '-opt', str(path), '--force_yml', *forced], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = latest_log(tmp_path / 'experiments' / load(path)['name'])
    assert 'kept 8 of 16 samples' in log and psnr_values(log)
