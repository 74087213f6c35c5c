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

from srprune_basicsr.formats.atomic import describes, write_with_provenance
from srprune_basicsr.formats.keys import normalisation_note
from srprune_basicsr.formats.text import utf8_text
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
    data = path.read_bytes()
    text = utf8_text(path, data, ScoreFileError, 'score file (expected "key,score" rows)')
    _check_line_end(path, text)
    keys, values = [], []
    rows = csv.reader(io.StringIO(text, newline=''))
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
    meta = read_meta(path)
    _check_count(path, len(keys), meta)
    _check_described(path, meta, data)
    return Scores(keys, array, meta, path)


def read_meta(path: Path) -> dict:
    """scores.json beside ``path`` ({} when there is none); an unreadable one is an error naming it."""
    meta = meta_path(path)
    if not meta.is_file():
        return {}
    try:
        record = json.loads(meta.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ScoreFileError(f'{meta}: not a valid JSON provenance record of {path.name} ({err})') from None
    if not isinstance(record, dict):
        raise ScoreFileError(f'{meta}: expected a JSON object (the provenance of {path.name}), got '
                             f'{type(record).__name__}')
    return record


def _check_line_end(path: Path, text: str) -> None:
    """A score file whose last line has no line end is refused: it may be cut short.

    ``format_scores`` ends every row with a newline (and so do editors and ``print``), so a last line
    without one is a file whose writing stopped, maybe in the middle of a number (``0.`` of
    ``0.1234567``) that still parses and would silently change the selection.
    """
    if text and not text.endswith(('\n', '\r')):
        lines = text.splitlines()
        raise ScoreFileError(f'{path}:{len(lines)}: the last row has no line end ({lines[-1][:60]!r}), so it may be '
                             'cut short; if the file is complete, end it with a newline')


def _check_count(path: Path, rows: int, meta: dict) -> None:
    """A score file srprune wrote (it has ``scores.json``) with fewer or more rows than it recorded is refused."""
    expected = meta.get('count')
    if isinstance(expected, int) and expected != rows:
        raise ScoreFileError(f'{path}: {rows} row(s), but {meta_path(path)} records {expected} (count): the file is '
                             'cut or was edited; score again, or remove the json if the edit was on purpose')


def _check_described(path: Path, meta: dict, content: bytes) -> None:
    """A score file that is not the one its scores.json describes (by SHA-256) is refused.

    The file and its record are renamed into place one after the other, so a write stopped between
    the two leaves a new file beside the old record; an edited file is caught the same way. Records
    written before the digest was kept have none and are not checked.
    """
    if meta and not describes(meta, path, content):
        raise ScoreFileError(f'{path}: not the file {meta_path(path)} describes (its SHA-256 differs): it was edited, '
                             'or a write stopped between renaming it and its record; score again, or remove the '
                             'json if the edit was on purpose')


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
