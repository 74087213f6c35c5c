"""The arms of a study: which subset each training run sees, expanded from a study option file.

An arm is (method, keep ratio, band offset) trained once per seed: ``full``; ``random`` at each keep
ratio; each scored method at each keep ratio and band offset (``order: hardest`` after dropping the
hardest ``band`` share: band 0 = the hardest r, band 0.05 at r = 0.5 = the paper's refined 50%);
``distilled`` where a distilled set is given (``distilled-<name>`` for each of several named sets),
and, with ``random_like_distilled: true``, a random subset of each distilled set's size, so a
distilled set is compared with as many real samples. Every ratio is a fraction of the whole set,
as in ``srprune select``.

A method with an ``online:`` block (a ``prune_online:`` block) is one arm, labelled by the method's
name: it trains on the whole set with in-run pruning, at the study's budget of iterations (the
full run's schedule), and takes fewer steps.

``bands`` is a list (the same offsets at every keep ratio) or a mapping from keep ratio to its
offsets (``{0.1: [0.0, 0.3], 0.5: [0.0, 0.05]}``), since the band worth trying moves with the
ratio; a ratio missing from the mapping runs band 0 only. A method's own ``keep_ratios`` (a subset of
the study's) runs it at those ratios only, e.g. dynamic uncertainty at 0.5 and 0.75.

With several budgets (``budget: total_iter: [600, 1200]``, the compute axis) every arm runs at each
budget, unless ``budget: compute_arms`` names the arms (labels without the budget, ``full``,
``random@0.25``, ``loss_value@0.25+0.25``) that also run at the smaller budgets, as a list (at every
budget) or as a mapping to the budgets each runs at; the others then run at the largest budget only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from srprune_basicsr.options import check_keys
from srprune_basicsr.selection import SelectionRule


def slug_of(label: str) -> str:
    """The file-name form of an arm label (``loss_value@0.25+0.25`` -> ``loss_value_r0p25_b0p25``)."""
    return label.replace('@', '_r').replace('+', '_b').replace('.', 'p').replace('~', '_i')


@dataclass(frozen=True)
class Arm:
    method: str            # full | random | distilled | a scored method (loss_value, sobel, ...)
    keep_ratio: float = 1.0
    band: float = 0.0      # drop_hardest before keeping
    source: str = ''       # the name of a distilled set, when the study names several
    modifiers: tuple = ()  # the method's ``rule:`` (per_source, random_share, texture_scores/_strata), as pairs
    iters: int = 0         # this arm's total_iter when the study gives several budgets (0: the one budget)
    online: tuple = ()     # an online arm's ``prune_online:`` block, as pairs (trains on the whole set)

    @property
    def base_label(self) -> str:
        """The label without the budget: ``loss_value@0.25+0.25``."""
        if self.method == 'distilled' and self.source:
            return f'distilled-{self.source}'
        if self.method in ('full', 'distilled') or self.online:
            return self.method
        if self.method == 'random':
            return f'random@{self.keep_ratio:g}'
        return f'{self.method}@{self.keep_ratio:g}' + (f'+{self.band:g}' if self.band else '')

    @property
    def label(self) -> str:
        """``loss_value@0.25+0.25``, and ``~1200it`` after it when the study has several budgets."""
        return self.base_label + (f'~{self.iters}it' if self.iters else '')

    @property
    def slug(self) -> str:
        return slug_of(self.label)

    def rule(self, seed: int) -> SelectionRule | None:
        """The selection rule of this arm (None: the whole set), the same code as ``srprune select``."""
        if self.method in ('full', 'distilled') or self.online:
            return None
        if self.method == 'random':
            return SelectionRule(keep_ratio=self.keep_ratio, order='random', seed=seed)
        modifiers = dict(self.modifiers)
        if modifiers.get('random_share'):  # the random part of a mixed rule is drawn anew for every seed
            modifiers['seed'] = seed
        return SelectionRule(keep_ratio=self.keep_ratio, order='hardest', drop_hardest=self.band, **modifiers)


RULE_MODIFIERS = ('per_source', 'random_share', 'texture_scores', 'texture_strata')


def modifiers_of(method: str, spec: dict | None) -> tuple:
    """A method's ``rule:`` block as sorted pairs; only the selection modifiers may be set there."""
    block = (spec or {}).get('rule') or {}
    if not isinstance(block, dict):
        raise ValueError(f'methods:{method}:rule must be a mapping of {RULE_MODIFIERS}, got {block!r}')
    check_keys(block, RULE_MODIFIERS, f'methods:{method}', 'rule: ')
    return tuple(sorted(block.items()))


