"""`srprune lmdb build/rebuild/verify`: stored bytes copied, sources untouched, clear errors, safe output."""

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
from conftest import latest_log, psnr_values, run_cli, train_options, write_options

from srprune_basicsr import rebuild
from srprune_basicsr.formats.atomic import write_marker
from srprune_basicsr.formats.keep import read_keep_list
from srprune_basicsr.formats.lmdb import (
    LmdbError,
    LmdbWriter,
    MetaEntry,
    _glibc,
    build_lmdb_from_folder,
    iter_values,
    read_meta_info,
    retained_heap,
    verify_lmdb,
)
from srprune_basicsr.rebuild import rebuild_lmdbs

NAMES = ('HR_sub.lmdb', 'LR_bicubic_X2_sub.lmdb', 'LR_bicubic_X4_sub.lmdb')


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob('*')) if p.is_file()}


@pytest.fixture
def sources(tiny_data: Path, tmp_path: Path) -> list[Path]:
    """Private copies of the tiny GT/x2/x4 LMDBs (16 keys), safe to damage."""
    return [Path(shutil.copytree(tiny_data / 'train_sub' / name, tmp_path / 'src' / name)) for name in NAMES]


def write_keep(path: Path, keys: list[str]) -> Path:
    path.write_text(''.join(f'{k}\n' for k in keys))
    return path


