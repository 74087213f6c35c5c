"""The one place that wraps BasicSR's builders; features register callbacks here instead of patching.

Wrapped once, on install: ``build_dataset`` (every dataset BasicSR builds), ``create_train_val_dataloader``
(the train loader of ``train_pipeline``), ``build_model`` and ``BaseModel.resume_training``.
Callbacks run in ascending ``order`` (then registration order), so the stacking is explicit:

- ``dataset(dataset, dataset_opt) -> dataset``
- ``train_loaders(loaders: TrainLoaders)``: may amend ``loaders.total_epochs``
- ``model(model, opt, train_loader) -> model``
- ``resume(model, resume_state, train_loader)``: after BasicSR restored the state

``train_loader`` is the loader the last ``create_train_val_dataloader`` call built (None outside
``train_pipeline``); it is handed to the callbacks, so no feature keeps a global of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

POINTS = ('dataset', 'train_loaders', 'model', 'resume')
_callbacks: dict[str, list[tuple[int, int, Callable]]] = {point: [] for point in POINTS}
_state: dict[str, Any] = {'train_loader': None, 'installed': False}


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


def install() -> None:
    """Wrap the builders where BasicSR's pipelines look them up (once per process)."""
    if _state['installed']:
        return
    import basicsr.data
    import basicsr.models
    import basicsr.test
    import basicsr.train
    from basicsr.models.base_model import BaseModel

    wrapped_dataset = _build_dataset(basicsr.data.build_dataset)
    wrapped_model = _build_model(basicsr.models.build_model)
    for module in (basicsr.data, basicsr.train, basicsr.test):
        module.build_dataset = wrapped_dataset
    for module in (basicsr.models, basicsr.train, basicsr.test):
        module.build_model = wrapped_model
    basicsr.train.create_train_val_dataloader = _create_train_val_dataloader(basicsr.train.create_train_val_dataloader)
    BaseModel.resume_training = _resume_training(BaseModel.resume_training)
    _state['installed'] = True