def method_ratios(method: str, spec: dict | None, ratios: list[float]) -> list[float]:
    """The keep ratios a method runs at: its own ``keep_ratios`` (each one of the study's), else all of them."""
    own = (spec or {}).get('keep_ratios')
    if own is None:
        return ratios
    if not isinstance(own, list) or not own:
        raise ValueError(f'methods:{method}:keep_ratios must be a non-empty list of the study\'s keep_ratios, '
                         f'got {own!r}')
    chosen = []
    for value in own:
        match = [r for r in ratios if isinstance(value, (int, float)) and abs(r - float(value)) < 1e-9]
        if not match:
            raise ValueError(f'methods:{method}:keep_ratios: {value!r} is not in the study\'s keep_ratios {ratios}')
        chosen.append(match[0])
    return sorted(set(chosen))


def online_block(method: str, spec: dict) -> tuple:
    """An online method's ``prune_online:`` block as sorted pairs, checked; it takes no ratios, bands or rule."""
    from srprune_basicsr.online.options import online_options

    extra = sorted(set(spec) - {'online'})
    if extra:
        raise ValueError(f'methods:{method}: an online method (online:) trains on the whole set and prunes during '
                         f'the run; {extra} do not apply to it')
    online_options(spec['online'], f'methods:{method}:online')
    return tuple(sorted(spec['online'].items()))


def bands_per_ratio(method: str, bands: list | dict | None, ratios: list[float]) -> dict[float, list[float]]:
    """The band offsets of one method at each keep ratio (see the module docstring)."""
    if bands is None:
        return {r: [0.0] for r in ratios}
    if not isinstance(bands, dict):
        return {r: [float(b) for b in bands] for r in ratios}
    per_ratio = {r: [0.0] for r in ratios}
    for key, offsets in bands.items():
        match = [r for r in ratios if abs(r - float(key)) < 1e-9]
        if not match:
            raise ValueError(f'methods:{method}:bands: keep ratio {key} is not in keep_ratios {ratios}')
        per_ratio[match[0]] = [float(b) for b in offsets]
    return per_ratio


