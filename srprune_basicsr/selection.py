"""Which samples to keep, given one score per sample (larger = harder).

Every ratio is a fraction of the whole dataset: ``keep_ratio`` is the share kept, ``drop_hardest``
the share of the hardest samples removed first. ``order='hardest'`` with ``keep_ratio=0.5,
drop_hardest=0.05`` keeps the samples ranked 5%..55% by difficulty: the refined loss-value pruning
of Moser et al. 2024. Bands (drop + keep) are the recommended use at small budgets: in our pilots the
hardest 10-25% alone lost clearly to a random subset, the band of ranks 25-50% beat it.

Orders: ``hardest``, ``easiest``, ``random`` (seeded) and ``stratified`` (coverage-centric, Zheng et
al. 2023: drop the hardest share, split the score range into equal-width strata and fill them from
the sparsest up with an equal share of the budget each, on the score or its logarithm).

Three modifiers aim at sets where a band costs on smooth images:

- ``per_source``: the rule (band or order) runs within each source image's sub-images
  (``<source>_sNNN`` keys), each source keeping its share of the budget (largest remainders), so
  every source image stays represented in proportion;
- ``texture_scores`` (+ ``texture_strata``): the set is split into equal-count strata of a second
  score (e.g. ``sobel``), and the rule runs on the main score within each stratum, so smooth and
  textured samples keep their proportions;
- ``random_share``: that share of the budget is drawn at random (seeded) from the samples the rule
  did not keep: a band plus a random share of the rest.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srprune_basicsr.formats.atomic import sha256_of
from srprune_basicsr.formats.keep import keep_record, write_keep_list
from srprune_basicsr.formats.keys import source_of
from srprune_basicsr.formats.scores import match_dataset, read_scores
from srprune_basicsr.options import check_keys, field_names

ORDERS = ('hardest', 'easiest', 'random', 'stratified')


@dataclass(frozen=True)
class SelectionRule:
    """A selection rule; see the module docstring for what each field means."""

    keep_ratio: float
    order: str = 'hardest'
    drop_hardest: float = 0.0
    seed: int = 0
    strata: int = 50
    log_strata: bool = False
    per_source: bool = False
    random_share: float = 0.0
    texture_scores: str | None = None
    texture_strata: int = 4

    def __post_init__(self) -> None:
        flags = ('log_strata', 'per_source')
        for name, kinds, what in (('keep_ratio', (int, float), 'a number'), ('drop_hardest', (int, float), 'a number'),
                                  ('seed', int, 'a whole number'), ('strata', int, 'a whole number'),
                                  ('log_strata', bool, 'true or false'), ('per_source', bool, 'true or false'),
                                  ('random_share', (int, float), 'a number'),
                                  ('texture_strata', int, 'a whole number'),
                                  ('texture_scores', (str, type(None)), 'a scores.csv path')):
            value = getattr(self, name)
            if not isinstance(value, kinds) or (isinstance(value, bool) and name not in flags):
                raise ValueError(f'{name} must be {what}, got {value!r}')
        if not 0 <= self.random_share < 1:
            raise ValueError(f'random_share must be in [0, 1), got {self.random_share}')
        if self.texture_strata < 1:
            raise ValueError(f'texture_strata must be at least 1, got {self.texture_strata}')
        if self.per_source and self.texture_scores:
            raise ValueError('per_source and texture_scores each split the set into groups; use one of them')
        if self.order not in ORDERS:
            raise ValueError(f'order must be one of {ORDERS}, got {self.order!r}')
        if not 0 < self.keep_ratio <= 1:
            raise ValueError(f'keep_ratio must be in (0, 1], got {self.keep_ratio}')
        if not 0 <= self.drop_hardest < 1:
            raise ValueError(f'drop_hardest must be in [0, 1), got {self.drop_hardest}')
        if self.keep_ratio + self.drop_hardest > 1 + 1e-9:
            raise ValueError(f'keep_ratio ({self.keep_ratio}) + drop_hardest ({self.drop_hardest}) exceed 1: '
                             'both are fractions of the whole dataset')
        if self.strata < 1:
            raise ValueError(f'strata must be at least 1, got {self.strata}')

    def describe(self) -> str:
        band = f', dropping the hardest {self.drop_hardest:.0%}' if self.drop_hardest else ''
        within = ', within each source image' if self.per_source else ''
        if self.texture_scores:
            within = f', within {self.texture_strata} strata of {Path(self.texture_scores).name}'
        mixed = f', {self.random_share:.0%} of it at random from the rest' if self.random_share else ''
        return f'keep {self.keep_ratio:.0%} ({self.order}){band}{within}{mixed}'


def difficulty_ranking(scores: np.ndarray) -> np.ndarray:
    """Indices from hardest to easiest; ties broken by position, so the ranking is deterministic."""
    return np.lexsort((np.arange(len(scores)), -scores))


def select_indices(scores: np.ndarray, rule: SelectionRule, keys: Sequence[str] | None = None) -> np.ndarray:
    """Indices of the kept samples, in the dataset's order (``keys`` for ``per_source`` and ``texture_scores``)."""
    n = len(scores)
    n_keep = int(round(rule.keep_ratio * n))
    n_drop = int(round(rule.drop_hardest * n))
    if n_keep < 1:
        raise ValueError(f'keep_ratio {rule.keep_ratio} of {n} samples keeps none')
    if rule.order == 'hardest' and rule.keep_ratio < 0.5 and rule.drop_hardest == 0 and not rule.random_share:
        warnings.warn(f'keeping only the hardest {rule.keep_ratio:.0%} lost clearly to a random subset of the same '
                      'size in our pilots; a band (e.g. --drop-hardest 0.25 --keep-ratio 0.25) is recommended',
                      stacklevel=2)
    rng = np.random.default_rng(rule.seed)
    n_random = int(round(rule.random_share * n_keep))
    groups = _groups(rule, keys, n)
    if groups is None:
        kept = _choose(scores, np.arange(n), n_keep - n_random, n_drop, rule, rng)
    else:
        sizes = [len(g) for g in groups]
        keeps, drops = _apportion(n_keep - n_random, sizes), _apportion(n_drop, sizes)
        kept = np.concatenate([_choose(scores, g, k, min(d, len(g) - k), rule, rng)
                               for g, k, d in zip(groups, keeps, drops, strict=True)])
    if n_random:
        rest = np.setdiff1d(np.arange(n), kept)
        kept = np.concatenate([kept, rng.choice(rest, size=n_random, replace=False)])
    return np.sort(kept)


