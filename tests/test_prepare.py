"""`srprune prepare`: BasicSR's crop rule and keys, DIV2K-style LR, LMDBs BasicSR reads, safe output."""

from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
from basicsr.data import build_dataset
from conftest import random_image, run_cli

from srprune_basicsr.bicubic import imresize_uint8
from srprune_basicsr.formats.atomic import write_marker
from srprune_basicsr.formats.lmdb import read_meta_info, verify_lmdb
from srprune_basicsr.prepare import PrepareConfig, crop_positions, mod_crop, prepare


@pytest.mark.parametrize('length,expected', [
    (480, [0]),                      # exactly one crop
    (500, [0]),                      # 20 px left over <= thresh 48: dropped
    (530, [0, 50]),                  # 50 px left over > 48: a last crop flush with the border
    (960, [0, 240, 480]),
    (1000, [0, 240, 480]),           # 40 px left over: dropped
    (1040, [0, 240, 480, 560]),
    (479, []),                       # smaller than the crop: no sub-image
])
def test_crop_positions_follow_basicsr(length: int, expected: list[int]) -> None:
    assert crop_positions(length, 480, 240, 48) == expected


@pytest.fixture
def hr_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    folder = tmp_path / 'hr'
    folder.mkdir()
    cv2.imwrite(str(folder / '0001.png'), random_image(rng, 101, 75))  # mod-crop 12 -> 96 x 72
    cv2.imwrite(str(folder / '0002.png'), random_image(rng, 50, 50))   # -> 48 x 48
    return folder


