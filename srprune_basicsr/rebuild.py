"""keep.txt -> subset LMDBs: copy only the kept keys of each source LMDB, stored bytes unchanged.

All sources (GT and the LQ of each scale) must hold the same keys, so the outputs do too; the
output folder also gets ``keep.txt`` and ``keep.json`` (see ``formats.keep``). Sources are opened
read-only; the output is built under a temporary name, verified and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from srprune_basicsr.formats.atomic import atomic_output_dir, sha256_of
from srprune_basicsr.formats.keep import keep_record, keep_text, read_keep_list
from srprune_basicsr.formats.keys import key_bytes, normalisation_note
from srprune_basicsr.formats.lmdb import (
    META_INFO,
    LmdbError,
    LmdbWriter,
    MetaEntry,
    check_unique,
    ensure_verified,
    map_size_for,
    open_source,
    read_meta_info,
    retained_heap,
    stored_image_problem,
)


@dataclass
class RebuildResult:
    """Where the rebuilt LMDBs are and how many samples were kept and dropped."""

    out: Path
    lmdbs: list[Path]
    kept: int
    dropped: int


def _kept_entries(sources: Sequence[Path], keep: Sequence[str], keep_path: Path) -> tuple[list[list[MetaEntry]], int]:
    """Per source, its entries of the kept keys in the source's order, and the source's size.

    All sources must hold the same keys, and every kept key must be among them.
    """
    metas = [read_meta_info(src) for src in sources]
    for src, meta in zip(sources, metas, strict=True):
        check_unique([e.key for e in meta], str(src / META_INFO))
    reference = {e.key for e in metas[0]}
    for src, meta in zip(sources[1:], metas[1:], strict=True):
        other = {e.key for e in meta}
        if other != reference:
            only_first, only_other = sorted(reference - other), sorted(other - reference)
            raise LmdbError(f'{sources[0]} and {src} hold different keys: {len(only_first)} only in the first '
                            f'(e.g. {only_first[:3]}), {len(only_other)} only in the second (e.g. {only_other[:3]})')
    missing = [k for k in keep if k not in reference]
    if missing:
        raise LmdbError(f'{keep_path}: {len(missing)} of {len(keep)} key(s) are not in {sources[0]}, '
                        f'e.g. {missing[:5]}' + normalisation_note(missing, reference))
    kept = set(keep)
    return [[e for e in meta if e.key in kept] for meta in metas], len(metas[0])


COMMIT_BYTES = 16 << 20  # a write transaction holds its dirty pages in memory: bound it (larger was not faster)


def _copy_values(src: Path, entries: Sequence[MetaEntry], share: float, dst: Path, progress: bool) -> None:
    """Copy the stored bytes of ``entries`` from ``src`` into a new LMDB at ``dst``.

    Values are appended in key order (no B-tree searches or page splits) and committed every
    ``COMMIT_BYTES`` into memory each transaction reuses (the caller's ``retained_heap``), so memory stays flat
    however large the subset; meta_info.txt keeps the source's order. The map size is the
    source's data size scaled to the kept ``share``; the writer grows it if the kept samples
    happen to be larger than average.
    """
    source_bytes = (src / 'data.mdb').stat().st_size
    ordered = sorted(entries, key=lambda e: key_bytes(e.key))
    with open_source(src) as env, env.begin(buffers=True) as txn, \
            LmdbWriter(dst, map_size_for(int(source_bytes * share), len(entries)), batch=len(entries) + 1) as writer:
        writer.write_meta(entries)
        chunk, values, size = [], [], 0
        for entry in tqdm(ordered, desc=f'copy {src.name}', unit='img', disable=not progress, leave=False):
            value = txn.get(key_bytes(entry.key))  # a view into the source: no copy until commit
            if value is None:
                raise LmdbError(f'{src}: key {entry.key!r} is in {META_INFO} but not in the database')
            problem = stored_image_problem(value, entry.shape)
            if problem:
                raise LmdbError(f'{src}: key {entry.key!r} holds {problem}; it would be copied as it is and fail '
                                f'in training (srprune lmdb verify --decode {src} lists every such key)')
            chunk.append(entry)
            values.append(value)
            size += len(value)
            if size >= COMMIT_BYTES:
                writer.put_many(chunk, values, meta=False)
                writer.flush()  # commit while the source views are still valid
                chunk, values, size = [], [], 0
        writer.put_many(chunk, values, meta=False)
        writer.close()


def rebuild_lmdbs(sources: Sequence[str | os.PathLike], keep_path: str | os.PathLike, out: str | os.PathLike,
                  overwrite: bool = False, progress: bool = True, provenance: dict | None = None) -> RebuildResult:
    """Copy only the kept keys of each source LMDB into ``out/<source name>``, bytes unchanged.

    All sources (e.g. GT and LQ of each scale) must hold the same keys, so the outputs do too.
    ``out/keep.txt`` (the keys, in the source's order) and ``out/keep.json`` (provenance) are
    written beside the LMDBs. ``provenance`` adds fields to keep.json (e.g. the selection rule).
    """
    sources = [Path(s) for s in sources]
    keep_path, out = Path(keep_path), Path(out)
    if not sources:
        raise LmdbError('no --src LMDB given')
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise LmdbError(f'two sources share a folder name, so their outputs would collide: {names}')
    for src in sources:
        open_source(src).close()
    keep = read_keep_list(keep_path)
    per_source, total = _kept_entries(sources, keep, keep_path)
    with atomic_output_dir(out, overwrite, inputs=[*sources, keep_path], kind='rebuild') as tmp, retained_heap():
        for src, entries in zip(sources, per_source, strict=True):
            _copy_values(src, entries, len(entries) / total, tmp / src.name, progress)
            ensure_verified(tmp / src.name)
        kept_keys = [e.key for e in per_source[0]]
        text = keep_text(kept_keys)
        (tmp / 'keep.txt').write_text(text)
        record = keep_record(len(kept_keys), total, sources=[str(s.resolve()) for s in sources],
                             keep_file=str(keep_path.resolve()), keep_sha256=sha256_of(keep_path), **(provenance or {}),
                             output='keep.txt', output_sha256=hashlib.sha256(text.encode()).hexdigest())
        (tmp / 'keep.json').write_text(json.dumps(record, indent=2) + '\n')
    return RebuildResult(out, [out / n for n in names], len(kept_keys), total - len(kept_keys))


