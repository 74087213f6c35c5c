"""Version fixes: basicsr 1.4.2 on current torch/torchvision and on CPU-only hosts.

basicsr 1.4.2 was released for torch 1.x. On torch 2.14 / torchvision 0.29 and on machines
without a GPU it breaks in seven places: ``functional_tensor``, ``cpu_resume``, ``gloo_launcher``,
``weights_only``, ``spawn_workers``, ``pool_models_cpu`` (Real-ESRGAN models call ``.cuda()``) and
``slurm_launcher``; and its LMDB reader takes only ASCII keys (``utf8_keys``).
A checkpoint save that fails is logged and ignored, leaving a truncated file (``atomic_saves``).
These fixes change no training result; the fixes that do (epoch counting, resume epoch, seeded
shuffle) are in ``semantics``. Each can be switched off (``switches``). ``install_shim()`` must run
before ``basicsr`` is first imported, because the import itself fails without the shim.
GFPGAN-style training also needs ``jpeg_quality`` (current OpenCV refuses basicsr's float JPEG
quality), ``adam_betas`` (torch 2's Adam refuses int/float betas) and ``fused_act_native``
(basicsr's fused leaky ReLU has only a CUDA kernel, which a pip-installed basicsr does not build).
Repos pinned to basicsr 1.3.4.9 (HAT) need ``moved_names``: the colour conversions 1.4.2 moved from
``matlab_functions`` to ``color_util`` are importable from their old module again. On Python 3.12+,
which has no distutils, ``distutils_version`` provides the ``LooseVersion`` basicsr imports. Where a process's
start method is forkserver (Python 3.14's default, and any process a forkserver started),
``fork_workers`` starts the train loader's workers by fork: BasicSR starts new ones every epoch.
"""

from __future__ import annotations

import functools
import os
import pickle
import re
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.switches import enabled
from srprune_basicsr.formats.atomic import CheckpointSaveError


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


@functools.total_ordering
class LooseVersion:
    """Enough of ``distutils.version.LooseVersion`` for basicsr: numbers compare as numbers, words as words."""

    def __init__(self, text: str) -> None:
        self.text = str(text)
        parts = [p for p in re.split(r'(\d+|[a-z]+|\.)', self.text.lower()) if p and p != '.']
        self.version = [int(p) if p.isdigit() else p for p in parts]

    def _key(self) -> list[tuple[int, Any]]:
        return [(0, p) if isinstance(p, int) else (1, p) for p in self.version]

    def __eq__(self, other: object) -> bool:
        return self._key() == _as_version(other)._key()

    def __lt__(self, other: object) -> bool:
        return self._key() < _as_version(other)._key()

    __hash__ = None  # mutable like distutils' own

    def __str__(self) -> str:
        return self.text


def _as_version(value: object) -> LooseVersion:
    return value if isinstance(value, LooseVersion) else LooseVersion(str(value))


def install_distutils_version_shim() -> None:
    """Provide ``distutils.version.LooseVersion`` where Python has no distutils (3.12 and later).

    basicsr.archs.arch_util imports it at import time, so ``import basicsr`` fails on Python 3.12+
    unless setuptools happens to stand in for distutils. basicsr uses it to compare torchvision
    versions only. A real distutils (Python 3.11, or setuptools' copy) is left in place.
    """
    try:
        import distutils.version  # noqa: F401
        return
    except ImportError:
        pass
    package, version = types.ModuleType('distutils'), types.ModuleType('distutils.version')
    version.LooseVersion = LooseVersion
    package.version = version
    package.__path__ = []
    sys.modules.update({'distutils': package, 'distutils.version': version})


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


