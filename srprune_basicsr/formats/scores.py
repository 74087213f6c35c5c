"""Score files: ``scores.csv`` (header ``key,score``) with ``scores.json`` provenance beside it.

For every method a larger score means harder / more uncertain / more informative, so one
selection code serves them all. Values are written with 17 significant digits, so a float64
survives the round trip exactly and reruns give byte-identical files. No pickle anywhere.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srprune_basicsr.formats.atomic import write_with_provenance
from srprune_basicsr.formats.keys import normalisation_note
from srprune_basicsr.version import __version__

HEADER = ['key', 'score']


class ScoreFileError(ValueError):
    """A score file that cannot be used; the message names the file, the line and the key."""


@dataclass
class Scores:
    """Per-sample scores in file order, and the provenance read from scores.json (if present)."""

    keys: list[str]
    values: np.ndarray
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.keys, self.values.tolist(), strict=True))


def meta_path(scores_path: str | os.PathLike) -> Path:
    """scores.json beside scores.csv."""
    return Path(scores_path).with_suffix('.json')


def format_scores(keys: Sequence[str], values: Sequence[float]) -> str:
    buf = io.StringIO()
    buf.write('key,score\n')
    for key, value in zip(keys, values, strict=True):
        buf.write(f'{key},{float(value):.17g}\n')
    return buf.getvalue()


def write_scores(path: str | os.PathLike, keys: Sequence[str], values: Sequence[float], method: str,
                 parameters: dict | None = None, overwrite: bool = False, inputs: Sequence = (),
                 **provenance: object) -> Path:
    """Write scores.csv and scores.json atomically; refuses NaN/inf and duplicate keys.

    An existing score file is replaced only with ``overwrite`` and only if this package wrote it;
    neither file may land on one of ``inputs`` (see ``formats.atomic``).
    """
    path = Path(path)
    values = np.asarray(values, dtype=np.float64)
    _check(keys, values, str(path))
    record = {'method': method, 'parameters': parameters or {}, 'count': len(keys),
              'created': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
              'tool': f'srprune_basicsr {__version__}', **provenance}
    return write_with_provenance(path, format_scores(keys, values), meta_path(path), record, overwrite, inputs)


def _check(keys: Sequence[str], values: np.ndarray, source: str) -> None:
    seen: set[str] = set()
    for key, value in zip(keys, values.tolist(), strict=True):
        if key in seen:
            raise ScoreFileError(f'{source}: duplicate key {key!r}')
        seen.add(key)
        if not math.isfinite(value):
            raise ScoreFileError(f'{source}: key {key!r} has a non-finite score ({value})')


def read_scores(path: str | os.PathLike) -> Scores:
    """Read and validate a scores.csv (and its scores.json when present)."""
    path = Path(path)
    if not path.is_file():
        raise ScoreFileError(f'{path}: no such score file')
    keys, values = [], []
    with open(path, newline='') as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None:
            raise ScoreFileError(f'{path}: empty file; expected the header "key,score" and one row per sample')
        if [h.strip() for h in header] != HEADER:
            raise ScoreFileError(f'{path}:1: header is {header}, expected {HEADER}')
        for line_no, row in enumerate(rows, 2):
            if not row:
                continue
            if len(row) != 2 or not row[0].strip():
                raise ScoreFileError(f'{path}:{line_no}: malformed row {row}; expected "key,score"')
            try:
                value = float(row[1])
            except ValueError:
                raise ScoreFileError(f'{path}:{line_no}: key {row[0]!r} has a score that is not a number: '
                                     f'{row[1]!r}') from None
            keys.append(row[0].strip())
            values.append(value)
    if not keys:
        raise ScoreFileError(f'{path}: no scores (only a header)')
    array = np.asarray(values, dtype=np.float64)
    _check(keys, array, str(path))
    meta = json.loads(meta_path(path).read_text()) if meta_path(path).is_file() else {}
    _check_complete(path, len(keys), meta)
    return Scores(keys, array, meta, path)


def _check_complete(path: Path, rows: int, meta: dict) -> None:
    """A score file srprune wrote (it has ``scores.json``) that was cut short is refused, not read as a smaller set.

    Every score file srprune writes ends with a line end, so a last row without one may be a number cut in the
    middle (``0.123`` of ``0.1234567``), which still parses; and ``scores.json`` records how many rows
    were written.
    """
    if not meta:  # a file of the user's own: no record of how it ended or how many rows it had
        return
    with open(path, 'rb') as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
    if last not in (b'\n', b'\r'):
        raise ScoreFileError(f'{path}:{rows + 1}: the last row has no line end, so it may be cut in the middle of '
                             'its number; if the file is complete, end it with a newline')
    expected = meta.get('count')
    if isinstance(expected, int) and expected != rows:
        raise ScoreFileError(f'{path}: {rows} row(s), but {meta_path(path)} records {expected} (count): the file is '
                             'cut or was edited; score again, or remove the json if the edit was on purpose')


def match_dataset(scores: Scores, dataset_keys: Sequence[str]) -> np.ndarray:
    """Scores aligned to ``dataset_keys``; keys missing on either side are an error naming them."""
    table = scores.as_dict()
    missing = [k for k in dataset_keys if k not in table]
    dataset_set = set(dataset_keys)
    unknown = [k for k in scores.keys if k not in dataset_set]
    if missing or unknown:
        parts = []
        if unknown:
            parts.append(f'{len(unknown)} key(s) not in the dataset (e.g. {unknown[:5]})')
        if missing:
            parts.append(f'{len(missing)} dataset key(s) without a score (e.g. {missing[:5]})')
        raise ScoreFileError(f'{scores.path}: ' + '; '.join(parts) + normalisation_note(unknown, missing))
    return np.asarray([table[k] for k in dataset_keys], dtype=np.float64)
