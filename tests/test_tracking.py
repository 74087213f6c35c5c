"""Dynamic-uncertainty tracking: the score formula, the on-disk history, and ``prune_tracking:`` runs."""

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, train_options, train_run, write_options
from test_compat import train_two_ranks

from srprune_basicsr.data.pruned_paired_dataset import PrunedPairedImageDataset
from srprune_basicsr.formats.history import History, HistoryError
from srprune_basicsr.formats.scores import read_scores
from srprune_basicsr.scoring.dynamic_uncertainty import dynamic_uncertainty
from srprune_basicsr.scoring.tracking import tracking_options as check_tracking_options


def reference_uncertainty(values: np.ndarray, seen: np.ndarray, window: int) -> np.ndarray:
    """The paper's U, written as plainly as possible: mean over windows of the std of the seen values."""
    t, n = values.shape
    scores = np.empty(n)
    for j in range(n):
        stds = [np.std(values[k:k + window, j][seen[k:k + window, j]]) for k in range(t - window + 1)
                if seen[k:k + window, j].sum() >= 2]
        scores[j] = np.mean(stds)
    return scores


def test_dynamic_uncertainty_is_the_mean_of_windowed_stds() -> None:
    rng = np.random.default_rng(0)
    values = 30 + rng.normal(size=(12, 50)).cumsum(0) * 0.1
    seen = np.ones_like(values, dtype=bool)
    scores, counted = dynamic_uncertainty(values, seen, 10)
    np.testing.assert_allclose(scores, reference_uncertainty(values, seen, 10), rtol=1e-9)
    assert (counted == 3).all()
    # a constant sample is certain, an oscillating one is not
    values[:, 0], values[:, 1] = 25.0, np.tile([20.0, 30.0], 6)
    scores, _ = dynamic_uncertainty(values, seen, 4)
    assert scores[0] == pytest.approx(0, abs=1e-9) and scores[1] == pytest.approx(5.0)


def test_unseen_snapshots_are_left_out_not_counted_as_zero() -> None:
    rng = np.random.default_rng(1)
    values = 28 + rng.normal(size=(8, 20))
    seen = rng.random((8, 20)) > 0.25
    seen[:, 0] = True
    values_with_zeros = np.where(seen, values, 0.0)
    scores, counted = dynamic_uncertainty(values_with_zeros, seen, 3)
    ok = counted > 0
    np.testing.assert_allclose(scores[ok], reference_uncertainty(values, seen, 3)[ok], rtol=1e-9)
    seen[:, 1] = False
    seen[0, 1] = True  # one measurement only: no window has two
    scores, counted = dynamic_uncertainty(values, seen, 3)
    assert counted[1] == 0 and np.isnan(scores[1])


def test_window_larger_than_snapshots_is_an_error() -> None:
    with pytest.raises(ValueError, match='window 5 is larger than the 4 snapshots'):
        dynamic_uncertainty(np.zeros((4, 3)), np.ones((4, 3), bool), 5)


def make_history(root: Path, snapshots: int = 3, samples: int = 5) -> History:
    history = History.create(root, [f'k{i}' for i in range(samples)], capacity=2, meta={'view': 'fixed'})
    for s in range(snapshots):  # more snapshots than the capacity: the files grow
        history.append(100 * (s + 1), np.arange(samples) + s, np.ones(samples, bool))
    return history


def test_history_is_memory_mapped_and_round_trips(tmp_path: Path) -> None:
    make_history(tmp_path / 'h')
    history = History.open(tmp_path / 'h')
    assert isinstance(history.values, np.memmap) and history.capacity >= 3
    assert history.snapshot_iters == [100, 200, 300]
    values, seen = history.rows(0, 5)
    np.testing.assert_array_equal(values[:, 4], [4, 5, 6])
    assert seen.all()
    assert (tmp_path / 'h' / 'psnr.f32').stat().st_size == history.capacity * 5 * 4