def fork_loader_workers(loaders: Any) -> None:
    """Train-loader callback: workers by fork where the process's default start method is forkserver.

    BasicSR's train loader has no persistent workers, so every epoch starts new ones. Under forkserver
    each new worker unpickles the dataset and imports torch, basicsr and the plugin afresh: seconds per
    epoch, which a pruned set of a few iterations per epoch pays every few iterations (it tripled a
    10% run's time per iteration). Fork hands the worker the imported modules at no cost, and BasicSR's
    ``worker_init_fn`` seeds it as before, so the data are the same. A spawn set on purpose (BasicSR's
    ``--launcher pytorch``) or a context the loader names is left alone.
    """
    import multiprocessing

    loader = loaders.train_loader
    if (loader.num_workers > 0 and loader.multiprocessing_context is None
            and multiprocessing.get_start_method(allow_none=True) == 'forkserver'
            and 'fork' in multiprocessing.get_all_start_methods()):
        loader.multiprocessing_context = 'fork'


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


def _os_error_in(err: BaseException | None) -> OSError | None:
    """The OSError with an errno behind ``err``: itself, or one in its cause/context chain."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno:
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _reads_back(path: os.PathLike) -> None:
    """A written checkpoint is a complete zip archive whose records read back with their CRCs.

    Cheaper than ``torch.load`` (a third of the write time against nine tenths, measured on RRDBNet)
    and independent of what the pickle holds (no weights_only allow-list to satisfy).
    """
    import errno
    import zipfile

    try:
        from torch.utils.serialization import config
        crc = bool(config.save.compute_crc32)
    except (ImportError, AttributeError):
        crc = True
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            bad = archive.testzip() if crc else None
    except (zipfile.BadZipFile, EOFError) as err:
        raise OSError(errno.EIO, f'the written file does not read back as a complete archive ({err})') from None
    if bad or not any(name.endswith('/data.pkl') for name in names):
        raise OSError(errno.EIO, f'the written file reads back damaged ({f"record {bad}" if bad else "no data.pkl"})')


def save_checkpoint(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, atomic: a temporary beside ``path``, synced, read back, renamed onto it.

    A failure leaves ``path`` as it was and no temporary. torch's own file writer names the zip's
    records after the file (``net_g_4/data.pkl``, as in BasicSR's files) but reports a failed write
    without its OS error ('unexpected pos'); the write is then tried once more through a Python
    file, whose failure carries the errno (disk full, quota, file size limit, read-only).
    """
    from srprune_basicsr.formats.atomic import atomic_file

    with atomic_file(path, check=_reads_back) as tmp:
        try:
            torch.save(obj, str(tmp))
        except Exception as err:
            if _os_error_in(err) is not None:
                raise
            with open(tmp, 'wb') as f:
                torch.save(obj, f)


def _describe_failure(err: BaseException) -> str:
    import errno

    cause = _os_error_in(err)
    if cause is not None:
        return f'{cause.strerror or os.strerror(cause.errno)} ({errno.errorcode.get(cause.errno, cause.errno)})'
    text = str(err).strip().splitlines()
    return f'{type(err).__name__}: {text[0]}' if text else type(err).__name__


SAVE_TRIES = 3  # as BasicSR: a save is tried three times, one second apart, before it gives up


def save_or_raise(obj: Any, path: str, what: str) -> None:
    """Save a checkpoint as BasicSR tries to (three tries, a warning for each failure), atomically; then raise.

    BasicSR logs 'Just ignore it' and trains on after the third failure, so a full disk ends the
    run with exit 0 and truncated checkpoints; here the run stops with the file and the cause.
    """
    import time

    from basicsr.utils import get_root_logger

    for attempt in range(1, SAVE_TRIES + 1):
        try:
            save_checkpoint(obj, path)
            return
        except Exception as err:
            cause = _describe_failure(err)
            if attempt < SAVE_TRIES:
                get_root_logger().warning(f'Save {what} error: {cause}, remaining retry times: {SAVE_TRIES - attempt}')
                time.sleep(1)
                continue
            message = (f'cannot save the {what} {path}: {cause}; nothing was written under that name and the '
                       f'checkpoints saved before it are intact: fix the cause, then resume with --auto_resume')
            get_root_logger().error(message)
            error = CheckpointSaveError(message)
            error.errno = getattr(_os_error_in(err), 'errno', None)
            raise error from err


