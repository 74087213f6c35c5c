"""Score files, selection rules, `srprune select` and PrunedPairedImageDataset."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from basicsr.data import build_dataset
from conftest import latest_log, run_cli, train_options, write_options

from srprune_basicsr.formats.lmdb import read_meta_info
from srprune_basicsr.formats.scores import ScoreFileError, read_scores, write_scores
from srprune_basicsr.selection import SelectionRule, select_indices, select_keys

KEYS = [f'{i:04d}_s001' for i in range(100)]
SCORES = np.arange(100, dtype=np.float64)  # key i has difficulty i: 0099 is the hardest


def test_scores_round_trip_exactly(tmp_path: Path) -> None:
    values = np.random.default_rng(0).random(100) * 1e-3
    write_scores(tmp_path / 'scores.csv', KEYS, values, method='test', parameters={'a': 1})
    scores = read_scores(tmp_path / 'scores.csv')
    assert scores.keys == KEYS and np.array_equal(scores.values, values)
    assert scores.meta['method'] == 'test' and scores.meta['count'] == 100
    first = (tmp_path / 'scores.csv').read_bytes()
    write_scores(tmp_path / 'scores.csv', KEYS, values, method='test', overwrite=True)
    assert (tmp_path / 'scores.csv').read_bytes() == first


@pytest.mark.parametrize('content,message', [
    (None, 'no such score file'),
    ('', 'empty file'),
    ('key,score\n', 'no scores'),
    ('name,value\na,1\n', 'header'),
    ('key,score\na,1\nb\n', ':3: malformed row'),
    ('key,score\na,1\nb,abc\n', "key 'b' has a score that is not a number"),
    ('key,score\na,1\nb,nan\n', "key 'b' has a non-finite score"),
    ('key,score\na,1\nb,inf\n', "key 'b' has a non-finite score"),
    ('key,score\na,1\na,2\n', "duplicate key 'a'"),
])
def test_bad_score_files_are_named_errors(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / 'scores.csv'
    if content is not None:
        path.write_text(content)
    with pytest.raises(ScoreFileError, match=message) as err:
        read_scores(path)
    assert str(path) in str(err.value)


def test_refined_band_keeps_ranks_5_to_55_percent() -> None:
    kept = select_keys(KEYS, SCORES, SelectionRule(keep_ratio=0.5, drop_hardest=0.05))
    # hardest = highest score: drop scores 95..99, keep 45..94, returned in dataset order
    assert kept == KEYS[45:95]


def test_orders() -> None:
    assert select_indices(SCORES, SelectionRule(0.1, 'easiest')).tolist() == list(range(10))
    band = select_indices(SCORES, SelectionRule(0.25, 'hardest', drop_hardest=0.25)).tolist()
    assert band == list(range(50, 75))
    rand = select_indices(SCORES, SelectionRule(0.3, 'random', seed=1))
    assert len(rand) == 30 and len(set(rand.tolist())) == 30
    assert rand.tolist() == select_indices(SCORES, SelectionRule(0.3, 'random', seed=1)).tolist()
    assert rand.tolist() != select_indices(SCORES, SelectionRule(0.3, 'random', seed=2)).tolist()
    assert max(select_indices(SCORES, SelectionRule(0.3, 'random', drop_hardest=0.1)).tolist()) < 90


def test_stratified_covers_the_score_range_from_sparse_strata_up() -> None:
    # 90 easy samples crowd one stratum, 10 hard ones spread over the rest
    scores = np.concatenate([np.full(90, 1.0) + np.linspace(0, 0.01, 90), np.linspace(2, 10, 10)])
    kept = select_indices(scores, SelectionRule(0.2, 'stratified', strata=10))
    assert len(kept) == 20
    assert (kept >= 90).sum() == 10  # every sparse hard sample kept before the crowded stratum fills
    log_kept = select_indices(scores, SelectionRule(0.2, 'stratified', strata=10, log_strata=True))
    assert len(log_kept) == 20


@pytest.mark.parametrize('kwargs,message', [
    ({'keep_ratio': 0}, r'keep_ratio must be in \(0, 1\]'),
    ({'keep_ratio': 1.5}, r'keep_ratio must be in \(0, 1\]'),
    ({'keep_ratio': 0.6, 'drop_hardest': 0.5}, 'exceed 1'),
    ({'keep_ratio': 0.5, 'order': 'median'}, 'order must be one of'),
])
def test_bad_rules_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelectionRule(**kwargs)


def test_hardest_small_budget_without_drop_warns() -> None:
    with pytest.warns(UserWarning, match='band'):
        select_indices(SCORES, SelectionRule(0.25, 'hardest'))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        select_indices(SCORES, SelectionRule(0.25, 'hardest', drop_hardest=0.25))


def test_select_cli_writes_keep_txt_and_json(tmp_path: Path) -> None:
    write_scores(tmp_path / 'scores.csv', KEYS, SCORES, method='test')
    proc = run_cli(['select', '--scores', 'scores.csv', '--keep-ratio', '0.5', '--drop-hardest', '0.05',
                    '--out', 'sel/keep.txt'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'sel' / 'keep.txt').read_text().split() == KEYS[45:95]
    record = json.loads((tmp_path / 'sel' / 'keep.json').read_text())
    assert record['kept'] == 50 and record['dropped'] == 50 and record['rule']['drop_hardest'] == 0.05
    assert len(record['scores_sha256']) == 64
    bad = run_cli(['select', '--scores', 'scores.csv', '--keep-ratio', '0.6', '--drop-hardest', '0.5',
                   '--out', 'x.txt'], tmp_path)
    assert bad.returncode == 2 and 'exceed 1' in bad.stderr and not (tmp_path / 'x.txt').exists()


def test_a_keep_list_is_read_only_as_its_record_describes_it(tmp_path: Path) -> None:
    """select's keep.txt carries a record (digest, kept count): an edited list is refused naming both files, a
    list written by hand (no record of ours beside it) is read as it is, and so is one whose record we did not write."""
    from srprune_basicsr.formats.keep import read_keep_list
    from srprune_basicsr.formats.meta_info import LmdbError

    write_scores(tmp_path / 'scores.csv', KEYS, SCORES, method='test')
    assert run_cli(['select', '--scores', 'scores.csv', '--keep-ratio', '0.1', '--out', 'keep.txt'],
                   tmp_path).returncode == 0
    keep = tmp_path / 'keep.txt'
    assert read_keep_list(keep) == KEYS[90:]
    keep.write_text(keep.read_text().replace(KEYS[95], KEYS[5]))  # same count, other subset
    with pytest.raises(LmdbError, match=r'keep.txt: not the list .*keep.json describes \(its SHA-256 differs\)'):
        read_keep_list(keep)
    record = json.loads((tmp_path / 'keep.json').read_text())
    del record['output_sha256']  # a record from before the digest was kept: the count still tells
    (tmp_path / 'keep.json').write_text(json.dumps(record))
    keep.write_text(''.join(f'{k}\n' for k in KEYS[91:]))
    with pytest.raises(LmdbError, match=r'keep.txt: 9 key\(s\), but .*keep.json records 10 \(kept\)'):
        read_keep_list(keep)
    (tmp_path / 'keep.json').write_text(json.dumps({**record, 'tool': 'another tool'}))
    assert read_keep_list(keep) == KEYS[91:]  # not our record: says nothing about this list
    (tmp_path / 'keep.json').unlink()
    assert read_keep_list(keep) == KEYS[91:]  # a hand-written list


def dataset_opt(tiny_data: Path, prune: dict | None, batch: int = 4) -> dict:
    opt = {'name': 'tiny', 'type': 'PrunedPairedImageDataset', 'phase': 'train', 'scale': 2, 'gt_size': 32,
           'use_hflip': False, 'use_rot': False, 'io_backend': {'type': 'lmdb'}, 'batch_size_per_gpu': batch,
           'dataroot_gt': str(tiny_data / 'train_sub' / 'HR_sub.lmdb'),
           'dataroot_lq': str(tiny_data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb')}
    if prune is not None:
        opt['prune'] = prune
    return opt


def tiny_keys(tiny_data: Path) -> list[str]:
    return sorted(e.key for e in read_meta_info(tiny_data / 'train_sub' / 'HR_sub.lmdb'))


def test_dataset_applies_the_rule_and_returns_key_and_index(tiny_data: Path, tmp_path: Path) -> None:
    keys = tiny_keys(tiny_data)
    write_scores(tmp_path / 'scores.csv', keys, np.arange(len(keys), dtype=float), method='test')
    dataset = build_dataset(dataset_opt(tiny_data, {'scores': str(tmp_path / 'scores.csv'), 'keep_ratio': 0.5,
                                                    'drop_hardest': 0.25}))
    assert dataset.keys == keys[4:12] and len(dataset) == 8
    item = dataset[3]
    assert item['key'] == keys[7] and item['index'] == 3 and tuple(item['gt'].shape) == (3, 32, 32)
    (tmp_path / 'keep.txt').write_text(f'{keys[2]}\n{keys[0]}\n{keys[9]}\n{keys[5]}\n')
    listed = build_dataset(dataset_opt(tiny_data, {'keep': str(tmp_path / 'keep.txt')}))
    assert listed.keys == [keys[0], keys[2], keys[5], keys[9]]
    assert len(build_dataset(dataset_opt(tiny_data, None))) == 16


@pytest.mark.parametrize('prune,message', [
    ({'scores': 'S', 'keep_ratio': 0.5, 'typo_ratio': 1}, r"unknown key\(s\) \['typo_ratio'\]"),
    ({'keep_ratio': 0.5}, 'exactly one of'),
    ({'scores': 'S', 'keep_ratio': 0.1}, 'fewer than one batch'),
    ({'scores': 'PARTIAL', 'keep_ratio': 0.5}, r'dataset key\(s\) without a score'),
    ({'scores': 'EXTRA', 'keep_ratio': 0.5}, r"1 key\(s\) not in the dataset \(e.g. \['ghost_s001'\]\)"),
])
def test_dataset_errors(tiny_data: Path, tmp_path: Path, prune: dict, message: str) -> None:
    keys = tiny_keys(tiny_data)
    write_scores(tmp_path / 'S.csv', keys, np.arange(16.0), method='t')
    write_scores(tmp_path / 'PARTIAL.csv', keys[:10], np.arange(10.0), method='t')
    write_scores(tmp_path / 'EXTRA.csv', keys + ['ghost_s001'], np.arange(17.0), method='t')
    if 'scores' in prune:
        prune = dict(prune, scores=str(tmp_path / f"{prune['scores']}.csv"))
    with pytest.raises(ValueError, match=message):
        build_dataset(dataset_opt(tiny_data, prune))


@pytest.mark.slow
def test_train_on_pruned_dataset_through_yaml(tiny_data: Path, tmp_path: Path) -> None:
    keys = tiny_keys(tiny_data)
    write_scores(tmp_path / 'scores.csv', keys, np.arange(16.0), method='test')
    opt = train_options(tiny_data, 'pruned_run', total_iter=4)
    opt['logger']['use_tb_logger'] = True
    opt['datasets']['train'].update(type='PrunedPairedImageDataset',
                                    prune={'scores': str(tmp_path / 'scores.csv'), 'keep_ratio': 0.5,
                                           'order': 'hardest', 'drop_hardest': 0.05})
    write_options(tmp_path / 'pruned.yml', opt)
    proc = run_cli(['train', '-opt', 'pruned.yml'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = latest_log(tmp_path / 'experiments' / 'pruned_run')
    assert 'kept 8 of 16 samples' in log and 'Number of train images: 8' in log and 'iter:       4,' in log
    assert 'score histograms of the pruned train set written to TensorBoard' in log
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / 'tb_logger' / 'pruned_run'), size_guidance={'histograms': 0}).Reload()
    assert {'prune/scores_all', 'prune/scores_kept'} <= set(events.Tags()['histograms'])
    assert events.Histograms('prune/scores_kept')[0].histogram_value.num == 8


@pytest.mark.slow
def test_prune_score_block_scores_first_and_reuses(tiny_data: Path, tmp_path: Path) -> None:
    opt = train_options(tiny_data, 'score_first', total_iter=2)
    opt['datasets']['train'].update(type='PrunedPairedImageDataset',
                                    prune={'score': {'method': 'bicubic_psnr'}, 'keep_ratio': 0.5,
                                           'drop_hardest': 0.25})
    write_options(tmp_path / 'a.yml', opt)
    proc = run_cli(['train', '-opt', 'a.yml'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores_path = tmp_path / 'experiments' / 'score_skimage_photos_sub_bicubic_psnr' / 'scores.csv'
    scores = read_scores(scores_path)
    assert len(scores) == 16 and scores.meta['method'] == 'bicubic_psnr' and len(scores.meta['fingerprint']) == 64
    log = latest_log(tmp_path / 'experiments' / 'score_first')
    assert 'kept 8 of 16 samples' in log
    expected = select_keys(scores.keys, scores.values, SelectionRule(0.5, drop_hardest=0.25))
    dataset = build_dataset(dataset_opt(tiny_data, {'scores': str(scores_path), 'keep_ratio': 0.5,
                                                    'drop_hardest': 0.25}))
    assert dataset.keys == sorted(expected)
    first = scores_path.read_bytes(), scores_path.stat().st_mtime_ns
    opt['name'] = 'score_first_again'
    write_options(tmp_path / 'b.yml', opt)
    assert run_cli(['train', '-opt', 'b.yml'], tmp_path).returncode == 0
    assert 'reusing' in latest_log(tmp_path / 'experiments' / 'score_first_again')
    assert (scores_path.read_bytes(), scores_path.stat().st_mtime_ns) == first
    opt['datasets']['train']['prune']['score'] = {'method': 'bicubic_psnr', 'score': {'border': 4}}
    opt['name'] = 'score_first_changed'
    write_options(tmp_path / 'c.yml', opt)
    proc = run_cli(['train', '-opt', 'c.yml'], tmp_path)  # other options, same folder: refused, never replaced
    assert proc.returncode == 2 and "holds scores of bicubic_psnr" in proc.stderr and "'border': 4" in proc.stderr
    assert (scores_path.read_bytes(), scores_path.stat().st_mtime_ns) == first
    assert not (tmp_path / 'experiments' / 'score_first_changed').exists()
    opt['datasets']['train']['prune']['score']['name'] = 'score_border4'
    write_options(tmp_path / 'c.yml', opt)
    assert run_cli(['train', '-opt', 'c.yml'], tmp_path).returncode == 0
    assert 'reusing' not in latest_log(tmp_path / 'experiments' / 'score_first_changed')
    assert read_scores(tmp_path / 'experiments' / 'score_border4' / 'scores.csv').meta['border'] == 4
    assert (scores_path.read_bytes(), scores_path.stat().st_mtime_ns) == first


# ------------------------------------------------------------------ rules aimed at smooth benchmarks
SOURCE_KEYS = [f'{src}_s{i:03d}' for src, count in (('a', 10), ('b', 6), ('c', 4)) for i in range(1, count + 1)]


def test_per_source_keeps_each_source_image_in_proportion() -> None:
    scores = np.arange(20.0)  # c's sub-images are the hardest, a's the easiest
    kept = select_keys(SOURCE_KEYS, scores, SelectionRule(keep_ratio=0.5, drop_hardest=0.1, per_source=True))
    per_source = {src: [k for k in kept if k.startswith(src)] for src in 'abc'}
    assert {src: len(v) for src, v in per_source.items()} == {'a': 5, 'b': 3, 'c': 2}
    # within each source the band: its hardest dropped first (a: 1 of 10), then the next hardest kept
    assert per_source['a'] == [f'a_s{i:03d}' for i in range(5, 10)]
    # the hardest 10% (2 samples) is shared out the same way: a and b drop their hardest, c (0.4 of one) none
    assert per_source['b'] == ['b_s003', 'b_s004', 'b_s005'] and per_source['c'] == ['c_s003', 'c_s004']
    plain = select_keys(SOURCE_KEYS, scores, SelectionRule(keep_ratio=0.5, drop_hardest=0.1))
    assert sum(k.startswith('a') for k in plain) == 2  # the global band keeps 2 of a's 10, per source 5


def test_per_source_on_keys_without_a_source_is_refused() -> None:
    with pytest.raises(ValueError, match=r"per_source: 2 key\(s\) carry no source image .* e.g. \['baby', 'bird'\]"):
        select_indices(np.arange(3.0), SelectionRule(keep_ratio=0.5, per_source=True), ['baby', 'bird', 'x_s001'])


@pytest.mark.parametrize('share', [-0.1, 1.0, 1.5])
def test_random_share_outside_zero_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match=rf'random_share must be in \[0, 1\), got {share}'):
        SelectionRule(keep_ratio=0.5, random_share=share)


def test_a_mixture_is_a_band_plus_a_random_share_of_the_rest() -> None:
    scores = np.arange(100.0)[::-1].copy()  # sample i has rank i (0 = hardest)
    rule = SelectionRule(keep_ratio=0.1, drop_hardest=0.3, random_share=0.2, seed=4)
    kept = select_indices(scores, rule)
    assert len(kept) == 10 and set(range(30, 38)) <= set(kept)  # 8 from the band of ranks 30..37
    extra = sorted(set(kept) - set(range(30, 38)))
    assert len(extra) == 2 and np.array_equal(kept, select_indices(scores, rule))  # seeded
    assert not np.array_equal(kept, select_indices(scores, SelectionRule(keep_ratio=0.1, drop_hardest=0.3,
                                                                         random_share=0.2, seed=5)))


def test_texture_strata_keep_every_stratum_in_proportion(tmp_path: Path) -> None:
    keys = [f'k{i:02d}' for i in range(40)]
    texture = np.array([i % 4 for i in range(40)], dtype=float)  # four textures, ten samples each
    write_scores(tmp_path / 'sobel.csv', keys, texture, method='sobel')
    loss = np.array([10.0 * (i % 4) + i / 100 for i in range(40)])  # the loss follows texture
    rule = SelectionRule(keep_ratio=0.25, texture_scores=str(tmp_path / 'sobel.csv'), texture_strata=4)
    kept = select_keys(keys, loss, rule)
    assert [sum(int(k[1:]) % 4 == t for k in kept) for t in range(4)] == [3, 3, 2, 2]  # 10 kept: 2.5 a stratum
    plain = select_keys(keys, loss, SelectionRule(keep_ratio=0.25))
    assert all(int(k[1:]) % 4 == 3 for k in plain)  # without strata: only the most textured
    assert 'within 4 strata of sobel.csv' in rule.describe()


def test_texture_scores_of_other_keys_are_refused(tmp_path: Path) -> None:
    write_scores(tmp_path / 'sobel.csv', ['x', 'y'], [1.0, 2.0], method='sobel')
    rule = SelectionRule(keep_ratio=0.5, texture_scores=str(tmp_path / 'sobel.csv'))
    with pytest.raises(ValueError, match=r"texture_scores: .*sobel.csv: 2 key\(s\) not in the dataset.*3 dataset "
                                         r"key\(s\) without a score"):
        select_indices(np.arange(3.0), rule, ['a', 'b', 'c'])


def test_the_new_rules_through_select_prune_and_study(tiny_data: Path, tmp_path: Path) -> None:
    from srprune_basicsr.formats.keys import root_keys
    from srprune_basicsr.study.arms import check_arms, expand_arms

    keys = root_keys(tiny_data / 'train_sub' / 'HR_sub.lmdb')  # 4 sources x 4 sub-images
    write_scores(tmp_path / 'scores.csv', keys, np.arange(16.0), method='test')
    proc = run_cli(['select', '--scores', 'scores.csv', '--keep-ratio', '0.5', '--per-source', '--random-share',
                    '0.25', '--out', 'keep.txt'], tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / 'keep.json').read_text())
    assert record['rule']['per_source'] and record['rule']['random_share'] == 0.25 and record['kept'] == 8
    rule = SelectionRule(keep_ratio=0.5, per_source=True, random_share=0.25)
    assert (tmp_path / 'keep.txt').read_text().split() == select_keys(keys, np.arange(16.0), rule)
    opt = dict(name='train', type='PairedImageDataset', dataroot_gt=str(tiny_data / 'train_sub' / 'HR_sub.lmdb'),
               dataroot_lq=str(tiny_data / 'train_sub' / 'LR_bicubic_X2_sub.lmdb'), io_backend={'type': 'lmdb'},
               phase='train', scale=2, gt_size=32, use_hflip=False, use_rot=False,
               prune={'scores': str(tmp_path / 'scores.csv'), 'keep_ratio': 0.5, 'per_source': True,
                      'random_share': 0.25})
    assert build_dataset(opt).keys == select_keys(keys, np.arange(16.0), rule)
    study = {'keep_ratios': [0.5], 'seeds': [0, 1],
             'methods': {'balanced': {'scores': 's.csv', 'bands': [0.1], 'rule': {'per_source': True}}}}
    check_arms(study, 'study.yml')
    arm = next(a for a in expand_arms(study) if a.method == 'balanced')
    assert arm.label == 'balanced@0.5+0.1' and arm.rule(0).per_source and arm.rule(0).drop_hardest == 0.1
    study['methods']['balanced']['rule'] = {'per_sourse': True}
    with pytest.raises(ValueError, match=r"study.yml: methods:balanced: unknown rule: key\(s\) \['per_sourse'\]"):
        check_arms(study, 'study.yml')
    study['methods']['balanced']['rule'] = {'random_share': 1.2}
    with pytest.raises(ValueError, match=r'study.yml: methods:balanced: random_share must be in \[0, 1\)'):
        check_arms(study, 'study.yml')
