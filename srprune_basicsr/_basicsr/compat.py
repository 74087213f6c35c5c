"""Version fixes: basicsr 1.4.2 on current torch/torchvision and on CPU-only hosts.

basicsr 1.4.2 was released for torch 1.x. On torch 2.14 / torchvision 0.29 and on machines
without a GPU it breaks in seven places: ``functional_tensor``, ``cpu_resume``, ``gloo_launcher``,
``weights_only``, ``spawn_workers``, ``pool_models_cpu`` (Real-ESRGAN models call ``.cuda()``) and
``slurm_launcher``; and its LMDB reader takes only ASCII keys (``utf8_keys``).
These fixes change no training result; the fixes that do (epoch counting, resume epoch, seeded
shuffle) are in ``semantics``. Each can be switched off (``switches``). ``install_shim()`` must run
before ``basicsr`` is first imported, because the import itself fails without the shim.
"""

from __future__ import annotations

import functools
import os
import pickle
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.switches import enabled


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
    resume_state = readable_training_state(resume_state_path)
    check_resume(opt, resume_state['iter'])
    path = opt['path'].get('pretrain_network_g')  # check_resume points it at the checkpoint of that iteration
    if path and not os.path.isfile(path):
        raise ValueError(f'{resume_state_path} resumes iteration {resume_state["iter"]}, but its network '
                         f'checkpoint {path} is missing; move this training state away to resume from the one '
                         'before it')
    return resume_state


def readable_training_state(path: str) -> dict:
    """Load a training state; a missing or truncated one is an error naming it and the state before it."""
    import os.path as osp

    try:
        return load_training_state(path)
    except (FileNotFoundError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        unreadable = isinstance(err, (FileNotFoundError, EOFError)) or any(
            sign in str(err) for sign in ('PytorchStreamReader', 'zip archive', 'invalid load key', 'truncated'))
        if not unreadable:
            raise  # e.g. a weights_only refusal or out of memory: the file is fine, torch's message says what is not
        folder, name = osp.split(path)
        states = sorted((int(f.split('.')[0]) for f in os.listdir(folder) if f.endswith('.state') and
                         f.split('.')[0].isdigit()), reverse=True) if osp.isdir(folder) else []
        earlier = [s for s in states if s < int(name.split('.')[0])] if name.split('.')[0].isdigit() else []
        hint = (f'the earlier state {osp.join(folder, f"{earlier[0]}.state")} would resume: move {name} (and the '
                f'models/*_{name.split(".")[0]}.pth beside it) away' if earlier else 'no earlier state to resume from')
        raise ValueError(f'{path}: cannot be read as a training state, it is missing or truncated '
                         f'({type(err).__name__}); {hint}') from None


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


def _slurm_int(name: str, env: dict) -> int:
    raw = env.get(name)
    if raw is None:
        raise ValueError(f'--launcher slurm: {name} is not set; start the job with srun (srun python train.py '
                         '-opt X.yml --launcher slurm), which sets SLURM_PROCID, SLURM_NTASKS and SLURM_NODELIST')
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f'--launcher slurm: {name}={raw!r} is not an integer') from None
    if value < 0:
        raise ValueError(f'--launcher slurm: {name}={raw!r} is negative')
    return value


def slurm_task(env: dict | None = None) -> tuple[int, int, int, str]:
    """(rank, world size, local rank, node list) of this slurm task, checked: errors name the variable."""
    env = os.environ if env is None else env
    rank, world = _slurm_int('SLURM_PROCID', env), _slurm_int('SLURM_NTASKS', env)
    if world < 1 or rank >= world:
        raise ValueError(f'--launcher slurm: SLURM_PROCID={rank} does not fit SLURM_NTASKS={world}')
    local = _slurm_int('SLURM_LOCALID', env) if 'SLURM_LOCALID' in env else rank
    nodes = env.get('SLURM_NODELIST') or env.get('SLURM_JOB_NODELIST')
    if not nodes:
        raise ValueError('--launcher slurm: SLURM_NODELIST is not set (srun sets it)')
    return rank, world, local, nodes


def slurm_master(nodes: str) -> str:
    """The first host of a slurm node list (``node[01-04]``), expanded by ``scontrol show hostnames``."""
    import shutil
    import subprocess

    scontrol = shutil.which('scontrol')
    if scontrol is None:
        raise ValueError('--launcher slurm: scontrol is not on PATH; it names the master host of SLURM_NODELIST')
    proc = subprocess.run([scontrol, 'show', 'hostnames', nodes], capture_output=True, text=True)
    hosts = proc.stdout.split()
    if proc.returncode != 0 or not hosts:
        raise ValueError(f'--launcher slurm: scontrol show hostnames {nodes!r} failed: '
                         f'{(proc.stderr or proc.stdout).strip() or "no host"}')
    return hosts[0]


def _patched_init_dist_slurm(backend: str = 'nccl', port: int | None = None) -> None:
    """basicsr's ``_init_dist_slurm`` that runs without GPUs (gloo) and checks the slurm environment.

    The original divides by the GPU count (ZeroDivisionError on a CPU host), passes NCCL there,
    reads the slurm variables unchecked (KeyError) and pipes a shell command whose failure becomes
    the master address. The local rank is SLURM_LOCALID (the task's index on its node).
    """
    import torch.distributed as dist

    rank, world, local, nodes = slurm_task()
    num_gpus = torch.cuda.device_count()
    if num_gpus > 0:
        torch.cuda.set_device(local % num_gpus)
    elif backend == 'nccl':
        backend = 'gloo'
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ.update(MASTER_ADDR=slurm_master(nodes), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(local))
    dist.init_process_group(backend=backend)


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


