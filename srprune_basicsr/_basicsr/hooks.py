"""The one place that wraps BasicSR's builders; features register callbacks here instead of patching.

Wrapped once, on install: ``build_dataset`` (every dataset BasicSR builds), ``create_train_val_dataloader``
(the train loader of ``train_pipeline``), ``build_model`` and ``BaseModel.resume_training``.
Callbacks run in ascending ``order`` (then registration order), so the stacking is explicit:

- ``options(opt)``: after BasicSR's ``parse_options``, before it creates any folder (checks)
- ``dataset(dataset, dataset_opt) -> dataset``
- ``train_loaders(loaders: TrainLoaders)``: may amend ``loaders.total_epochs``
- ``before_model(opt)``: before BasicSR constructs the model (fixes of a model class)
- ``model(model, opt, train_loader) -> model``
- ``resume(model, resume_state, train_loader)``: after BasicSR restored the state

``train_loader`` is the loader the last ``create_train_val_dataloader`` call built (None outside
``train_pipeline``); it is handed to the callbacks, so no feature keeps a global of its own.

``python -m basicsr.train`` and a clone's ``python basicsr/train.py`` run BasicSR's train.py as
``__main__``, a second copy whose ``create_train_val_dataloader`` the wrap above never sees. The
wrapped ``parse_options``, which ``train_pipeline`` calls first, wraps that copy too (``adopt_main``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from srprune_basicsr.options import import_packages

POINTS = ('options', 'dataset', 'train_loaders', 'before_model', 'model', 'resume')
_callbacks: dict[str, list[tuple[int, int, Callable]]] = {point: [] for point in POINTS}
_state: dict[str, Any] = {'train_loader': None, 'installed': False}
_main_replacements: dict[str, tuple[Callable[[Callable], Callable], bytes]] = {}


@dataclass
class TrainLoaders:
    """What ``create_train_val_dataloader`` returned, as train-loader callbacks see and amend it."""

    opt: dict
    logger: Any
    train_loader: Any
    train_sampler: Any
    val_loaders: list
    total_epochs: int
    total_iters: int

    def as_tuple(self) -> tuple:
        return self.train_loader, self.train_sampler, self.val_loaders, self.total_epochs, self.total_iters


def register(point: str, callback: Callable, order: int = 50) -> None:
    """Add ``callback`` at ``point`` (see the module docstring); registering the same callback twice is a no-op."""
    if point not in POINTS:
        raise ValueError(f'unknown hook point {point!r}; known: {POINTS}')
    entries = _callbacks[point]
    if all(entry[2] is not callback for entry in entries):
        entries.append((order, len(entries), callback))
        entries.sort(key=lambda entry: entry[:2])


def callbacks(point: str) -> list[Callable]:
    return [entry[2] for entry in _callbacks[point]]


def _build_dataset(original: Callable) -> Callable:
    def build_dataset(dataset_opt: dict) -> Any:
        dataset = original(dataset_opt)
        for callback in callbacks('dataset'):
            dataset = callback(dataset, dataset_opt)
        return dataset

    build_dataset.__wrapped__ = original  # type: ignore[attr-defined]
    return build_dataset


def _create_train_val_dataloader(original: Callable) -> Callable:
    def create_train_val_dataloader(opt: dict, logger: Any) -> tuple:
        loaders = TrainLoaders(opt, logger, *original(opt, logger))
        _state['train_loader'] = loaders.train_loader
        if loaders.train_loader is not None:
            for callback in callbacks('train_loaders'):
                callback(loaders)
        return loaders.as_tuple()

    create_train_val_dataloader.__wrapped__ = original  # type: ignore[attr-defined]
    return create_train_val_dataloader


def _build_model(original: Callable) -> Callable:
    def build_model(opt: dict) -> Any:
        for callback in callbacks('before_model'):
            callback(opt)
        model = original(opt)
        for callback in callbacks('model'):
            model = callback(model, opt, _state['train_loader'])
        return model

    build_model.__wrapped__ = original  # type: ignore[attr-defined]
    return build_model


def _resume_training(original: Callable) -> Callable:
    def resume_training(self: Any, resume_state: dict) -> None:
        original(self, resume_state)
        for callback in callbacks('resume'):
            callback(self, resume_state, _state['train_loader'])

    resume_training.__wrapped__ = original  # type: ignore[attr-defined]
    return resume_training


def _parse_options(original: Callable) -> Callable:
    def parse_options(*args: Any, **kwargs: Any) -> Any:
        adopt_main()
        opt, parsed = original(*args, **kwargs)
        _state['option_file'] = getattr(parsed, 'opt', None)
        import_packages(opt, _state['option_file'] or 'option file')
        for callback in callbacks('options'):
            callback(opt)
        return opt, parsed

    parse_options.__wrapped__ = original  # type: ignore[attr-defined]
    return parse_options


def option_file() -> str | None:
    """The option file BasicSR's ``parse_options`` read last in this process (for error messages)."""
    return _state.get('option_file')