def check_arms(study: dict, source: str) -> list[str]:
    """Validate seeds, ratios and bands before any arm trains; returns notes on list bands skipped at some ratios.

    A band that fits no keep ratio, or one given for a ratio it does not fit (``{0.5: [0.7]}``), is
    an error; a band of the list form that fits some ratios only is run at those, with a note.
    """
    try:
        distilled_sets(study)
    except ValueError as err:
        raise ValueError(f'{source}: {err}') from None
    seeds = study.get('seeds', [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f'{source}: seeds must be a non-empty list of integers, got {seeds!r}')
    ratios = study.get('keep_ratios', [0.1, 0.25, 0.5])
    if not isinstance(ratios, list) or not all(isinstance(r, (int, float)) and 0 < r <= 1 for r in ratios):
        raise ValueError(f'{source}: keep_ratios must be a list of shares in (0, 1], got {ratios!r}')
    notes = []
    methods = study.get('methods') or {}
    if not isinstance(methods, dict):
        raise ValueError(f'{source}: methods must be a mapping of method name -> options, got {methods!r}')
    for method, spec in methods.items():
        bands = (spec or {}).get('bands')
        if bands is not None and not isinstance(bands, (list, dict)):
            raise ValueError(f'{source}: methods:{method}:bands must be a list of shares or a mapping keep ratio -> '
                             f'list, got {bands!r}')
        try:
            per_ratio = bands_per_ratio(method, bands, method_ratios(method, spec, [float(r) for r in ratios]))
        except ValueError as err:
            raise ValueError(f'{source}: {err}') from None
        for band in {b for offsets in per_ratio.values() for b in offsets}:
            if not 0 <= band < 1:
                raise ValueError(f'{source}: methods:{method}:bands: {band} is not a share in [0, 1)')
            misfits = [r for r, offsets in per_ratio.items() if band in offsets and r + band > 1 + 1e-9]
            if misfits and (isinstance(bands, dict) or len(misfits) == len(per_ratio)):
                raise ValueError(f'{source}: methods:{method}:bands: band {band} at keep ratio {misfits[0]} asks for '
                                 f'{misfits[0] + band:g} of the set (keep ratio + band must be at most 1)')
            notes += [f'{method}: band {band:g} skipped at keep ratio {r:g} (keep ratio + band > 1)' for r in misfits]
    try:
        iteration_budgets(study)
    except ValueError as err:
        raise ValueError(f'{source}: {err}') from None
    for arm in expand_arms_checked(study, source):
        for seed in seeds:
            try:
                arm.rule(seed)  # every selection rule is built once here, so a bad value fails before training
            except ValueError as err:
                raise ValueError(f'{source}: methods:{arm.method}: {err}') from None
    return notes


def expand_arms_checked(study: dict, source: str) -> list[Arm]:
    try:
        return expand_arms(study)
    except ValueError as err:
        raise ValueError(f'{source}: {err}') from None


def distilled_sets(study: dict) -> dict[str, dict]:
    """The distilled sets of a study: ``{'': spec}`` for one unnamed set, else name -> spec (each checked)."""
    spec = study.get('distilled') or {}
    sets = {'': spec} if 'dataroot_gt' in spec else dict(spec)
    for name, one in sets.items():
        where = f'distilled:{name}' if name else 'distilled'
        if not isinstance(one, dict) or not {'dataroot_gt', 'dataroot_lq'} <= set(one):
            raise ValueError(f'{where}: give dataroot_gt and dataroot_lq of a distilled set (or name several sets: '
                             f'{{pixel: {{dataroot_gt, dataroot_lq}}, ...}}), got {one!r}')
        unknown = sorted(set(one) - {'dataroot_gt', 'dataroot_lq'})
        if unknown:
            raise ValueError(f'{where}: unknown key(s) {unknown}; known: dataroot_gt, dataroot_lq')
    return sets


def expand_arms(study: dict, distilled_ratios: dict[str, float] | None = None) -> list[Arm]:
    """All arms of a study option file, in the order they run.

    ``distilled_ratios`` (set name -> its size as a share of the whole set) places each distilled
    arm at its size and, with ``random_like_distilled``, adds the random arms of those sizes.
    """
    ratios = [float(r) for r in study.get('keep_ratios', [0.1, 0.25, 0.5])]
    distilled_ratios = distilled_ratios or {}
    arms = [Arm('full')] + [Arm('random', r) for r in ratios]
    if study.get('random_like_distilled'):
        arms += [Arm('random', r) for r in sorted(set(distilled_ratios.values())) if r not in ratios]
    for method, spec in (study.get('methods') or {}).items():
        if 'online' in (spec or {}):
            arms.append(Arm(method, 1.0, online=online_block(method, spec)))
            continue
        own = method_ratios(method, spec, ratios)
        per_ratio = bands_per_ratio(method, (spec or {}).get('bands'), own)
        modifiers = modifiers_of(method, spec)
        arms += [Arm(method, r, b, modifiers=modifiers) for r in own for b in per_ratio[r] if r + b <= 1 + 1e-9]
    for name in distilled_sets(study):
        arms.append(Arm('distilled', distilled_ratios.get(name, 1.0), source=name))
    budgets = iteration_budgets(study)
    if len(budgets) > 1:
        axis = compute_arms(study, arms, budgets)
        arms = [replace(arm, iters=iters) for iters in budgets for arm in arms
                if iters == budgets[-1] or axis is None or iters in axis.get(arm.base_label, ())]
    return arms


def compute_arms(study: dict, arms: list[Arm], budgets: list[int]) -> dict[str, set[int]] | None:
    """``budget: compute_arms``: arm label -> the smaller budgets it also runs at (None: every arm at every one).

    A list of labels runs those arms at every budget; a mapping ``{label: [budgets]}`` runs each at
    the budgets it lists (each one of ``total_iter``), e.g. full data at every budget for the
    convergence curve and the chosen rules at a few. Every arm runs at the largest budget.
    """
    value = (study.get('budget') or {}).get('compute_arms')
    if value is None:
        return None
    known = [arm.base_label for arm in arms]
    where = 'budget:compute_arms'
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        value = {label: list(budgets) for label in value}
    elif not isinstance(value, dict) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f'{where} must be a non-empty list of arm labels such as {known[:3]}, or a mapping '
                         f'from such labels to budgets of total_iter, got {value!r}')
    unknown = [v for v in value if v not in known]
    if unknown:
        raise ValueError(f'{where}: {unknown} name no arm of this study; its arms: {known}')
    axis = {}
    for label, its in value.items():
        if not isinstance(its, list) or not its or not all(isinstance(i, int) and not isinstance(i, bool)
                                                            for i in its):
            raise ValueError(f'{where}:{label} must be a non-empty list of budgets of total_iter {budgets}, '
                             f'got {its!r}')
        stray = sorted(set(its) - set(budgets))
        if stray:
            raise ValueError(f'{where}:{label}: {stray} not in budget:total_iter {budgets}')
        axis[label] = set(its)
    return axis


def iteration_budgets(study: dict) -> list[int]:
    """The study's ``budget: total_iter``: one count, or a list of distinct positive counts (the compute axis)."""
    value = (study.get('budget') or {}).get('total_iter')
    if value is None or not isinstance(value, list):
        return [] if value is None else [value]
    if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ValueError(f'budget:total_iter must be a positive whole number or a list of them, got {value!r}')
    repeated = sorted({v for v in value if value.count(v) > 1})
    if repeated:
        raise ValueError(f'budget:total_iter lists {repeated} more than once')
    return sorted(value)
