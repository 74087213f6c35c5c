"""Fixes for basicsr 1.4.2 on current torch/torchvision and on CPU-only hosts.

basicsr 1.4.2 was released for torch 1.x. On torch 2.14 / torchvision 0.29 and on machines
without a GPU it breaks in five places our users hit, and its resume replays a finished epoch.
Each fix below is small, named, and can be switched off for debugging (and for the tests that
prove the fix is needed) with the environment variable ``SRPRUNE_COMPAT_DISABLE=name1,name2`` (or ``all``).

``apply()`` must run before ``basicsr`` is first imported, because the import itself fails
without the ``functional_tensor`` shim. ``srprune_basicsr/__init__.py`` calls it first thing.
"""

from __future__ import annotations

import math
import os
import sys
import types
from collections.abc import Callable
from typing import Any

import torch

FIXES = ('functional_tensor', 'cpu_resume', 'gloo_launcher', 'weights_only', 'epoch_count', 'resume_epoch',
         'spawn_workers')
_applied: set[str] = set()
_iters_per_epoch: dict[str, int] = {}  # the train loader's length, recorded for resume_epoch


def _disabled() -> set[str]:
    raw = os.environ.get('SRPRUNE_COMPAT_DISABLE', '')
    names = {n.strip() for n in raw.split(',') if n.strip()}
    return set(FIXES) if 'all' in names else names


def enabled(name: str) -> bool:
    """Whether the named fix is active (it is unless switched off in the environment)."""
    return name not in _disabled()


def install_functional_tensor_shim() -> None:
    """Provide ``torchvision.transforms.functional_tensor``, removed in torchvision 0.17.

    basicsr.data.degradations imports ``rgb_to_grayscale`` from it at import time, so without
    this module ``import basicsr`` fails. The private module still carries the function.
    """
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (old torchvision: nothing to do)
        return
    except ImportError:
        pass
    from torchvision.transforms import _functional_tensor

    shim = types.ModuleType(name)
    shim.__dict__.update({k: v for k, v in vars(_functional_tensor).items() if not k.startswith('__')})
    sys.modules[name] = shim


def checkpoint_map_location() -> Callable[[Any, Any], Any] | str:
    """Where to put tensors of a loaded training state: the current GPU if any, else the CPU."""
    if torch.cuda.is_available():
        device_id = torch.cuda.current_device()
        return lambda storage, loc: storage.cuda(device_id)
    return 'cpu'


