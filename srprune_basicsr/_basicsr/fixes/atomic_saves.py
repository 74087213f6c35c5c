"""``atomic_saves``: checkpoints are written atomically, and a save that keeps failing stops the run.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from srprune_basicsr._basicsr.fixes.base import Fix
from srprune_basicsr.formats.atomic import CheckpointSaveError


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


def apply() -> None:
    """Replace ``BaseModel.save_network`` and ``BaseModel.save_training_state`` (rank 0 only, as BasicSR's)."""
    from basicsr.models.base_model import BaseModel
    from basicsr.utils.dist_util import master_only

    BaseModel.save_network = master_only(_atomic_save_network)
    BaseModel.save_training_state = master_only(_atomic_save_training_state)


FIX = Fix('atomic_saves', 'version', 'a failed checkpoint save is logged and ignored, leaving a truncated file',
          ('basicsr.models.base_model:BaseModel.save_network',
           'basicsr.models.base_model:BaseModel.save_training_state', 'basicsr.utils.dist_util:master_only',
           'basicsr.utils:get_root_logger'), apply)