def replace_in_main(name: str, make: Callable[[Callable], Callable], reference: Callable) -> None:
    """Have ``adopt_main`` replace ``__main__``'s ``name`` by ``make(original)`` when it is BasicSR's own code.

    ``reference`` is basicsr.train's function before any patch: a ``__main__`` function is replaced
    only when it has that bytecode or ``__main__`` is a file ``basicsr/train.py`` (a clone's, maybe of
    another BasicSR version), never a function of a user's own script.
    """
    _main_replacements[name] = (make, reference.__code__.co_code)


def adopt_main() -> list[str]:
    """Replace train.py's own functions in ``__main__`` when ``__main__`` is a copy of BasicSR's train.py.

    Only functions defined in ``__main__`` itself with BasicSR's bytecode are replaced, once; returns their names.
    """
    import sys

    main = sys.modules.get('__main__')
    clone = str(getattr(main, '__file__', '')).replace('\\', '/').endswith('basicsr/train.py')
    replaced = []
    for name, (make, code) in _main_replacements.items():
        function = getattr(main, name, None)
        same = clone or getattr(getattr(function, '__code__', None), 'co_code', None) == code
        if callable(function) and getattr(function, '__module__', '') == '__main__' and same \
                and not getattr(function, '_srprune_adopted', False):
            replacement = make(function)
            replacement._srprune_adopted = True  # type: ignore[attr-defined]
            setattr(main, name, replacement)
            replaced.append(name)
    return replaced


CORE_NEEDS = ('basicsr.data:build_dataset', 'basicsr.models:build_model', 'basicsr.train:create_train_val_dataloader',
              'basicsr.utils.options:parse_options', 'basicsr.models.base_model:BaseModel.resume_training')


def check_core() -> None:
    """The builders the hooks wrap must exist: without them no ``prune:`` block could take effect."""
    from srprune_basicsr._basicsr.fixes.base import basicsr_identity, missing_piece

    missing = [piece for piece in map(missing_piece, CORE_NEEDS) if piece]
    if missing:
        raise ImportError(f'srprune_basicsr cannot hook {basicsr_identity()}: it lacks {", ".join(missing)}, '
                          'which the plugin wraps to apply prune:, prune_tracking: and prune_online:')


def _test_module() -> Any:
    """``basicsr.test`` where this basicsr has one (a repo's own copy may leave it out)."""
    import importlib

    try:
        return importlib.import_module('basicsr.test')
    except ModuleNotFoundError as err:
        if err.name != 'basicsr.test':
            raise
        return None


def install() -> None:
    """Wrap the builders where BasicSR's pipelines look them up (once per process)."""
    if _state['installed']:
        return
    check_core()
    import basicsr
    import basicsr.data
    import basicsr.models
    import basicsr.train
    import basicsr.utils.options
    from basicsr.models.base_model import BaseModel

    test = _test_module()
    wrapped_dataset = _build_dataset(basicsr.data.build_dataset)
    wrapped_model = _build_model(basicsr.models.build_model)
    # basicsr/__init__ star-imports data, models, test and train: its own names are wrapped too
    pipelines = [m for m in (basicsr.train, test) if m is not None]
    for module in (basicsr, basicsr.data, *pipelines):
        module.build_dataset = wrapped_dataset
    for module in (basicsr, basicsr.models, *pipelines):
        module.build_model = wrapped_model
    original_loaders = basicsr.train.create_train_val_dataloader
    basicsr.train.create_train_val_dataloader = _create_train_val_dataloader(original_loaders)
    if getattr(basicsr, 'create_train_val_dataloader', None) is original_loaders:
        basicsr.create_train_val_dataloader = basicsr.train.create_train_val_dataloader
    BaseModel.resume_training = _resume_training(BaseModel.resume_training)
    wrapped_parse = _parse_options(basicsr.utils.options.parse_options)
    for module in (basicsr, basicsr.utils.options, *pipelines):
        if hasattr(module, 'parse_options'):
            module.parse_options = wrapped_parse
    replace_in_main('create_train_val_dataloader', _create_train_val_dataloader, original_loaders)
    _state['installed'] = True