def test_keys_crops_and_lr_match_the_div2k_recipe(hr_folder: Path, tmp_path: Path) -> None:
    cfg = PrepareConfig(crop=48, step=24, thresh=0, scales=(2, 3, 4))
    result = prepare(hr_folder, tmp_path / 'out', cfg, workers=2, progress=False)
    # 96 x 72 -> rows [0, 24, 48], cols [0, 24]: 6 crops; 48 x 48 -> 1 crop
    assert result.sub_images == 7
    keys = sorted(p.stem for p in (tmp_path / 'out' / 'HR_sub').iterdir())
    assert keys == [f'0001_s{i:03d}' for i in range(1, 7)] + ['0002_s001']
    hr = mod_crop(cv2.imread(str(hr_folder / '0001.png')), 12)
    gt = cv2.imread(str(tmp_path / 'out' / 'HR_sub' / '0001_s004.png'))  # row 24 (second), col 24 (second)
    assert np.array_equal(gt, hr[24:72, 24:72])
    for s in (2, 3, 4):
        lq = cv2.imread(str(tmp_path / 'out' / f'LR_bicubic_X{s}_sub' / '0001_s004.png'))
        whole_lr = imresize_uint8(hr, 1 / s)
        assert lq.shape == (48 // s, 48 // s, 3)
        assert np.array_equal(lq, whole_lr[24 // s:24 // s + 48 // s, 24 // s:24 // s + 48 // s])


def test_lmdbs_have_basicsr_layout_and_load_in_paired_dataset(hr_folder: Path, tmp_path: Path) -> None:
    cfg = PrepareConfig(crop=48, step=24, thresh=0, scales=(2,))
    prepare(hr_folder, tmp_path / 'out', cfg, lmdb=True, folders=True, workers=1, progress=False)
    gt_lmdb = tmp_path / 'out' / 'HR_sub.lmdb'
    assert {p.name for p in gt_lmdb.iterdir()} == {'data.mdb', 'lock.mdb', 'meta_info.txt'}
    meta = read_meta_info(gt_lmdb)
    assert [e.key for e in meta] == sorted(p.stem for p in (tmp_path / 'out' / 'HR_sub').iterdir())
    assert all(e.shape == (48, 48, 3) for e in meta)
    lq_meta = read_meta_info(tmp_path / 'out' / 'LR_bicubic_X2_sub.lmdb')
    assert [e.key for e in lq_meta] == [e.key for e in meta] and all(e.shape == (24, 24, 3) for e in lq_meta)
    assert verify_lmdb(gt_lmdb, decode=True).ok
    with lmdb.open(str(gt_lmdb), readonly=True, lock=False) as env, env.begin() as txn:
        stored = txn.get(b'0001_s002')
    assert stored == (tmp_path / 'out' / 'HR_sub' / '0001_s002.png').read_bytes()  # bytes kept, not re-encoded
    dataset = build_dataset({
        'name': 't', 'type': 'PairedImageDataset', 'phase': 'train', 'scale': 2, 'gt_size': 32,
        'use_hflip': False, 'use_rot': False, 'io_backend': {'type': 'lmdb'},
        'dataroot_gt': str(gt_lmdb), 'dataroot_lq': str(tmp_path / 'out' / 'LR_bicubic_X2_sub.lmdb')})
    assert len(dataset) == len(meta) == 16  # mod-crop 2 -> 100 x 74: rows 0/24/48/52, cols 0/24/26
    sample = dataset[0]
    assert tuple(sample['gt'].shape) == (3, 32, 32) and tuple(sample['lq'].shape) == (3, 16, 16)


def test_existing_output_is_refused_and_kept(hr_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'precious.txt').write_text('keep me')
    proc = run_cli(['prepare', '--hr', str(hr_folder), '--out', str(out), '--crop', '48', '--step', '24'], tmp_path)
    assert proc.returncode == 2
    assert 'already exists' in proc.stderr and str(out) in proc.stderr
    assert (out / 'precious.txt').read_text() == 'keep me'


def test_non_image_file_is_named_in_the_error(hr_folder: Path, tmp_path: Path) -> None:
    (hr_folder / 'notes.txt').write_text('not an image')
    with pytest.raises(ValueError, match='notes.txt'):
        prepare(hr_folder, tmp_path / 'out', PrepareConfig(crop=48, step=24), progress=False)
    assert not (tmp_path / 'out').exists()


def test_undecodable_image_fails_without_leaving_output(hr_folder: Path, tmp_path: Path) -> None:
    (hr_folder / '0003.png').write_bytes(b'\x89PNG broken')
    with pytest.raises(ValueError, match='0003.png'):
        prepare(hr_folder, tmp_path / 'out', PrepareConfig(crop=48, step=24, scales=(2,)), workers=1,
                progress=False)
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'out.partial').exists()


def test_rerun_after_interruption_succeeds(hr_folder: Path, tmp_path: Path) -> None:
    stale = tmp_path / 'out.partial' / 'HR_sub'
    stale.mkdir(parents=True)
    (stale / 'half_written.png').write_bytes(b'')
    write_marker(tmp_path / 'out.partial', 'prepare')  # a killed run's temporary carries the marker it began with
    result = prepare(hr_folder, tmp_path / 'out', PrepareConfig(crop=48, step=24, scales=(2,)), workers=1,
                     progress=False)
    assert result.sub_images == 7
    assert not (tmp_path / 'out' / 'HR_sub' / 'half_written.png').exists()
    assert not (tmp_path / 'out.partial').exists()


def test_prepare_in_its_own_worker_says_the_script_needs_a_main_guard(hr_folder: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # a spawned worker re-runs an unguarded calling script; it must fail with the cause, not wait on the output lock
    from srprune_basicsr.worker_env import DATA_WORKER_ENV

    monkeypatch.setenv(DATA_WORKER_ENV, '1')
    with pytest.raises(RuntimeError, match="__name__ == '__main__'"):
        prepare(hr_folder, tmp_path / 'out', lmdb=True, progress=False)
    assert not (tmp_path / 'out').exists()


def test_crop_not_divisible_by_scale_is_refused() -> None:
    with pytest.raises(ValueError, match='scale 3'):
        PrepareConfig(crop=100, step=50, scales=(2, 3))