def test_rebuild_copies_stored_bytes_of_kept_keys_in_source_order(sources: list[Path], tmp_path: Path) -> None:
    all_keys = [e.key for e in read_meta_info(sources[0])]
    keep = all_keys[1::2][::-1]  # order in keep.txt does not matter; the source's order does
    before = {src: tree_digest(src) for src in sources}
    proc = run_cli(['lmdb', 'rebuild', *sum((['--src', str(s)] for s in sources), []), '--keep',
                    str(write_keep(tmp_path / 'keep.txt', keep)), '--out', str(tmp_path / 'kept')], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert 'kept 8, dropped 8' in proc.stdout
    for src in sources:
        out = tmp_path / 'kept' / src.name
        assert [e.key for e in read_meta_info(out)] == all_keys[1::2]
        source_values = dict(iter_values(src))
        assert all(value == source_values[key] for key, value in iter_values(out))
        assert [e.line() for e in read_meta_info(out)] == [e.line() for e in read_meta_info(src) if e.key in keep]
        assert verify_lmdb(out, decode=True).ok
        assert tree_digest(src) == before[src]  # sources untouched (no lock file, no write)
    record = json.loads((tmp_path / 'kept' / 'keep.json').read_text())
    assert record['kept'] == 8 and record['dropped'] == 8 and record['total'] == 16
    assert record['keep_sha256'] == hashlib.sha256((tmp_path / 'keep.txt').read_bytes()).hexdigest()
    assert (tmp_path / 'kept' / 'keep.txt').read_text().split() == all_keys[1::2]
    assert read_keep_list(tmp_path / 'kept' / 'keep.txt') == all_keys[1::2]  # its record describes it
    assert record['output'] == 'keep.txt' and len(record['output_sha256']) == 64


@pytest.mark.slow
def test_rebuilt_lmdbs_train_in_basicsr_paired_dataset(sources: list[Path], tiny_data: Path, tmp_path: Path) -> None:
    keys = [e.key for e in read_meta_info(sources[0])][:10]
    rebuild_lmdbs(sources[:2], write_keep(tmp_path / 'keep.txt', keys), tmp_path / 'kept', progress=False)
    opt = train_options(tiny_data, 'train_on_kept', total_iter=2)
    opt['datasets']['train'].update(dataroot_gt=str(tmp_path / 'kept' / NAMES[0]),
                                    dataroot_lq=str(tmp_path / 'kept' / NAMES[1]))
    write_options(tmp_path / 'kept.yml', opt)
    proc = run_cli(['train', '-opt', 'kept.yml'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = latest_log(tmp_path / 'experiments' / 'train_on_kept')
    assert 'Number of train images: 10' in log and psnr_values(log)


@pytest.mark.parametrize('case,message', [
    ('missing_source', 'no such LMDB'),
    ('not_lmdb', 'not an LMDB (no data.mdb)'),
    ('unknown_keys', '2 of 3 key(s) are not in'),
    ('duplicate_keep', 'duplicate key'),
    ('empty_keep', 'the keep list is empty'),
    ('keys_differ', 'hold different keys'),
])
def test_rebuild_errors_name_file_and_key(sources: list[Path], tmp_path: Path, case: str, message: str) -> None:
    keys = [e.key for e in read_meta_info(sources[0])]
    keep, srcs = [keys[0], keys[1]], list(sources[:2])
    if case == 'missing_source':
        srcs[1] = tmp_path / 'nope.lmdb'
    elif case == 'not_lmdb':
        srcs[1] = tmp_path / 'plain'
        srcs[1].mkdir()
    elif case == 'unknown_keys':
        keep = [keys[0], 'ghost_s001', 'ghost_s002']
    elif case == 'duplicate_keep':
        keep = [keys[0], keys[0]]
    elif case == 'empty_keep':
        keep = []
    elif case == 'keys_differ':
        lines = (srcs[1] / 'meta_info.txt').read_text().splitlines(keepends=True)
        (srcs[1] / 'meta_info.txt').write_text(''.join(lines[:-1]))
    keep_path = write_keep(tmp_path / 'keep.txt', keep)
    with pytest.raises(LmdbError) as err:
        rebuild_lmdbs(srcs, keep_path, tmp_path / 'out', progress=False)
    assert message in str(err.value)
    if case == 'unknown_keys':
        assert 'ghost_s001' in str(err.value) and str(keep_path) in str(err.value)
    if case == 'keys_differ':
        assert keys[-1] in str(err.value) and str(srcs[1]) in str(err.value)
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'out.partial').exists()


def test_cli_error_exits_2_with_the_message(sources: list[Path], tmp_path: Path) -> None:
    keep_path = write_keep(tmp_path / 'keep.txt', ['ghost_s001'])
    proc = run_cli(['lmdb', 'rebuild', '--src', str(sources[0]), '--keep', str(keep_path), '--out', 'out'], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith('srprune lmdb: error:') and 'ghost_s001' in proc.stderr


@pytest.mark.parametrize('damaged', ['keep', 'meta'])
def test_a_keep_list_or_meta_info_that_is_not_text_is_refused_naming_its_line(sources: list[Path], tmp_path: Path,
                                                                               damaged: str) -> None:
    keys = [e.key for e in read_meta_info(sources[0])]
    keep_path = tmp_path / 'keep.txt'
    keep_path.write_bytes(f'{keys[0]}\n{keys[1]}\n'.encode() + (b'\xff\xfe\n' if damaged == 'keep' else b''))
    source = tmp_path / 'copy.lmdb'
    shutil.copytree(sources[0], source)
    if damaged == 'meta':
        meta = source / 'meta_info.txt'
        meta.write_bytes(meta.read_bytes() + b'\x00\x00')
    before = tree_digest(source)
    proc = run_cli(['lmdb', 'rebuild', '--src', str(source), '--keep', str(keep_path), '--out', 'out'], tmp_path)
    assert proc.returncode == 2, proc.stderr
    named = 'keep.txt:3: bytes that are not UTF-8' if damaged == 'keep' else f'meta_info.txt:{len(keys) + 1}: a NUL'
    assert named in proc.stderr and 'Traceback' not in proc.stderr
    assert tree_digest(source) == before and not (tmp_path / 'out').exists()


def test_existing_output_refused_unless_overwrite(sources: list[Path], tmp_path: Path) -> None:
    keys = [e.key for e in read_meta_info(sources[0])]
    keep = write_keep(tmp_path / 'keep.txt', keys[:3])
    rebuild_lmdbs(sources, keep, tmp_path / 'kept', progress=False)
    with pytest.raises(FileExistsError, match='--overwrite'):
        rebuild_lmdbs(sources, write_keep(tmp_path / 'keep2.txt', keys[:5]), tmp_path / 'kept', progress=False)
    assert len(read_meta_info(tmp_path / 'kept' / NAMES[0])) == 3
    rebuild_lmdbs(sources, tmp_path / 'keep2.txt', tmp_path / 'kept', overwrite=True, progress=False)
    assert len(read_meta_info(tmp_path / 'kept' / NAMES[0])) == 5


def test_interrupted_rebuild_leaves_nothing_and_rerun_succeeds(sources: list[Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    keep = write_keep(tmp_path / 'keep.txt', [e.key for e in read_meta_info(sources[0])][:4])
    real_copy, calls = rebuild._copy_values, []

    def interrupted_copy(*args, **kwargs):  # noqa: ANN002,ANN003
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second LMDB is being written
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(rebuild, '_copy_values', interrupted_copy)
    with pytest.raises(KeyboardInterrupt):
        rebuild_lmdbs(sources, keep, tmp_path / 'kept', progress=False)
    assert not (tmp_path / 'kept').exists() and not (tmp_path / 'kept.partial').exists()
    monkeypatch.setattr(rebuild, '_copy_values', real_copy)
    (tmp_path / 'kept.partial' / 'HR_sub.lmdb').mkdir(parents=True)  # what a killed run leaves: a half-built
    write_marker(tmp_path / 'kept.partial', 'rebuild')  # LMDB in a temporary that srprune marked when it began
    result = rebuild_lmdbs(sources, keep, tmp_path / 'kept', progress=False)
    assert result.kept == 4 and all(verify_lmdb(p).ok for p in result.lmdbs)
    assert not (tmp_path / 'kept.partial').exists()


def test_verify_reports_meta_database_disagreement(sources: list[Path], tmp_path: Path) -> None:
    gt = sources[0]
    assert run_cli(['lmdb', 'verify', str(gt)], tmp_path).returncode == 0
    with open(gt / 'meta_info.txt', 'a') as f:
        f.write('phantom_s001.png (48,48,3) 1\n')
    proc = run_cli(['lmdb', 'verify', str(gt)], tmp_path)
    assert proc.returncode == 1
    assert 'phantom_s001' in proc.stdout and 'not in the database' in proc.stdout


def test_verify_decode_finds_corrupted_image(sources: list[Path], tmp_path: Path) -> None:
    gt = sources[0]
    key = read_meta_info(gt)[3].key
    with lmdb.open(str(gt), map_size=1 << 30) as env, env.begin(write=True) as txn:
        txn.put(key.encode(), b'\x89PNG\r\n\x1a\n truncated')
    assert run_cli(['lmdb', 'verify', str(gt)], tmp_path).returncode == 0  # keys still agree
    proc = run_cli(['lmdb', 'verify', str(gt), '--decode'], tmp_path)
    assert proc.returncode == 1 and key in proc.stdout and 'does not decode' in proc.stdout


def test_build_from_folder_keeps_bytes_and_refuses_non_images(tmp_path: Path) -> None:
    folder = tmp_path / 'imgs'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(folder / f'a{i}.png'), rng.integers(0, 255, (10 + i, 12, 3), dtype=np.uint8))
    proc = run_cli(['lmdb', 'build', '--folder', str(folder), '--out', str(tmp_path / 'a.lmdb')], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [(e.key, e.shape) for e in read_meta_info(tmp_path / 'a.lmdb')] == [
        ('a0', (10, 12, 3)), ('a1', (11, 12, 3)), ('a2', (12, 12, 3))]
    assert dict(iter_values(tmp_path / 'a.lmdb'))['a1'] == (folder / 'a1.png').read_bytes()
    (folder / 'notes.txt').write_text('x')
    with pytest.raises(LmdbError, match='notes.txt'):
        build_lmdb_from_folder(folder, tmp_path / 'b.lmdb', progress=False)


def test_writer_grows_a_map_that_is_too_small(tmp_path: Path) -> None:
    (tmp_path / 'g.lmdb').mkdir()
    blob = bytes(300_000)
    with LmdbWriter(tmp_path / 'g.lmdb', map_size=1 << 20, batch=100) as writer:  # 1 MiB map, 6 MB of data
        for i in range(20):
            writer.put(f'k{i:02d}', blob, (1, 1, 3))
    assert verify_lmdb(tmp_path / 'g.lmdb').entries == 20
    assert len(dict(iter_values(tmp_path / 'g.lmdb'))['k19']) == 300_000


def test_writer_commits_when_its_pending_bytes_reach_the_bound(tmp_path: Path) -> None:
    (tmp_path / 'b.lmdb').mkdir()
    committed = []
    with LmdbWriter(tmp_path / 'b.lmdb', map_size=1 << 20, batch=100, batch_bytes=1000) as writer:
        for i in range(7):
            writer.put(f'k{i}', bytes(600), (1, 1, 3))
            committed.append(writer.env.stat()['entries'])
            assert writer.pending_bytes < 1000
    assert committed == [0, 2, 2, 4, 4, 6, 6]  # every second 600-byte value crosses 1,000 bytes
    assert verify_lmdb(tmp_path / 'b.lmdb').entries == 7


def test_rebuild_in_one_transaction_per_value_gives_the_same_lmdbs(sources: list[Path], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    keep = write_keep(tmp_path / 'keep.txt', [e.key for e in read_meta_info(sources[0])][::3])
    rebuild_lmdbs(sources, keep, tmp_path / 'one', progress=False)
    monkeypatch.setattr(rebuild, 'COMMIT_BYTES', 1)  # every value commits its own transaction
    rebuild_lmdbs(sources, keep, tmp_path / 'many', progress=False)
    for src in sources:
        one, many = tmp_path / 'one' / src.name, tmp_path / 'many' / src.name
        assert (many / 'meta_info.txt').read_text() == (one / 'meta_info.txt').read_text()
        assert list(iter_values(many)) == list(iter_values(one))
        assert verify_lmdb(many, decode=True).ok


def page_faults_of_reallocating(rounds: int = 4, blocks: int = 16, size: int = 1 << 20) -> int:
    """Minor page faults of allocating, touching and freeing ``blocks`` blocks of ``size``, ``rounds`` times."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        held = [bytearray(size) for _ in range(blocks)]
        for block in held:
            block[::4096] = bytes(len(range(0, size, 4096)))  # write one byte per page
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def heap_page_faults() -> tuple[int, int]:
    """Page faults of reallocating inside ``retained_heap`` (nested once) and after it, in this process."""
    with retained_heap():
        page_faults_of_reallocating(rounds=1)  # the heap grows once
        with retained_heap():  # nested: leaving it must not end the outer retention
            pass
        inside = page_faults_of_reallocating()
    outside = page_faults_of_reallocating()  # glibc's defaults again: every block is a fresh mmap
    return inside, outside


@pytest.mark.skipif(_glibc() is None, reason='retained_heap tunes glibc malloc; elsewhere it is a no-op')
def test_retained_heap_reuses_freed_blocks_and_is_reentrant() -> None:
    # in a fresh process: a heap that earlier tests of this process left with large free holes (an in-process
    # training step) serves 1 MiB blocks from those holes instead of fresh mmaps, and "outside" faults less
    import subprocess
    import sys

    code = f'import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_lmdb; ' \
           'print(*test_lmdb.heap_page_faults())'
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    inside, outside = map(int, proc.stdout.split()[-2:])
    pages = 4 * 16 * (1 << 20) // 4096
    assert outside > pages // 2, outside
    assert inside < pages // 8, inside


def test_meta_line_round_trip() -> None:
    entry = MetaEntry('0001_s001', (480, 480, 3), 1)
    assert entry.line() == '0001_s001.png (480,480,3) 1\n'


# ---------------------------------------------------------------------------------- a key listed but not stored
def key_dropped_from_database(tiny_data: Path, folder: Path) -> tuple[Path, str]:
    """A copy of the tiny data whose x2 LMDB lists a key in meta_info.txt that data.mdb no longer holds."""
    for part in ('train_sub', 'val'):
        shutil.copytree(tiny_data / part, folder / part)
    lq = folder / 'train_sub' / NAMES[1]
    key = read_meta_info(lq)[-1].key  # read last: BasicSR crashes only when it reaches it, after checkpoints
    with lmdb.open(str(lq), map_size=1 << 30) as env, env.begin(write=True) as txn:
        assert txn.delete(key.encode())
    return lq, key


def test_train_refuses_an_lmdb_missing_a_listed_key_before_it_starts(tiny_data: Path, tmp_path: Path) -> None:
    from test_safety import refused

    lq, key = key_dropped_from_database(tiny_data, tmp_path / 'D')
    write_options(tmp_path / 'miss.yml', train_options(tmp_path / 'D', 'miss', total_iter=8))
    refused(run_cli(['train', '-opt', 'miss.yml'], tmp_path), str(lq / 'meta_info.txt'), str(lq / 'data.mdb'),
            repr(key), f'srprune lmdb verify {lq}')
    assert not (tmp_path / 'experiments').exists()


def test_score_refuses_an_lmdb_missing_a_listed_key_before_it_scores(tiny_data: Path, tmp_path: Path) -> None:
    from test_safety import refused

    lq, key = key_dropped_from_database(tiny_data, tmp_path / 'D')
    train = train_options(tmp_path / 'D', 'x')['datasets']['train']
    opt = {'name': 'miss_score', 'method': 'bicubic_psnr', 'scale': 2, 'num_gpu': 0, 'score': {'batch_size': 4},
           'dataset': {'name': 'train_sub', 'type': 'PairedImageDataset', 'dataroot_gt': train['dataroot_gt'],
                       'dataroot_lq': train['dataroot_lq'], 'io_backend': {'type': 'lmdb'}}}
    write_options(tmp_path / 'score.yml', opt)
    refused(run_cli(['score', '-opt', 'score.yml'], tmp_path), str(lq / 'data.mdb'), repr(key),
            f'srprune lmdb verify {lq}')
    assert not (tmp_path / 'experiments').exists()
