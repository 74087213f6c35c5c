"""The ``prune_online:`` block of a BasicSR option file, and the combinations it refuses."""

from __future__ import annotations

from dataclasses import dataclass

from srprune_basicsr.options import option_block

CRITERIA = ('loss', 'uncertainty')
BLOCK = 'prune_online'
READ_ONLY_BY = {'ratio': 'loss', 'rescale': 'loss', 'keep': 'uncertainty', 'window': 'uncertainty'}


@dataclass(frozen=True)
class OnlineOptions:
    """``criterion: loss`` prunes ``ratio`` of the below-mean samples each epoch (InfoBatch's defaults);
    ``criterion: uncertainty`` keeps the ``keep`` most uncertain after ``window`` epochs of records.

    ``rescale: false`` (loss only) leaves the kept below-mean samples' weight at 1, so the epoch leans
    towards the harder samples instead of keeping the whole set's expected gradient.
    Both use all data for the last ``1 - anneal`` of the epochs. ``seed`` (default: the run's
    ``manual_seed``) draws the random part of each epoch's subset, with the epoch.
    """

    criterion: str = 'loss'
    ratio: float = 0.5
    anneal: float = 0.875
    keep: float = 0.5
    window: int = 5
    rescale: bool = True
    seed: int | None = None
    log_every_epoch: bool = True

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise ValueError(f'{BLOCK}:criterion must be one of {CRITERIA}, got {self.criterion!r}')
        _check_share('ratio', self.ratio, 0.0, 1.0, closed_low=True, closed_high=False)
        _check_share('anneal', self.anneal, 0.0, 1.0, closed_low=False, closed_high=True)
        _check_share('keep', self.keep, 0.0, 1.0, closed_low=False, closed_high=True)
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 2:
            raise ValueError(f'{BLOCK}:window must be a whole number of epochs >= 2 (a std needs two '
                             f'measurements), got {self.window!r}')
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f'{BLOCK}:seed must be a whole number, got {self.seed!r}')
        if not isinstance(self.rescale, bool):
            raise ValueError(f'{BLOCK}:rescale must be true or false, got {self.rescale!r}')
        if not isinstance(self.log_every_epoch, bool):
            raise ValueError(f'{BLOCK}:log_every_epoch must be true or false, got {self.log_every_epoch!r}')


def _check_share(name: str, value: object, low: float, high: float, closed_low: bool, closed_high: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value >= low if closed_low else value > low) and (value <= high if closed_high else value < high)
    if not ok:
        interval = f"{'[' if closed_low else '('}{low:g}, {high:g}{']' if closed_high else ')'}"
        raise ValueError(f'{BLOCK}:{name} must be a number in {interval}, got {value!r}')


def check_criterion_keys(block: dict, criterion: str) -> None:
    """Refuse keys the chosen criterion never reads: ``keep:`` under ``criterion: loss`` would be silently
    ignored, and the run would prune by ``ratio`` (its default 0.5) instead of what was written."""
    unread = [key for key, reader in READ_ONLY_BY.items() if key in block and reader != criterion]
    if unread:
        other = READ_ONLY_BY[unread[0]]
        raise ValueError(f'{BLOCK}: {unread}: criterion {criterion} does not read them (only criterion {other} '
                         f'does); remove them, or set criterion: {other}')


def online_options(block: object, source: str) -> OnlineOptions:
    """The validated block; errors name the option file and the key."""
    try:
        options = option_block(OnlineOptions, block, BLOCK)
        check_criterion_keys(block, options.criterion)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{source}: {err}') from None
    return options


def compared(options: OnlineOptions, seed: int) -> dict:
    """What decides a run's subsets and weights: every option but the log switch, the seed as drawn with."""
    values = {k: v for k, v in options.__dict__.items() if k != 'log_every_epoch'}
    return dict(values, seed=seed)


def changes(saved: dict, current: dict) -> list[str]:
    """``key old -> new`` for each option that differs (keys only one side knows included)."""
    keys = sorted(set(saved) | set(current))
    return [f'{key} {saved.get(key)} -> {current.get(key)}' for key in keys if saved.get(key) != current.get(key)]


def check_combination(opt: dict, source: str) -> None:
    """``prune_online:`` with ``prune_tracking:`` is refused; with a static ``prune:`` it prunes the kept set.

    The tracker counts snapshots in iterations and epochs of the full training set; online pruning
    changes how many iterations an epoch has and which samples it sees, so its windows would mix
    epochs of different subsets. (A static ``prune:`` first makes the dataset its kept subset; online
    pruning then draws each epoch's samples from that subset, which is well defined.)
    """
    if opt.get('prune_tracking'):
        raise ValueError(f'{source}: prune_online: and prune_tracking: in one run are refused: the tracker '
                         'counts its snapshots in full epochs, which online pruning shortens. For uncertainty-'
                         'based pruning in one run use prune_online: {criterion: uncertainty}; to record a '
                         'history for srprune score, train without prune_online:')


def check_online_block(opt: dict) -> None:
    """Options callback: a bad ``prune_online:`` block is refused before BasicSR creates any folder."""
    if not opt.get(BLOCK):
        return
    from srprune_basicsr._basicsr import hooks

    source = hooks.option_file() or 'option file'
    online_options(opt[BLOCK], source)
    check_combination(opt, source)