def _choose(scores: np.ndarray, members: np.ndarray, n_keep: int, n_drop: int, rule: SelectionRule,
            rng: np.random.Generator) -> np.ndarray:
    """The rule's order on ``members``: drop their hardest ``n_drop``, keep ``n_keep`` of the rest."""
    if n_keep <= 0:
        return np.empty(0, dtype=np.int64)
    candidates = members[difficulty_ranking(scores[members])][n_drop:]
    if rule.order == 'hardest':
        return candidates[:n_keep]
    if rule.order == 'easiest':
        return candidates[::-1][:n_keep]
    if rule.order == 'random':
        return rng.choice(candidates, size=n_keep, replace=False)
    return _stratified(scores, candidates, n_keep, rule, rng)


def _apportion(total: int, sizes: Sequence[int]) -> list[int]:
    """``total`` split over groups in proportion to their sizes, by largest remainders (ties: group order)."""
    exact = np.asarray(sizes, dtype=np.float64) * total / max(sum(sizes), 1)
    shares = np.floor(exact).astype(int)
    for i in np.lexsort((np.arange(len(sizes)), -(exact - shares)))[:total - int(shares.sum())]:
        shares[i] += 1
    return np.minimum(shares, sizes).tolist()


def _groups(rule: SelectionRule, keys: Sequence[str] | None, n: int) -> list[np.ndarray] | None:
    """The groups a rule runs within: source images (``per_source``) or texture strata; None for the whole set."""
    if not (rule.per_source or rule.texture_scores):
        return None
    if keys is None or len(keys) != n:
        raise ValueError('per_source and texture_scores need the samples\' keys')
    if rule.per_source:
        plain = [k for k in keys if source_of(k) == k]
        if plain:
            raise ValueError(f'per_source: {len(plain)} key(s) carry no source image (no _sNNN sub-image suffix, '
                             f'as srprune prepare writes), e.g. {plain[:5]}')
        by_source: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            by_source.setdefault(source_of(key), []).append(index)
        return [np.asarray(v) for v in by_source.values()]
    try:
        texture = match_dataset(read_scores(rule.texture_scores), keys)
    except ValueError as err:
        raise ValueError(f'texture_scores: {err}') from None
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), texture))] = np.arange(n)
    stratum = rank * rule.texture_strata // n
    return [np.flatnonzero(stratum == s) for s in range(rule.texture_strata) if (stratum == s).any()]