def spawn_safe(dataset: Any, dataset_opt: dict) -> Any:
    """Dataset callback: give the built dataset's class the shim-first pickling (third-party classes too)."""
    cls = type(dataset)
    if '__reduce_ex__' not in vars(cls) and '__reduce__' not in vars(cls) and '__getstate__' not in vars(cls):
        cls.__reduce_ex__ = _reduce_dataset
    return dataset


def _lmdb_get_utf8(self: Any, filepath: Any, client_key: str) -> bytes | None:
    """BasicSR's LmdbBackend.get with the key encoded as UTF-8 (BasicSR encodes it as ASCII).

    UTF-8 is ASCII for ASCII keys, so nothing changes for them; a sub-image cut from ``café.png``
    (key ``café_s001``) is then found instead of raising UnicodeEncodeError in a loader worker.
    """
    if client_key not in self._client:
        raise KeyError(f'client_key {client_key} is not in lmdb clients')
    with self._client[client_key].begin(write=False) as txn:
        return txn.get(str(filepath).encode('utf-8'))


@contextmanager
def cuda_means(device: torch.device) -> Iterator[None]:
    """Within the block, ``.cuda()`` on modules and tensors moves them to ``device`` (nothing changes for a GPU)."""
    if device.type == 'cuda':
        yield
        return
    module_cuda, tensor_cuda = torch.nn.Module.cuda, torch.Tensor.cuda
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self.to(device)
    torch.Tensor.cuda = lambda self, *args, **kwargs: self.to(device)
    try:
        yield
    finally:
        torch.nn.Module.cuda, torch.Tensor.cuda = module_cuda, tensor_cuda


def _options_device(opt: dict) -> torch.device:
    """The device BasicSR's BaseModel will pick for these options (the CPU with ``num_gpu: 0`` or no CUDA)."""
    return torch.device('cuda' if opt.get('num_gpu', 0) != 0 and torch.cuda.is_available() else 'cpu')


def _init_on_model_device(init: Callable) -> Callable:
    @functools.wraps(init)
    def __init__(self: Any, opt: dict, *args: Any, **kwargs: Any) -> None:
        with cuda_means(_options_device(opt)):
            init(self, opt, *args, **kwargs)

    return __init__


def _pool_on_model_device(pool: Callable) -> Callable:
    @functools.wraps(pool)
    def _dequeue_and_enqueue(self: Any) -> None:
        with cuda_means(self.device):
            pool(self)

    return _dequeue_and_enqueue


def _filter2d_any_layout(filter2d: Callable) -> Callable:
    @functools.wraps(filter2d)
    def filter2D(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:  # noqa: N802  (basicsr's name)
        return filter2d(img.contiguous(), kernel)

    return filter2D


def pool_models_on_cpu(opt: dict) -> None:
    """Before-model callback: Real-ESRGAN-style models (a training-pair pool) run where BasicSR put the model.

    basicsr's RealESRNetModel/RealESRGANModel, the ``realesrgan`` package's copies and models
    written from them call ``.cuda()`` on their JPEG and sharpening operators and on the pool
    tensors, so on a host without CUDA their constructor fails. Within those two methods ``.cuda()``
    now means the model's device; on a GPU it is what it always was. On the CPU, ``F.pad`` keeps
    the permuted layout of the JPEG operator's output, which basicsr's ``filter2D`` then cannot
    ``view``: the models' ``filter2D`` gets a contiguous input (a no-op where it already is).
    """
    from basicsr.utils.registry import MODEL_REGISTRY

    name = str(opt.get('model_type'))
    cls = MODEL_REGISTRY._obj_map.get(name) or MODEL_REGISTRY._obj_map.get(f'{name}_basicsr')  # noqa: SLF001
    if cls is None:
        return  # BasicSR's own lookup reports the unknown type
    if not hasattr(cls, '_dequeue_and_enqueue') or '_srprune_cpu_pool' in vars(cls):
        return
    cls.__init__ = _init_on_model_device(cls.__init__)
    cls._dequeue_and_enqueue = _pool_on_model_device(cls._dequeue_and_enqueue)
    cls._srprune_cpu_pool = True
    for klass in cls.__mro__:
        module = sys.modules.get(klass.__module__)
        filter2d = getattr(module, 'filter2D', None)
        if callable(filter2d) and not hasattr(filter2d, '__wrapped__'):
            module.filter2D = _filter2d_any_layout(filter2d)


def install_shim() -> None:
    """The fix that must precede ``import basicsr``."""
    if enabled('functional_tensor'):
        install_functional_tensor_shim()


def apply() -> None:
    """Apply every enabled version fix (idempotent: each patch checks what it replaces)."""
    install_shim()
    import basicsr.train
    import basicsr.utils.dist_util
    from basicsr.models.base_model import BaseModel

    if enabled('weights_only'):
        allow_numpy_in_checkpoints()
    if enabled('cpu_resume'):
        original = basicsr.train.load_resume_state
        basicsr.train.load_resume_state = _patched_load_resume_state
        hooks.replace_in_main('load_resume_state', lambda copy: _patched_load_resume_state, original)
    if enabled('gloo_launcher'):
        basicsr.utils.dist_util._init_dist_pytorch = _patched_init_dist_pytorch
        BaseModel.model_to_device = _patched_model_to_device
    if enabled('spawn_workers'):
        hooks.register('dataset', spawn_safe, order=0)
    if enabled('slurm_launcher'):
        basicsr.utils.dist_util._init_dist_slurm = _patched_init_dist_slurm
    if enabled('pool_models_cpu'):
        hooks.register('before_model', pool_models_on_cpu)
    if enabled('utf8_keys'):
        from basicsr.utils.file_client import LmdbBackend

        LmdbBackend.get = _lmdb_get_utf8