def test_truncated_history_is_detected(tmp_path: Path) -> None:
    make_history(tmp_path / 'h')
    path = tmp_path / 'h' / 'psnr.f32'
    with open(path, 'r+b') as f:
        f.truncate(path.stat().st_size - 4)
    with pytest.raises(HistoryError, match=r'psnr\.f32: .* bytes, expected .*truncated'):
        History.open(tmp_path / 'h')


def test_history_with_edited_keys_is_refused(tmp_path: Path) -> None:
    make_history(tmp_path / 'h')
    (tmp_path / 'h' / 'keys.txt').write_text('k0\nk1\nk2\nk3\nother\n')
    with pytest.raises(HistoryError, match=r'keys\.txt: 5 keys do not match'):
        History.open(tmp_path / 'h')
    (tmp_path / 'h' / 'keys.txt').write_bytes(b'k0\nk1\n\xff\n')
    with pytest.raises(HistoryError, match=r'keys\.txt:3: bytes that are not UTF-8 text'):
        History.open(tmp_path / 'h')


@pytest.mark.parametrize('block,message', [
    ({'view': 'random_crop'}, 'view must be one of'),
    ({'window': 1}, 'window must be an integer >= 2'),
    ({'every': 0}, "every must be 'epoch' or a positive"),
    ({'method': 'forgetting'}, 'method must be'),
    ({'crop': 33}, 'crop must be a positive multiple of the scale 2'),
    ({'windw': 3}, r"unknown key\(s\) \['windw'\]"),
])
def test_bad_tracking_options_fail_clearly(block: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_tracking_options(block, scale=2)


def test_tracking_on_normalised_data_is_refused_before_training(tiny_data: Path, tmp_path: Path) -> None:
    """PSNRs are taken on [0, 1] outputs: a mean/std-normalised set (GFPGAN's FFHQ) would record other values."""
    from srprune_basicsr.preflight import check_training_options

    opt = train_options(tiny_data, 'du_faces', prune_tracking={'window': 2})
    opt['datasets']['train'].update(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=r'faces.yml: prune_tracking: records the PSNR of each trained sample on '
                                         r'\[0, 1\] images, but datasets:train normalises them \(mean/std\)'):
        check_training_options(write_options(tmp_path / 'faces.yml', opt))
    opt['datasets']['val'].update(mean=[0.5] * 3, std=[0.5] * 3)  # validation is not tracked
    del opt['datasets']['train']['mean'], opt['datasets']['train']['std']
    check_training_options(write_options(tmp_path / 'val.yml', opt))


def test_the_tracker_itself_refuses_normalised_data(tiny_data: Path) -> None:
    """Another repo's train.py builds the tracker without srprune's preflight: the tracker refuses on its own,
    before it looks for a loader or records anything."""
    from srprune_basicsr.scoring.tracking import PruneTracker

    opt = train_options(tiny_data, 'du_faces', prune_tracking={'window': 2})
    opt['datasets']['train'].update(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=r'^prune_tracking: records the PSNR of each trained sample on \[0, 1\] '
                                         r'images, but datasets:train normalises them \(mean/std\)'):
        PruneTracker(None, opt, None)
    del opt['datasets']['train']['mean'], opt['datasets']['train']['std']
    with pytest.raises(ValueError, match='no training loader recorded'):  # past the range check
        PruneTracker(None, opt, None)


# ---------------------------------------------------------------------- through `srprune train`
def tracking_options(data: Path, name: str, total_iter: int = 16, **tracking: object) -> dict:
    """Deterministic training (whole 48 px sub-images, no flips) with a tracking block."""
    opt = train_options(data, name, total_iter=total_iter, prune_tracking={'window': 2, **tracking})
    opt['datasets']['train'].update(gt_size=48, use_hflip=False, use_rot=False)
    opt['logger']['save_checkpoint_freq'] = 8
    return opt


train = train_run


@pytest.mark.slow
def test_fixed_view_run_scores_feed_select_and_the_pruned_dataset(tiny_data: Path, tmp_path: Path) -> None:
    exp = train(tmp_path, tracking_options(tiny_data, 'du_fixed'))
    history = History.open(exp / 'prune_tracking')
    assert history.snapshot_iters == [4, 8, 12, 16]  # 16 samples / batch 4: one snapshot per epoch
    values, seen = history.rows(0, 16)
    assert seen.all() and (values > 10).all()
    scores = read_scores(exp / 'scores_du.csv')
    assert scores.meta['method'] == 'dynamic_uncertainty' and scores.meta['parameters']['window'] == 2
    np.testing.assert_allclose(scores.values, dynamic_uncertainty(values, seen, 2)[0])

    # offline recomputation with the same window gives the same file; another window differs
    proc = run_cli(['score', '--from-history', str(exp), '--window', '2', '--out', 'again.csv'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'again.csv').read_text() == (exp / 'scores_du.csv').read_text()
    proc = run_cli(['score', '--from-history', str(exp), '--window', '5'], tmp_path)
    assert proc.returncode == 2 and 'window 5 is larger than the 4 snapshots' in proc.stderr

    # most uncertain half through select, and the same through the dataset's prune: block
    proc = run_cli(['select', '--scores', str(exp / 'scores_du.csv'), '--keep-ratio', '0.5', '--order', 'hardest',
                    '--out', 'keep.txt'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    kept = (tmp_path / 'keep.txt').read_text().split()
    top = {scores.keys[i] for i in np.argsort(-scores.values)[:8]}
    assert set(kept) == top
    dataset_opt = dict(tracking_options(tiny_data, 'x')['datasets']['train'], phase='train', scale=2,
                       prune={'scores': str(exp / 'scores_du.csv'), 'keep_ratio': 0.5, 'order': 'hardest'})
    assert set(PrunedPairedImageDataset(dataset_opt).keys) == top

    proc = run_cli(['report', '--scores', str(exp / 'scores_du.csv'), '--out', 'report'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'report' / 'trajectories.png').stat().st_size > 10_000


@pytest.mark.slow
def test_train_crop_view_on_plain_paired_data_with_a_derived_model(tiny_data: Path, tmp_path: Path) -> None:
    # BasicSR's SwinIRModel (an SRModel subclass) with plain PairedImageDataset: keys come from gt_path.
    # Batch 5 of 16 samples: 3 iterations per epoch, one sample unseen each epoch (masked, not 0 dB).
    opt = tracking_options(tiny_data, 'du_crop', total_iter=18, view='train_crop')
    opt['model_type'] = 'SwinIRModel'
    opt['datasets']['train']['batch_size_per_gpu'] = 5
    del opt['datasets']['val'], opt['val']
    exp = train(tmp_path, opt)
    history = History.open(exp / 'prune_tracking')
    assert history.snapshot_iters == [3, 6, 9, 12, 15, 18]
    values, seen = history.rows(0, 16)
    assert (seen.sum(1) == 15).all()
    assert (values[seen] > 10).all() and (values[~seen] == 0).all()
    assert len(read_scores(exp / 'scores_du.csv')) == 16


@pytest.mark.slow
@pytest.mark.parametrize('disable,same', [('', True), ('resume_epoch', False)])
def test_resumed_run_gives_the_same_scores(tiny_data: Path, tmp_path: Path, disable: str, same: bool) -> None:
    whole = train(tmp_path / 'a', tracking_options(tiny_data, 'du'), disable=disable)
    first = tracking_options(tiny_data, 'du', total_iter=8)  # stops after the checkpoint at iteration 8 ...
    train(tmp_path / 'b', first, disable=disable)
    resumed = train(tmp_path / 'b', tracking_options(tiny_data, 'du'), '--auto_resume', disable=disable)  # ... to 16
    a, b = History.open(whole / 'prune_tracking'), History.open(resumed / 'prune_tracking')
    assert b.snapshot_iters == a.snapshot_iters == [4, 8, 12, 16]
    np.testing.assert_array_equal(a.rows(0, 16)[0][:2], b.rows(0, 16)[0][:2])  # before the interruption
    assert ((whole / 'scores_du.csv').read_text() == (resumed / 'scores_du.csv').read_text()) is same


@pytest.mark.slow
def test_resume_with_another_dataset_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    train(tmp_path, tracking_options(tiny_data, 'du', total_iter=8))
    (tmp_path / 'keep.txt').write_text(''.join(f'img00{i}_s00{j}\n' for i in range(3) for j in range(1, 5)))
    opt = tracking_options(tiny_data, 'du')
    opt['datasets']['train'].update(type='PrunedPairedImageDataset', prune={'keep': str(tmp_path / 'keep.txt')})
    write_options(tmp_path / 'other.yml', opt)
    proc = run_cli(['train', '-opt', 'other.yml', '--auto_resume'], tmp_path)
    assert proc.returncode != 0
    assert 'recorded on a different dataset (16 samples' in proc.stderr and '(12 samples' in proc.stderr


@pytest.mark.slow
def test_window_larger_than_the_run_fails_before_training(tiny_data: Path, tmp_path: Path) -> None:
    write_options(tmp_path / 'w.yml', tracking_options(tiny_data, 'du_w', window=5))
    proc = run_cli(['train', '-opt', 'w.yml'], tmp_path)
    assert proc.returncode != 0 and 'window 5 is larger than the 4 snapshots this run takes' in proc.stderr
    assert not list((tmp_path / 'experiments' / 'du_w' / 'models').glob('*.pth'))


@pytest.mark.slow
def test_two_cpu_ranks_record_the_same_history_as_one(tiny_data: Path, tmp_path: Path) -> None:
    # 1 rank x batch 4 and 2 ranks x batch 2 see the same 4 samples per step (EnlargedSampler deals
    # one permutation round-robin), so the weights agree up to float summation order.
    # two epochs: under torchrun each epoch and each snapshot spawns its loader workers afresh (seconds each)
    one = train(tmp_path / 'one', tracking_options(tiny_data, 'du', total_iter=8))
    opt = tracking_options(tiny_data, 'du', total_iter=8)
    opt['datasets']['train'].update(batch_size_per_gpu=2, num_worker_per_gpu=1)  # the fixed view reads in a worker
    proc = train_two_ranks(write_options(tmp_path / 'du2.yml', opt))
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = History.open(one / 'prune_tracking'), History.open(tmp_path / 'experiments' / 'du' / 'prune_tracking')
    assert a.snapshot_iters == b.snapshot_iters == [4, 8]
    (va, sa), (vb, sb) = a.rows(0, 16), b.rows(0, 16)
    assert sa.all() and sb.all()  # every sample measured once per snapshot, none twice, none missing
    np.testing.assert_allclose(va, vb, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize('workers,same', [(1, True), (0, False)])
def test_resume_with_random_augmentation_is_identical_when_loader_workers_reseed(tiny_data: Path, tmp_path: Path,
                                                                                 workers: int, same: bool) -> None:
    # random 32 px crops and flips: BasicSR seeds each loader worker afresh every epoch, so a run resumed at an
    # epoch end draws the same augmentations; with no workers the draws come from the main process's
    # generator, which training states do not hold, and the resumed run trains on other crops
    def options(total_iter: int) -> dict:
        opt = tracking_options(tiny_data, 'du_aug', total_iter=total_iter)
        opt['datasets']['train'].update(gt_size=32, use_hflip=True, use_rot=True, num_worker_per_gpu=workers)
        return opt

    whole = train(tmp_path / 'a', options(16))
    train(tmp_path / 'b', options(8))  # 16 samples, batch 4: the checkpoint at iteration 8 ends epoch 2
    resumed = train(tmp_path / 'b', options(16), '--auto_resume')
    assert ((whole / 'scores_du.csv').read_bytes() == (resumed / 'scores_du.csv').read_bytes()) is same
