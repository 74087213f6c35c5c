"""``prune_online:``: in-run pruning, as a user runs it (``srprune train``, BasicSR's pipeline) and its parts."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import realesrnet_options, run_cli, train_options, train_run, write_options
from test_compat import train_two_ranks

from srprune_basicsr.online.loss import LossCriterion
from srprune_basicsr.online.model import WeightedPixelLoss, check_model
from srprune_basicsr.online.options import online_options as parse_online
from srprune_basicsr.online.plan import RunShape
from srprune_basicsr.online.uncertainty import UncertaintyCriterion


# ---------------------------------------------------------------------- the block
@pytest.mark.parametrize('block,message', [
    ({'ratio': 1.0}, r'ratio must be a number in \[0, 1\), got 1.0'),
    ({'ratio': -0.1}, r'ratio must be a number in \[0, 1\)'),
    ({'anneal': 0}, r'anneal must be a number in \(0, 1\], got 0'),
    ({'anneal': 1.5}, r'anneal must be a number in \(0, 1\]'),
    ({'criterion': 'uncertainty', 'keep': 0}, r'keep must be a number in \(0, 1\], got 0'),
    ({'keep': 1.2}, r'keep must be a number in \(0, 1\]'),
    ({'ratio': '0.5'}, r"ratio must be a number in \[0, 1\), got '0.5'"),
    ({'criterion': 'grad'}, r"criterion must be one of \('loss', 'uncertainty'\)"),
    ({'window': 1}, 'window must be a whole number of epochs >= 2'),
    ({'rescale': 'no'}, "rescale must be true or false, got 'no'"),
    ({'ratoi': 0.3}, r"unknown key\(s\) \['ratoi'\]"),
    ({'criterion': 'loss', 'ratio': 0.5, 'keep': 0.3}, r"\['keep'\]: criterion loss does not read them"),
    ({'keep': 0.3}, r"\['keep'\]: criterion loss does not read them"),  # loss is the default criterion
    ({'ratio': 0.5, 'window': 3}, r"\['window'\]: criterion loss does not read them"),
    ({'criterion': 'uncertainty', 'ratio': 0.5}, r"\['ratio'\]: criterion uncertainty does not read them"),
    ({'criterion': 'uncertainty', 'keep': 0.5, 'rescale': False},
     r"\['rescale'\]: criterion uncertainty does not read them"),
])
def test_bad_online_options_name_the_file_and_key(block: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        parse_online(block, 'x.yml')
    assert str(err.value).startswith('x.yml: prune_online')


@pytest.mark.parametrize('block', [  # the blocks of options/study/*.yml
    {'criterion': 'loss', 'ratio': 0.5, 'anneal': 0.875},
    {'criterion': 'loss', 'ratio': 0.7, 'rescale': False, 'anneal': 0.875},
    {'criterion': 'uncertainty', 'keep': 0.5, 'window': 5, 'anneal': 0.875},
    {'ratio': 0.5, 'seed': 3, 'log_every_epoch': False},
])
def test_each_criterions_own_options_are_accepted(block: dict) -> None:
    assert parse_online(block, 'x.yml').criterion == block.get('criterion', 'loss')


# ---------------------------------------------------------------------- the plan
def test_each_epoch_stands_for_the_full_runs_iterations_and_the_last_is_cut() -> None:
    shape = RunShape(per_epoch=4, total_iter=10, total_epochs=3, batch=4, world=1, enlarge=1)
    full = shape.plan(0, 16)
    assert (full.steps, full.start, full.span) == (4, 0, 4)
    assert [full.virtual_iter(t) for t in range(1, 5)] == [1, 2, 3, 4]  # all data: BasicSR's own iterations
    half = shape.plan(1, 8)
    assert (half.steps, half.start, half.span) == (2, 4, 4)
    assert [half.virtual_iter(t) for t in (1, 2)] == [6, 8]  # two iterations of the schedule per step
    last = shape.plan(2, 16)
    assert (last.steps, last.span) == (2, 2) and last.virtual_iter(2) == 10  # total_iter ends mid-epoch
    assert shape.plan(3, 16).steps == 0  # BasicSR's extra epoch after the last iteration takes none
    assert [shape.pruning(e, 0.875) for e in range(4)] == [True, True, True, False]


# ---------------------------------------------------------------------- the criteria
def test_loss_criterion_leaves_out_a_share_of_the_below_mean_and_reweights_the_rest() -> None:
    criterion = LossCriterion(ratio=0.5, size=10)
    assert not criterion.ready()
    scores = np.array([1, 1, 1, 1, 1, 1, 9, 9, 9, 0], dtype=float)
    seen = np.ones(10, dtype=bool)
    seen[9] = False  # never trained: unscored, so kept (counted as hard)
    criterion.update(scores, seen)
    kept, weights, info = criterion.select(np.random.default_rng(0))
    assert info['below_mean'] == 6 and info['mean_score'] == pytest.approx(33 / 9)
    assert kept[6:].all()  # above the mean and unscored: always kept, weight 1
    assert kept[:6].sum() == 3 and set(weights[:6][kept[:6]]) == {2.0}
    assert (weights[6:] == 1).all()
    # expected loss of the below-mean group is unchanged: 3 kept x weight 2 = the 6 it stands for
    assert weights[:6][kept[:6]].sum() == 6
    assert criterion.smallest_kept() == 1 + int(0.5 * 9)
    plain = LossCriterion(ratio=0.5, size=10, rescale=False)
    plain.update(scores, seen)
    kept_plain, weights_plain, _ = plain.select(np.random.default_rng(0))
    assert (kept_plain == kept).all() and (weights_plain == 1).all()  # the same draw, no reweighting


def test_uncertainty_criterion_warms_up_then_keeps_the_most_uncertain() -> None:
    criterion = UncertaintyCriterion(keep=0.5, window=2, size=4)
    criterion.update(np.array([30.0, 30, 30, 30]), np.ones(4, dtype=bool))
    assert not criterion.ready()
    criterion.update(np.array([30.0, 31, 34, 0]), np.array([True, True, True, False]))
    assert criterion.ready()
    kept, weights, info = criterion.select(np.random.default_rng(0))
    # sample 3 has one measurement (no std yet): kept as the most uncertain; then the largest swing (2)
    assert kept.tolist() == [False, False, True, True] and (weights == 1).all() and info['unscored'] == 1


# ---------------------------------------------------------------------- the weighted pixel loss
@pytest.mark.parametrize('loss_type', ['L1Loss', 'MSELoss', 'CharbonnierLoss'])
def test_weighted_pixel_loss_is_the_plain_loss_at_unit_weights(loss_type: str) -> None:
    from basicsr.losses import build_loss

    loss = build_loss({'type': loss_type, 'loss_weight': 0.5, 'reduction': 'mean'})
    pred, target = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8)
    recorded: list[torch.Tensor] = []
    plain = loss(pred, target)
    unit = WeightedPixelLoss(loss, torch.ones(3), recorded)(pred, target)
    torch.testing.assert_close(unit, plain)
    assert loss.reduction == 'mean' and recorded[0].shape == (3,)
    weighted = WeightedPixelLoss(loss, torch.tensor([2.0, 0.0, 1.0]), [])(pred, target)
    torch.testing.assert_close(weighted, (2 * recorded[0][0] + recorded[0][2]) / 3)


def test_a_model_without_a_per_sample_loss_is_named() -> None:
    class PerceptualOnlyModel:
        cri_pix = None

        def optimize_parameters(self, current_iter: int) -> None: ...

        def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None: ...

    with pytest.raises(ValueError, match='the model PerceptualOnlyModel has none'):
        check_model(PerceptualOnlyModel(), 'loss', 'x.yml: prune_online')
    check_model(PerceptualOnlyModel(), 'uncertainty', 'x.yml: prune_online')  # PSNR needs no pixel loss


class OneStep:
    """The pruner's side of one step as the model hooks use it: the batch's weights in, what is recorded out."""

    source = 'x.yml'

    def __init__(self, weights: list[float]) -> None:
        self.criterion = type('Needs', (), {'needs': 'loss'})()
        self.columns = type('Columns', (), {'of_batch': staticmethod(lambda ids: np.arange(len(ids)))})()
        self.weights, self.records = np.asarray(weights), []

    def batch_weights(self, columns: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(self.weights[columns], dtype=torch.float32)

    def record(self, columns: np.ndarray, values: torch.Tensor) -> None:
        self.records.append((columns, values))


def pixel_loss_model(levels: tuple[int, ...]) -> type:
    """A training model whose step applies cri_pix to its output downscaled by each of ``levels`` (1: as it is)."""
    from basicsr.losses import build_loss

    class PixelLossModel:
        device = torch.device('cpu')

        def __init__(self) -> None:
            self.cri_pix = build_loss({'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'})

        def feed_data(self, data: dict) -> None:
            self.lq, self.gt = data['lq'], data['gt']

        def optimize_parameters(self, current_iter: int) -> None:
            self.output = self.lq * 0.5
            pool = torch.nn.functional.avg_pool2d
            self.loss = sum(self.cri_pix(pool(self.output, n), pool(self.gt, n)) for n in levels)

        def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None: ...

    return PixelLossModel


@pytest.mark.parametrize('levels,message', [
    ((1,), None),
    ((1, 2), r'x.yml: prune_online: .* the model PixelLossModel applies its pixel loss \(cri_pix\) 2 times in one '
             r'step \(to \[\(2, 3, 8, 8\), \(2, 3, 4, 4\)\]\)'),
    ((2,), r'x.yml: prune_online: .* PixelLossModel applies its pixel loss \(cri_pix\) to a \(2, 3, 4, 4\) tensor, '
           r'not to its output \(2, 3, 8, 8\)'),
])
def test_a_pixel_loss_that_is_not_one_per_sample_loss_of_the_output_is_refused(levels: tuple, message: str) -> None:
    from srprune_basicsr.online.model import online_class

    model = online_class(pixel_loss_model(levels))()
    model.online_pruner = OneStep([2.0, 0.0])
    model.feed_data({'lq': torch.rand(2, 3, 8, 8), 'gt': torch.rand(2, 3, 8, 8), 'key': ['a', 'b']})
    if message:
        with pytest.raises(ValueError, match=message):
            model.optimize_parameters(1)
        return
    model.optimize_parameters(1)
    per_sample = (model.output - model.gt).abs().flatten(1).mean(1)
    columns, recorded = model.online_pruner.records[0]
    assert columns.tolist() == [0, 1] and torch.equal(recorded, per_sample)
    torch.testing.assert_close(model.loss, per_sample[0] * 2 / 2)  # weights 2 and 0, averaged over the batch


def test_uncertainty_is_refused_on_normalised_data_and_without_a_scale() -> None:
    class AnyModel:
        def optimize_parameters(self, current_iter: int) -> None: ...

        def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None: ...

    faces = {'scale': 1, 'datasets': {'train': {'mean': [0.5] * 3, 'std': [0.5] * 3}}}
    with pytest.raises(ValueError, match=r'x.yml: prune_online: criterion uncertainty .* datasets:train normalises '
                                         r'them \(mean/std\), so the outputs are not in \[0, 1\]; use '
                                         r'criterion: loss \(AnyModel\)'):
        check_model(AnyModel(), 'uncertainty', 'x.yml: prune_online', faces)
    with pytest.raises(ValueError, match=r'x.yml: prune_online: .* the options set no scale \(AnyModel\)'):
        check_model(AnyModel(), 'uncertainty', 'x.yml: prune_online', {'datasets': {'train': {}}})
    check_model(AnyModel(), 'uncertainty', 'x.yml: prune_online', {'scale': 2, 'datasets': {'train': {}}})
    validation_only = {'scale': 2, 'datasets': {'val': faces['datasets']['train']}}  # only training data is recorded
    check_model(AnyModel(), 'uncertainty', 'x.yml: prune_online', validation_only)


# ---------------------------------------------------------------------- through `srprune train`
def online_options(data: Path, name: str, total_iter: int = 40, overrides: dict | None = None,
                   **online: object) -> dict:
    """Deterministic SRCNN training on the 16 tiny sub-images (whole 48 px, no flips), batch 4, cosine LR.

    ``overrides`` are train_options' (``section.field`` or top-level keys), applied before the rest.
    """
    block = {'ratio': 0.5, **online} if online.get('criterion', 'loss') == 'loss' else dict(online)
    opt = train_options(data, name, total_iter=total_iter, **{'prune_online': block, **(overrides or {})})
    opt['datasets']['train'].update(gt_size=48, use_hflip=False, use_rot=False, seeded_shuffle=True)
    opt['train']['scheduler'] = {'type': 'CosineAnnealingRestartLR', 'periods': [total_iter], 'restart_weights': [1],
                                 'eta_min': 1e-7}
    opt['logger']['save_checkpoint_freq'] = 1000
    del opt['datasets']['val'], opt['val']
    return opt


train = train_run


def record_of(experiment: Path) -> dict:
    return json.loads((experiment / 'prune_online.json').read_text())


def weights_of(experiment: Path) -> dict[str, torch.Tensor]:
    return torch.load(experiment / 'models' / 'net_g_latest.pth', map_location='cpu')['params']


@pytest.mark.slow
def test_loss_criterion_saves_steps_and_records_every_epoch(tiny_data: Path, tmp_path: Path) -> None:
    exp = train(tmp_path, online_options(tiny_data, 'ol_loss'))
    record = record_of(exp)
    epochs, totals = record['epochs'], record['totals']
    assert record['finished'] and record['criterion'] == 'loss'
    assert [e['epoch'] for e in epochs] == list(range(10)) and totals['full_steps'] == 40
    assert epochs[0]['all_data'] == 'warming up' and epochs[-1]['all_data'] == 'annealing'  # epoch 9 >= 0.875 x 10
    pruned = epochs[1:-1]
    assert all(e['samples'] < 16 and e['steps'] == e['samples'] // 4 for e in pruned)  # incomplete batches dropped
    assert totals['steps'] == sum(e['steps'] for e in epochs) < 40 and totals['saved_steps'] == 40 - totals['steps']
    assert all(e['saved_seconds_estimate'] >= 0 for e in pruned)
    log = next(exp.glob('train_*.log')).read_text()
    assert 'prune_online: epoch 1: ' in log and f"{totals['steps']} of 40 steps taken" in log
    assert (exp / 'prune_online.png').stat().st_size > 5_000
    # the run stops after the schedule's last iteration: as many checkpoints-worth of steps as it took
    assert f"iter:{totals['steps']:8,d}" in log and f"iter:{totals['steps'] + 1:8,d}" not in log


@pytest.mark.slow
def test_nothing_pruned_trains_exactly_as_without_the_block(tiny_data: Path, tmp_path: Path) -> None:
    plain = online_options(tiny_data, 'ol_plain', total_iter=20)
    del plain['prune_online']
    same = train(tmp_path / 'a', plain)
    online = train(tmp_path / 'b', online_options(tiny_data, 'ol_plain', total_iter=20, ratio=0.0))
    assert record_of(online)['totals']['saved_steps'] == 0
    for name, tensor in weights_of(same).items():
        torch.testing.assert_close(weights_of(online)[name], tensor, rtol=0, atol=0)


@pytest.mark.slow
def test_schedule_is_stretched_onto_the_steps_taken(tiny_data: Path, tmp_path: Path) -> None:
    opt = online_options(tiny_data, 'ol_lr')
    opt['logger']['save_checkpoint_freq'] = 1
    exp = train(tmp_path, opt)
    steps = record_of(exp)['totals']['steps']
    state = torch.load(exp / 'training_states' / f'{steps}.state', map_location='cpu', weights_only=False)
    # BasicSR steps the scheduler from its second iteration on: the full run ends at total_iter - 1 steps
    assert state['schedulers'][0]['last_epoch'] == 40 - 1
    with np.load(exp / 'prune_online' / 'states' / f'{steps}.npz') as saved:
        assert int(saved['virtual_done']) == 40
    mid = torch.load(exp / 'training_states' / '6.state', map_location='cpu', weights_only=False)
    with np.load(exp / 'prune_online' / 'states' / '6.npz') as saved:
        assert mid['schedulers'][0]['last_epoch'] == int(saved['virtual_done']) - 1 > 6 - 1


@pytest.mark.slow
@pytest.mark.parametrize('criterion,augment', [('loss', False), ('uncertainty', False), ('loss', True)])
def test_resume_inside_an_epoch_gives_the_same_subsets_and_weights(tiny_data: Path, tmp_path: Path,
                                                                   criterion: str, augment: bool) -> None:
    window = {'window': 2} if criterion == 'uncertainty' else {}  # loss reads no window
    opt = online_options(tiny_data, 'ol_resume', criterion=criterion, **window)
    if augment:  # random crops and flips, drawn in the training process (no loader workers)
        opt['datasets']['train'].update(gt_size=32, use_hflip=True, use_rot=True, num_worker_per_gpu=0)
    opt['logger']['save_checkpoint_freq'] = 7
    whole = train(tmp_path / 'a', opt)
    # the interruption: b holds a's folder as it was at the checkpoint of step 7 (inside an epoch)
    shutil.copytree(tmp_path / 'a' / 'experiments', tmp_path / 'b' / 'experiments')
    cut = tmp_path / 'b' / 'experiments' / 'ol_resume'
    for path in [*cut.glob('models/*'), *cut.glob('training_states/*'), *cut.glob('prune_online/states/*')]:
        if path.name.split('.')[0].rsplit('_', 1)[-1] != '7':  # net_g_7.pth, 7.state, 7.npz, 7.random0.npz
            path.unlink()
    (cut / 'prune_online.json').unlink()
    resumed = train(tmp_path / 'b', opt, '--auto_resume')
    a, b = record_of(whole)['epochs'], record_of(resumed)['epochs']
    assert [e['kept_sha256'] for e in a] == [e['kept_sha256'] for e in b]
    assert [e['steps'] for e in a] == [e['steps'] for e in b]
    assert any(e.get('resumed_at_step') for e in b)
    for name, tensor in weights_of(whole).items():
        assert torch.equal(weights_of(resumed)[name], tensor), name  # bit for bit


@pytest.mark.slow
def test_uncertainty_criterion_keeps_its_share_after_the_window(tiny_data: Path, tmp_path: Path) -> None:
    exp = train(tmp_path, online_options(tiny_data, 'ol_du', criterion='uncertainty', keep=0.5, window=3))
    epochs = record_of(exp)['epochs']
    assert [e['samples'] for e in epochs] == [16, 16, 16] + [8] * 6 + [16]
    assert [e['steps'] for e in epochs] == [4, 4, 4] + [2] * 6 + [4]


@pytest.mark.slow
def test_online_pruning_of_a_statically_pruned_set(tiny_data: Path, tmp_path: Path) -> None:
    opt = online_options(tiny_data, 'ol_static', total_iter=30)
    (tmp_path / 'keep.txt').write_text(''.join(f'img00{i}_s00{j}\n' for i in range(3) for j in range(1, 5)))
    opt['datasets']['train'].update(type='PrunedPairedImageDataset', prune={'keep': str(tmp_path / 'keep.txt')})
    exp = train(tmp_path, opt)
    record = record_of(exp)
    assert record['samples'] == 12 and record['epochs'][0]['samples'] == 12
    assert record['totals']['full_steps'] == 30 and record['totals']['steps'] < 30


@pytest.mark.slow
def test_two_cpu_ranks_draw_the_same_subsets(tiny_data: Path, tmp_path: Path) -> None:
    opt = online_options(tiny_data, 'ol_ranks')
    opt['datasets']['train']['batch_size_per_gpu'] = 2  # 2 ranks x 2 = the single rank's batch of 4
    proc = train_two_ranks(write_options(tmp_path / 'ranks.yml', opt))
    assert proc.returncode == 0, proc.stderr[-3000:]  # a rank drawing another subset stops the run
    record = record_of(tmp_path / 'experiments' / 'ol_ranks')
    assert record['full_run']['world_size'] == 2 and record['totals']['full_steps'] == 40
    assert record['totals']['steps'] < 40
    # merged over the ranks (one rank alone trains about half): all but the incomplete batches dropped
    assert all(e['trained'] >= e['samples'] - 2 for e in record['epochs'])


@pytest.mark.slow
def test_realesrnet_pool_model_weights_the_pairs_it_trains(tiny_data: Path, tmp_path: Path) -> None:
    # batch 2 on 16 pairs: 8 steps an epoch; epoch 0 warms up, epoch 1 (< 0.875 x 2) prunes
    opt = realesrnet_options('ol_pool', tiny_data / 'train_sub' / 'HR_sub.lmdb', total_iter=16)
    opt['prune_online'] = {'criterion': 'loss', 'ratio': 0.5}
    write_options(tmp_path / 'pool.yml', opt)
    proc = run_cli(['train', '-opt', 'pool.yml'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = record_of(tmp_path / 'experiments' / 'ol_pool')
    assert record['totals']['full_steps'] == 16 and record['totals']['steps'] < 16
    assert any(e['samples'] < 16 for e in record['epochs'])


@pytest.mark.slow
def test_realesrgan_gan_model_in_a_realesrgan_style_train_py(tiny_data: Path, tmp_path: Path) -> None:
    """Real-ESRGAN's own RealESRGANModel (the realesrgan package) from a train.py that imports only realesrgan."""
    (tmp_path / 'train.py').write_text(
        'import os.path as osp\nfrom basicsr.train import train_pipeline\n\n'
        'import realesrgan.archs  # noqa: F401\nimport realesrgan.data  # noqa: F401\n'
        'import realesrgan.models  # noqa: F401\n\n'
        "if __name__ == '__main__':\n    train_pipeline(osp.dirname(osp.abspath(__file__)))\n")
    opt = realesrnet_options('ol_gan', tiny_data / 'train_sub' / 'HR_sub.lmdb', total_iter=16,
                             model_type='RealESRGANModel')
    opt.update(l1_gt_usm=True, percep_gt_usm=True, gan_gt_usm=False)  # Real-ESRGAN's own option file has them
    opt['network_d'] = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 8, 'skip_connection': True}
    opt['train'].update(optim_d={'type': 'Adam', 'lr': 1e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
                        gan_opt={'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1},
                        net_d_iters=1, net_d_init_iters=0)
    opt['prune_online'] = {'criterion': 'loss', 'ratio': 0.5}
    write_options(tmp_path / 'gan.yml', opt)
    proc = run_cli(['train.py', '-opt', 'gan.yml'], tmp_path, launcher=[sys.executable])
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'ol_gan'
    log = next(exp.glob('train_*.log')).read_text()
    assert 'Model [RealESRGANModel] is created' in log and 'l_d_real' in log
    record = record_of(exp)
    assert record['totals']['steps'] < 16 and any(e['samples'] < 16 for e in record['epochs'])


@pytest.mark.slow
def test_a_basicsr_clones_train_py_prunes_online(tiny_data: Path, tmp_path: Path) -> None:
    """``python basicsr/train.py -opt X.yml`` in a BasicSR clone: train.py runs as __main__, a copy the hooks adopt."""
    import basicsr

    clone = tmp_path / 'BasicSR'
    (clone / 'basicsr').mkdir(parents=True)
    shutil.copy(Path(basicsr.__file__).parent / 'train.py', clone / 'basicsr' / 'train.py')
    write_options(clone / 'options.yml', online_options(tiny_data, 'ol_clone'))
    proc = run_cli(['basicsr/train.py', '-opt', 'options.yml'], clone, launcher=[sys.executable])
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = record_of(clone / 'experiments' / 'ol_clone')
    assert record['finished'] and record['totals']['full_steps'] == 40 and record['totals']['steps'] < 40


# ---------------------------------------------------------------------- refused before training
@pytest.mark.parametrize('change,message', [
    ({'prune_tracking': {'window': 2}}, 'prune_online: and prune_tracking: in one run are refused'),
    ({'prune_online': {'ratio': 1}}, 'prune_online:ratio must be a number in [0, 1), got 1'),
    ({'prune_online': {'criterion': 'uncertainty', 'keep': 0.1}},
     'an epoch may keep as few as 2 of the 16 training samples'),
    ({'prune_online': {'criterion': 'uncertainty', 'window': 9}}, 'no epoch would be pruned: this run has 10 epochs'),
    ({'prune_online': {'criterion': 'loss', 'ratio': 0.5, 'keep': 0.3}},
     "prune_online: ['keep']: criterion loss does not read them"),
    ({'train.pixel_opt': {'type': 'GANLoss', 'gan_type': 'vanilla'}},
     "criterion loss needs a per-sample pixel loss, but SRModel's pixel loss GANLoss has no reduction option"),
])
def test_refused_before_training_naming_the_cause(tiny_data: Path, tmp_path: Path, change: dict,
                                                  message: str) -> None:
    opt = online_options(tiny_data, 'ol_bad', overrides=change)
    write_options(tmp_path / 'bad.yml', opt)
    proc = run_cli(['train', '-opt', 'bad.yml'], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and 'bad.yml' in proc.stderr
    assert not (tmp_path / 'experiments' / 'ol_bad').exists()


# ---------------------------------------------------------------------- resumed with other options
def tree_digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}


def test_a_resume_with_changed_options_is_refused_and_changes_nothing(tiny_data: Path, tmp_path: Path) -> None:
    """ratio 0.5 -> 0.3 between a kill and --auto_resume would mix two subsets in the interrupted epoch and
    record 0.3 for the whole run; a change of what only the log shows resumes."""
    from test_safety import refused

    opt = online_options(tiny_data, 'ol_changed', total_iter=12)
    opt['logger']['save_checkpoint_freq'] = 4
    exp = train(tmp_path, opt)
    kept = {part: tree_digest(exp / part) for part in ('models', 'training_states', 'prune_online')}
    record = (exp / 'prune_online.json').read_bytes()
    opt['prune_online'].update(ratio=0.3, anneal=0.75)
    write_options(tmp_path / 'ol_changed.yml', opt)
    refused(run_cli(['train', '-opt', 'ol_changed.yml', '--auto_resume'], tmp_path), 'ol_changed.yml',
            'prune_online', 'ratio 0.5 -> 0.3', 'anneal 0.875 -> 0.75', str(exp / 'prune_online' / 'states'))
    assert {part: tree_digest(exp / part) for part in kept} == kept
    assert (exp / 'prune_online.json').read_bytes() == record
    opt['prune_online'].update(ratio=0.5, anneal=0.875, log_every_epoch=False)  # the log only: resumes
    train(tmp_path, opt, '--auto_resume')
