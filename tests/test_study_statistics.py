"""Study statistics: paired-by-seed differences, their 95% intervals and win counts, the per-image view."""

import math

import numpy as np
import pytest
from scipy import stats

from srprune_basicsr.study.statistics import (
    images_improved,
    mean_interval,
    paired_difference,
    t_quantile_975,
    welch_half_width,
)
from srprune_basicsr.study.tables import study_images_csv, study_md


def test_t_quantiles_are_students_t() -> None:
    # textbook values; fractional df are Welch's (two 3-seed arms lie between 2 and 4)
    for df, exact in ((1, 12.7062), (2, 4.3027), (30, 2.0423), (2.5, 3.5747), (12.4, 2.1710), (10_000, 1.9602)):
        assert t_quantile_975(df) == pytest.approx(exact, abs=2e-4)
    with pytest.raises(ValueError, match='degrees of freedom'):
        t_quantile_975(0)


def test_an_exact_tie_is_neither_a_win_nor_a_loss() -> None:
    same = paired_difference({0: 30.0, 1: 30.2, 2: 30.1}, {0: 30.0, 1: 30.1, 2: 30.1 + 1e-7})
    assert (same.wins, same.ties, same.seeds) == (1, 2, 3)  # below study.csv's 0.0001 dB: a tie
    assert same.text().endswith('1/3, 2 ties')
    one = paired_difference({0: 30.0}, {0: 30.0})
    assert (one.wins, one.ties) == (0, 1) and one.text() == '+0.000, 0/1, 1 tie'


def test_a_paired_difference_equals_a_hand_computation() -> None:
    arm, reference = {0: 30.10, 1: 30.30, 2: 30.20, 7: 29.0}, {0: 30.00, 1: 30.10, 2: 30.15}
    diff = paired_difference(arm, reference)  # seed 7 has no partner: left out
    d = np.array([0.10, 0.20, 0.05])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert diff.mean == pytest.approx(d.mean()) and diff.seeds == 3 and diff.wins == 3
    assert (diff.low, diff.high) == (pytest.approx(d.mean() - half), pytest.approx(d.mean() + half))
    assert diff.text() == f'{d.mean():+.3f} [{d.mean() - half:+.3f}, {d.mean() + half:+.3f}], 3/3'
    one = paired_difference({0: 30.0}, {0: 30.5})
    assert one.low is None and one.text() == '-0.500, 0/1'
    assert paired_difference({0: 1.0}, {1: 1.0}) is None


def test_pairing_narrows_the_interval_when_seeds_share_their_noise() -> None:
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 0.2, 5)  # what a seed's initial weights do to both arms
    arm = {s: 30.0 + 0.05 + seed_effect[s] + rng.normal(0, 0.005) for s in range(5)}
    reference = {s: 30.0 + seed_effect[s] + rng.normal(0, 0.005) for s in range(5)}
    diff = paired_difference(arm, reference)
    assert diff.low > 0 and diff.wins == 5  # the 0.05 dB gain is resolved when paired
    unpaired = welch_half_width(list(arm.values()), list(reference.values()))
    assert diff.unpaired_half_width == pytest.approx(unpaired) and diff.half_width < unpaired / 10


def test_mean_interval_and_images_improved() -> None:
    mean, half = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))
    assert mean_interval([5.0]) == (5.0, None)
    arm = {0: {'a': 30.0, 'b': 20.0, 'c': 25.0}, 1: {'a': 31.0, 'b': 20.0, 'c': 25.0}}
    ref = {0: {'a': 29.0, 'b': 21.0, 'c': 25.0}, 1: {'a': 30.0, 'b': 20.5, 'c': 25.0}}
    assert images_improved(arm, ref) == (1, 3)  # a improves, b loses, c ties


def run(arm: str, method: str, ratio: float, seed: int, psnr: float, band: float = 0.0) -> dict:
    per_image = {'img1': [psnr + 0.1, 0.9], 'img2': [psnr - 0.1, 0.8]}
    return {'arm': arm, 'method': method, 'keep_ratio': ratio, 'band': band, 'seed': seed,
            'benchmarks': {'B': {'psnr': psnr, 'ssim': 0.85, 'per_image': per_image}}}


def test_study_tables_carry_paired_intervals_win_counts_and_images() -> None:
    results = []
    for seed, noise in enumerate([0.0, 0.3, -0.2]):
        results += [run('full', 'full', 1.0, seed, 30.0 + noise), run('random@0.5', 'random', 0.5, seed, 29.8 + noise),
                    run('sobel@0.5', 'sobel', 0.5, seed, 29.9 + noise + 0.01 * seed)]
    md = study_md(results, ['B'])
    row = next(line for line in md.splitlines() if line.startswith('| sobel@0.5 |'))
    diff = paired_difference({s: 29.9 + n + 0.01 * s for s, n in enumerate([0.0, 0.3, -0.2])},
                             {s: 29.8 + n for s, n in enumerate([0.0, 0.3, -0.2])})
    assert diff.text() in row and ', 3/3' in row and '| 2/2 |' in row  # both images beat random
    assert '## Pairing by seed' in md and 'x the width of the unpaired (Welch) ones' in md
    rows = study_images_csv(results, ['B']).splitlines()
    assert rows[0] == 'arm,seed,benchmark,image,psnr,ssim' and len(rows) == 1 + 9 * 2
    assert rows[1] == 'full,0,B,img1,30.1000,0.9000'


def test_the_yardstick_puts_random_against_full_with_the_noise_of_the_differences(tmp_path) -> None:
    from srprune_basicsr.study.tables import write_outputs, yardstick

    offsets = {'full': 0.0, 'random@0.1': -0.10, 'random@0.5': -0.01}
    noise = {0: 0.0, 1: 0.002, 2: -0.002}
    results = [{'arm': arm, 'method': arm.split('@')[0], 'keep_ratio': float(arm.partition('@')[2] or 1), 'band': 0,
                'seed': seed, 'iters': 0,
                'benchmarks': {'B': {'psnr': 30 + 0.05 * seed + offset + (noise[seed] if offset else 0), 'ssim': 0.9}}}
               for arm, offset in offsets.items() for seed in range(3)]
    lonely = {**results[0], 'arm': 'random@0.02', 'method': 'random', 'keep_ratio': 0.02, 'seed': 7}
    rows = yardstick([*results, lonely], 'B')  # a run with no full partner yet (another shard) is left out
    assert [(arm, ratio) for arm, ratio, _, _ in rows] == [('random@0.1', 0.1), ('random@0.5', 0.5)]
    arm, _, diff, spread = rows[0]
    assert diff.mean == pytest.approx(-0.10) and diff.high < 0 and spread == pytest.approx(0.002)
    (tmp_path / 'experiments').mkdir()
    written = write_outputs(results, tmp_path, ['B'])
    md = (tmp_path / 'study.md').read_text()
    assert '## Yardstick: random subsets against full data' in md and '| random@0.1 | -0.100 [' in md
    assert '| 0.002 | 50.0 |' in md and written['yardstick'].stat().st_size > 5_000