def _atomic_save_network(self: Any, net: Any, net_label: str, current_iter: Any, param_key: Any = 'params') -> None:
    """BaseModel.save_network with the same file name and content, saved by ``save_or_raise``."""
    if current_iter == -1:
        current_iter = 'latest'
    save_filename = f'{net_label}_{current_iter}.pth'
    save_path = os.path.join(self.opt['path']['models'], save_filename)

    net = net if isinstance(net, list) else [net]
    param_key = param_key if isinstance(param_key, list) else [param_key]
    assert len(net) == len(param_key), 'The lengths of net and param_key should be the same.'

    save_dict = {}
    for net_, param_key_ in zip(net, param_key, strict=True):
        net_ = self.get_bare_model(net_)
        state_dict = net_.state_dict()
        for key, param in state_dict.items():
            if key.startswith('module.'):  # BasicSR's code, kept as it is
                key = key[7:]
            state_dict[key] = param.cpu()
        save_dict[param_key_] = state_dict
    save_or_raise(save_dict, save_path, 'model')


def _atomic_save_training_state(self: Any, epoch: int, current_iter: int) -> None:
    """BaseModel.save_training_state with the same file name and content, saved by ``save_or_raise``."""
    if current_iter != -1:
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [], 'schedulers': []}
        for o in self.optimizers:
            state['optimizers'].append(o.state_dict())
        for s in self.schedulers:
            state['schedulers'].append(s.state_dict())
        save_filename = f'{current_iter}.state'
        save_path = os.path.join(self.opt['path']['training_states'], save_filename)
        save_or_raise(state, save_path, 'training state')


def _add_jpg_compression(img: Any, quality: float = 90) -> Any:
    """basicsr's ``degradations.add_jpg_compression`` with the integer quality OpenCV 4.5.4 and later take.

    basicsr draws the quality from ``jpeg_range`` (a float) and hands it to ``cv2.imencode``, which
    refuses it ("Can't parse 'params'"), so GFPGAN's FFHQDegradationDataset (and any dataset adding
    JPEG artifacts through it) failed on its first item. The quality is rounded; the image is made
    8-bit as OpenCV does itself (rounded, saturated: the same encoded bytes, without its warning).
    """
    import cv2
    import numpy as np

    img = np.clip(img, 0, 1)
    params = [int(cv2.IMWRITE_JPEG_QUALITY), int(round(float(quality)))]
    _, encoded = cv2.imencode('.jpg', np.round(img * 255.).astype(np.uint8), params)
    return np.float32(cv2.imdecode(encoded, 1)) / 255.


def _float_betas(get_optimizer: Callable) -> Callable:
    @functools.wraps(get_optimizer)
    def get_optimizer_float_betas(self: Any, optim_type: str, params: Any, lr: float, **kwargs: Any) -> Any:
        betas = kwargs.get('betas')
        if isinstance(betas, (list, tuple)) and all(isinstance(b, (int, float)) and not isinstance(b, bool)
                                                    for b in betas):
            kwargs['betas'] = tuple(float(b) for b in betas)
        return get_optimizer(self, optim_type, params, lr, **kwargs)

    get_optimizer_float_betas._srprune_float_betas = True
    return get_optimizer_float_betas


def adam_betas_as_floats() -> None:
    """``BaseModel.get_optimizer`` hands Adam its ``betas`` as floats.

    torch 2 refuses betas that mix ints and floats ("betas must be either both floats or both
    Tensors"): GFPGAN's GFPGANModel computes ``(0**ratio, 0.99**ratio)``, an int and a float, and an
    option file's ``betas: [0, 0.99]`` is the same. ``0`` and ``0.0`` train alike.
    """
    from basicsr.models.base_model import BaseModel

    if not getattr(BaseModel.get_optimizer, '_srprune_float_betas', False):
        BaseModel.get_optimizer = _float_betas(BaseModel.get_optimizer)