def _stratified(scores: np.ndarray, candidates: np.ndarray, budget: int, rule: SelectionRule,
                rng: np.random.Generator) -> np.ndarray:
    """Coverage-centric sampling: equal budget per equal-width stratum, sparsest strata first."""
    values = scores[candidates]
    if rule.log_strata:
        if (values <= 0).any():
            raise ValueError('log_strata needs positive scores')
        values = np.log(values)
    lo, hi = float(values.min()), float(values.max())
    width = (hi - lo) / rule.strata or 1.0
    stratum = np.minimum(((values - lo) / width).astype(int), rule.strata - 1)
    groups = [candidates[stratum == s] for s in range(rule.strata)]
    groups = sorted((g for g in groups if len(g)), key=len)
    kept = []
    for i, group in enumerate(groups):
        share = budget // (len(groups) - i)
        take = min(len(group), share)
        kept.append(rng.choice(group, size=take, replace=False))
        budget -= take
    return np.concatenate(kept)


def select_keys(keys: Sequence[str], scores: np.ndarray, rule: SelectionRule) -> list[str]:
    """The kept keys, in the order of ``keys``."""
    return [keys[i] for i in select_indices(np.asarray(scores, dtype=np.float64), rule, keys)]


def write_selection(out: str | os.PathLike, kept: Sequence[str], total: int, rule: SelectionRule,
                    scores_path: str | os.PathLike | None, overwrite: bool = False) -> Path:
    """Write keep.txt (one key per line) and keep.json (rule, scores sha256, counts) atomically."""
    texture = rule.texture_scores
    record = keep_record(len(kept), total, rule=asdict(rule), description=rule.describe(),
                         scores_file=str(Path(scores_path).resolve()) if scores_path else None,
                         scores_sha256=sha256_of(scores_path) if scores_path else None,
                         **({'texture_scores_sha256': sha256_of(texture)} if texture else {}))
    inputs = [scores_path, Path(scores_path).with_suffix('.json')] if scores_path else []
    inputs += [texture, Path(texture).with_suffix('.json')] if texture else []
    return write_keep_list(out, kept, record, overwrite, inputs)


PRUNE_SOURCES = ('scores', 'score', 'keep')


@dataclass(frozen=True)
class PruneOptions:
    """A ``prune:`` block: where the subset comes from (exactly one source) and, for scores, the rule.

    ``scores``: a scores.csv; ``score``: score options (a file or inline) run on the dataset first;
    ``keep``: a keep.txt. The other keys are the fields of ``SelectionRule``.
    """

    source: str
    value: str | dict
    rule: SelectionRule | None

    @classmethod
    def from_block(cls, block: Any, where: str) -> PruneOptions:
        """Parse a ``prune:`` mapping; errors name ``where`` and the key."""
        if not isinstance(block, dict):
            raise ValueError(f'{where}: expected a mapping of options, got {block!r}')
        check_keys(block, PRUNE_SOURCES + tuple(field_names(SelectionRule)), where)
        given = [key for key in PRUNE_SOURCES if key in block]
        if len(given) != 1:
            raise ValueError(f'{where}: give exactly one of "scores" (a scores.csv, with a rule), "score" (a scorer '
                             'to run first, with a rule) or "keep" (a keep.txt)')
        if given[0] == 'keep':
            ignored = sorted(set(block) - {'keep'})
            if ignored:
                raise ValueError(f'{where}: {ignored} select from scores and mean nothing with "keep" (a fixed list); '
                                 'remove them')
            return cls('keep', block['keep'], None)
        fields = {key: value for key, value in block.items() if key not in PRUNE_SOURCES}
        if 'keep_ratio' not in fields:
            raise ValueError(f'{where}: keep_ratio is needed with "{given[0]}"')
        try:
            return cls(given[0], block[given[0]], SelectionRule(**fields))
        except ValueError as err:
            raise ValueError(f'{where}: {err}') from None
