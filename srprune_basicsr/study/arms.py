"""The arms of a study: which subset each training run sees, expanded from a study option file.

An arm is (method, keep ratio, band offset) trained once per seed: ``full``; ``random`` at each keep
ratio; each scored method at each keep ratio and band offset (``order: hardest`` after dropping the
hardest ``band`` share: band 0 = the hardest r, band 0.05 at r = 0.5 = the paper's refined 50%);
``distilled`` where a distilled set is given. Every ratio is a fraction of the whole set, as in
``srprune select``.
"""

from __future__ import annotations

from dataclasses import dataclass

from srprune_basicsr.scoring.select import SelectionRule


@dataclass(frozen=True)
class Arm:
    method: str            # full | random | distilled | a scored method (loss_value, sobel, ...)
    keep_ratio: float = 1.0
    band: float = 0.0      # drop_hardest before keeping

    @property
    def label(self) -> str:
        if self.method in ('full', 'distilled'):
            return self.method
        if self.method == 'random':
            return f'random@{self.keep_ratio:g}'
        return f'{self.method}@{self.keep_ratio:g}' + (f'+{self.band:g}' if self.band else '')

    @property
    def slug(self) -> str:
        return self.label.replace('@', '_r').replace('+', '_b').replace('.', 'p')

    def rule(self, seed: int) -> SelectionRule | None:
        """The selection rule of this arm (None: the whole set), the same code as ``srprune select``."""
        if self.method in ('full', 'distilled'):
            return None
        if self.method == 'random':
            return SelectionRule(keep_ratio=self.keep_ratio, order='random', seed=seed)
        return SelectionRule(keep_ratio=self.keep_ratio, order='hardest', drop_hardest=self.band)


def expand_arms(study: dict) -> list[Arm]:
    """All arms of a study option file, in the order they run."""
    ratios = [float(r) for r in study.get('keep_ratios', [0.1, 0.25, 0.5])]
    arms = [Arm('full')] + [Arm('random', r) for r in ratios]
    for method, spec in (study.get('methods') or {}).items():
        bands = [float(b) for b in (spec or {}).get('bands', [0.0])]
        arms += [Arm(method, r, b) for r in ratios for b in bands if r + b <= 1 + 1e-9]
    if study.get('distilled'):
        arms.append(Arm('distilled'))
    return arms