def _numpy_data_globals() -> list:
    """numpy's pickle entry points for scalars, arrays and dtypes, under numpy 1 and numpy 2 names."""
    import numpy as np

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    entries: list = [np.ndarray, np.dtype]
    for name in ('scalar', '_reconstruct'):
        fn = getattr(multiarray, name)
        entries += [(fn, f'numpy.core.multiarray.{name}'), (fn, f'numpy._core.multiarray.{name}')]
    entries += sorted({type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDG'}, key=lambda t: t.__name__)
    return entries


def allow_numpy_in_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` read numpy scalars and arrays in checkpoints.

    Since torch 2.6 ``torch.load`` only unpickles allow-listed types, and basicsr 1.4.2 calls it
    without ``weights_only``, so the safe loader is what runs. BasicSR's metrics return numpy
    floats, and many BasicSR-based repos (and our own tracking state) keep such values in their
    checkpoints and training states, which then fail to load. numpy's scalar/array constructors
    only rebuild data, so allow-listing them keeps the safe loader instead of full pickle.
    """
    torch.serialization.add_safe_globals(_numpy_data_globals())


def load_training_state(path: str) -> dict:
    """Load a BasicSR training state safely (weights_only) onto the GPU if present, else CPU."""
    return torch.load(path, map_location=checkpoint_map_location(), weights_only=True)


def _patched_load_resume_state(opt: dict) -> dict | None:
    """basicsr.train.load_resume_state without the hard ``torch.cuda.current_device()`` call."""
    import os.path as osp

    from basicsr.utils import check_resume, scandir

    resume_state_path = None
    if opt['auto_resume']:
        state_path = osp.join('experiments', opt['name'], 'training_states')
        if osp.isdir(state_path):
            states = list(scandir(state_path, suffix='state', recursive=False, full_path=False))
            if states:
                latest = max(float(v.split('.state')[0]) for v in states)
                resume_state_path = osp.join(state_path, f'{latest:.0f}.state')
                opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']
    if resume_state_path is None:
        return None
    resume_state = load_training_state(resume_state_path)
    check_resume(opt, resume_state['iter'])
    return resume_state


def _patched_init_dist_pytorch(backend: str, **kwargs: Any) -> None:
    """basicsr's ``_init_dist_pytorch`` that falls back to gloo on hosts without CUDA.

    The original always calls ``torch.cuda.set_device(rank % num_gpus)`` (a ZeroDivisionError
    with no GPU) and uses NCCL, which has no CPU support. NCCL stays the default with GPUs.
    """
    import torch.distributed as dist

    rank = int(os.environ['RANK'])
    num_gpus = torch.cuda.device_count()
    if num_gpus > 0:
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', rank)) % num_gpus)
    elif backend == 'nccl':
        backend = 'gloo'
    dist.init_process_group(backend=backend, **kwargs)


def _patched_model_to_device(self: Any, net: torch.nn.Module) -> torch.nn.Module:
    """BaseModel.model_to_device that wraps CPU models in DDP without GPU device ids."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    net = net.to(self.device)
    if self.opt['dist']:
        find_unused = self.opt.get('find_unused_parameters', False)
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        return DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
    if self.opt['num_gpu'] > 1:
        return DataParallel(net)
    return net


def _checked_train_val_dataloader(original: Callable) -> Callable:
    """Wrap basicsr.train.create_train_val_dataloader to count epochs as the loader really runs.

    BasicSR counts iterations per epoch with ``ceil(len / batch)`` but its train loader drops the
    last incomplete batch. With a small (e.g. pruned) dataset the epoch count comes out too low and
    training ends before ``total_iter`` without a word; with fewer samples than one batch it trains
    zero iterations. Here the count comes from the loader itself, and an empty loader is an error.
    """

    def create_train_val_dataloader(opt: dict, logger: Any) -> tuple:
        train_loader, train_sampler, val_loaders, total_epochs, total_iters = original(opt, logger)
        if train_loader is None:
            return train_loader, train_sampler, val_loaders, total_epochs, total_iters
        per_epoch = len(train_loader)
        _iters_per_epoch['train'] = per_epoch
        if opt['datasets']['train'].get('seeded_shuffle') and train_sampler is not None:
            train_sampler.shuffle_seed = int(opt.get('manual_seed') or 0)
        if not enabled('epoch_count'):
            return train_loader, train_sampler, val_loaders, total_epochs, total_iters
        dataset_opt = opt['datasets']['train']
        if per_epoch == 0:
            raise ValueError(
                f"datasets:train ({dataset_opt.get('name')}): {len(train_loader.dataset)} samples "
                f"x enlarge ratio {dataset_opt.get('dataset_enlarge_ratio', 1)} make less than one batch of "
                f"batch_size_per_gpu={dataset_opt['batch_size_per_gpu']} x world size {opt['world_size']}; "
                'training would run 0 iterations')
        epochs = math.ceil(total_iters / per_epoch)
        if epochs != total_epochs:
            logger.info(f'srprune: {per_epoch} iterations per epoch (incomplete batches dropped), '
                        f'so {epochs} epochs for {total_iters} iterations (BasicSR counted {total_epochs}).')
        return train_loader, train_sampler, val_loaders, epochs, total_iters

    create_train_val_dataloader.__wrapped__ = original  # type: ignore[attr-defined]
    return create_train_val_dataloader


def _next_epoch_on_resume(original: Callable) -> Callable:
    """Wrap BaseModel.resume_training: a checkpoint taken at the end of an epoch resumes at the next one.

    BasicSR stores the epoch the checkpoint's iteration belongs to and restarts that epoch, so a
    run resumed from the end of epoch e replays e's data order (EnlargedSampler seeds it with e)
    where the uninterrupted run goes on with e + 1. train_pipeline reads ``resume_state['epoch']``
    after ``model.resume_training(resume_state)``, so advancing it there makes the resumed run
    see the same data order as the uninterrupted one. (A checkpoint inside an epoch still restarts
    that epoch, as in BasicSR.)
    """

    def resume_training(self: Any, resume_state: dict) -> None:
        original(self, resume_state)
        per_epoch = _iters_per_epoch.get('train')
        if per_epoch and resume_state['iter'] % per_epoch == 0:
            resume_state['epoch'] += 1

    resume_training.__wrapped__ = original  # type: ignore[attr-defined]
    return resume_training


def _seeded_sampler_iter(self: Any) -> Any:
    """EnlargedSampler.__iter__, shuffled with (manual_seed, epoch) when ``shuffle_seed`` is set.

    BasicSR seeds the shuffle with the epoch alone, so ``manual_seed`` changes initialisation and
    augmentation but never the data order, and seeds of a study differ less than they should.
    ``datasets:train:seeded_shuffle: true`` sets ``shuffle_seed``; without it the order is BasicSR's.
    """
    seed = getattr(self, 'shuffle_seed', None)
    generator = torch.Generator()
    generator.manual_seed(self.epoch if seed is None else seed * 1_000_003 + self.epoch)
    indices = torch.randperm(self.total_size, generator=generator).tolist()
    size = len(self.dataset)
    indices = [v % size for v in indices][self.rank:self.total_size:self.num_replicas]
    return iter(indices)


def _rebuild_dataset(cls: type, state: dict) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


def _reduce_dataset(self: Any, protocol: int) -> tuple:
    """Pickle a dataset through a function of this module, so unpickling imports the plugin first.

    ``--launcher pytorch`` makes BasicSR set the start method to spawn; each DataLoader worker then
    starts a fresh interpreter and unpickles the dataset, importing ``basicsr`` before anything
    else, and that import fails without the functional_tensor shim (the package __main__ that
    would install it is not re-imported by spawn). Pickle writes the rebuilding function before its
    arguments, so the worker imports ``srprune_basicsr`` (shim, registries) before ``basicsr``.
    The state is the object's ``__dict__``, exactly what default pickling stores.
    """
    return _rebuild_dataset, (type(self), self.__dict__)


def seedable_sampler() -> None:
    """Install the (manual_seed, epoch) shuffle, active only where an option file asks for it."""
    from basicsr.data.data_sampler import EnlargedSampler

    EnlargedSampler.__iter__ = _seeded_sampler_iter


def spawn_safe_datasets() -> None:
    """Give every registered dataset class (and so its subclasses) the shim-first pickling."""
    if not enabled('spawn_workers'):
        return
    from basicsr.utils.registry import DATASET_REGISTRY

    for cls in DATASET_REGISTRY._obj_map.values():
        if '__reduce_ex__' not in vars(cls) and '__reduce__' not in vars(cls) and '__getstate__' not in vars(cls):
            cls.__reduce_ex__ = _reduce_dataset


def apply() -> None:
    """Apply every enabled fix once; the first must precede ``import basicsr``."""
    if enabled('functional_tensor') and 'functional_tensor' not in _applied:
        install_functional_tensor_shim()
        _applied.add('functional_tensor')

    import basicsr.train
    import basicsr.utils.dist_util
    from basicsr.models.base_model import BaseModel

    if enabled('weights_only') and 'weights_only' not in _applied:
        allow_numpy_in_checkpoints()
        _applied.add('weights_only')
    if enabled('cpu_resume') and 'cpu_resume' not in _applied:
        basicsr.train.load_resume_state = _patched_load_resume_state
        _applied.add('cpu_resume')
    if enabled('gloo_launcher') and 'gloo_launcher' not in _applied:
        basicsr.utils.dist_util._init_dist_pytorch = _patched_init_dist_pytorch
        BaseModel.model_to_device = _patched_model_to_device
        _applied.add('gloo_launcher')
    if (enabled('epoch_count') or enabled('resume_epoch')) and 'train_loader' not in _applied:
        basicsr.train.create_train_val_dataloader = _checked_train_val_dataloader(
            basicsr.train.create_train_val_dataloader)
        _applied.add('train_loader')
    seedable_sampler()
    if enabled('resume_epoch') and 'resume_epoch' not in _applied:
        BaseModel.resume_training = _next_epoch_on_resume(BaseModel.resume_training)
        _applied.add('resume_epoch')