def native_fused_leaky_relu(input: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2,
                            scale: float = 2 ** 0.5) -> torch.Tensor:
    """What basicsr's ``fused_bias_act`` kernel computes, in PyTorch: leaky ReLU of ``input + bias`` times ``scale``."""
    from torch.nn import functional as F

    rest = [1] * (input.ndim - bias.ndim - 1)
    return F.leaky_relu(input + bias.view(1, bias.shape[0], *rest), negative_slope) * scale


def fused_act_anywhere() -> None:
    """basicsr's fused leaky ReLU (StyleGAN2 archs and discriminator, GFPGAN's archs) runs without its CUDA kernel.

    ``basicsr.ops.fused_act`` needs the compiled ``fused_act_ext``, which a pip-installed basicsr
    lacks (it is built only with ``BASICSR_EXT=True`` or ``BASICSR_JIT=True`` and nvcc) and which has
    no CPU code: every forward of those networks raised ``NameError: fused_act_ext``. Where the kernel
    is loaded and the tensor is on a GPU it still runs; elsewhere PyTorch computes the same function.
    """
    from basicsr.ops.fused_act import fused_act

    function = fused_act.FusedLeakyReLUFunction
    if getattr(function.apply, '_srprune_any_device', False):
        return
    kernel_apply = function.apply

    def apply(input: torch.Tensor, bias: torch.Tensor, negative_slope: float, scale: float) -> torch.Tensor:
        if input.is_cuda and getattr(fused_act, 'fused_act_ext', None) is not None:
            return kernel_apply(input, bias, negative_slope, scale)
        return native_fused_leaky_relu(input, bias, negative_slope, scale)

    apply._srprune_any_device = True
    function.apply = staticmethod(apply)


MOVED_NAMES = {'basicsr.utils.matlab_functions': ('basicsr.utils.color_util',
                                                  ('rgb2ycbcr', 'bgr2ycbcr', 'ycbcr2rgb', 'ycbcr2bgr'))}


def restore_moved_names() -> None:
    """Names basicsr 1.3.4.9 exported that 1.4.2 moved: importable again from their old module.

    After 1.3.4.9, basicsr moved its colour conversions out of ``matlab_functions`` into ``color_util``.
    Repos written for 1.3.4.9 still import them from the old module: HAT's ``imagenet_paired_dataset``
    does ``from basicsr.utils.matlab_functions import imresize, rgb2ycbcr``, so ``import hat`` (and
    HAT's ``train.py``) failed with ImportError. The old module gets the very functions of the new
    one (same objects, same results); a name it still defines is left alone. Applied when basicsr is
    first imported, before any such repo's modules import from it.
    """
    import importlib

    for old_name, (new_name, names) in MOVED_NAMES.items():
        old, new = importlib.import_module(old_name), importlib.import_module(new_name)
        for name in names:
            if not hasattr(old, name):
                setattr(old, name, getattr(new, name))


def install_shim() -> None:
    """The fixes that must precede ``import basicsr``."""
    if enabled('functional_tensor'):
        install_functional_tensor_shim()
    if enabled('distutils_version'):
        install_distutils_version_shim()


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
    if enabled('fork_workers'):
        hooks.register('train_loaders', fork_loader_workers)
    if enabled('slurm_launcher'):
        basicsr.utils.dist_util._init_dist_slurm = _patched_init_dist_slurm
    if enabled('pool_models_cpu'):
        hooks.register('before_model', pool_models_on_cpu)
    if enabled('atomic_saves'):
        from basicsr.utils.dist_util import master_only

        BaseModel.save_network = master_only(_atomic_save_network)
        BaseModel.save_training_state = master_only(_atomic_save_training_state)
    if enabled('utf8_keys'):
        from basicsr.utils.file_client import LmdbBackend

        LmdbBackend.get = _lmdb_get_utf8
    if enabled('jpeg_quality'):
        import basicsr.data.degradations

        basicsr.data.degradations.add_jpg_compression = _add_jpg_compression
    if enabled('adam_betas'):
        adam_betas_as_floats()
    if enabled('fused_act_native'):
        fused_act_anywhere()
    if enabled('moved_names'):
        restore_moved_names()
