"""``cpu_resume``: ``--auto_resume`` / ``resume_state`` on a host without CUDA, and unreadable states named.

BasicSR's ``load_resume_state`` calls ``torch.cuda.current_device()``. The replacement is also
given to a ``__main__`` copy of BasicSR's train.py (``hooks.replace_in_main``).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import Any

import torch

from srprune_basicsr._basicsr import hooks
from srprune_basicsr._basicsr.fixes.base import Fix


def checkpoint_map_location() -> Callable[[Any, Any], Any] | str:
    """Where to put tensors of a loaded training state: the current GPU if any, else the CPU."""
    if torch.cuda.is_available():
        device_id = torch.cuda.current_device()
        return lambda storage, loc: storage.cuda(device_id)
    return 'cpu'


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


def apply() -> None:
    """Replace ``basicsr.train.load_resume_state`` (and its copy in a ``__main__`` train.py)."""
    import basicsr.train

    original = basicsr.train.load_resume_state
    basicsr.train.load_resume_state = _patched_load_resume_state
    hooks.replace_in_main('load_resume_state', lambda copy: _patched_load_resume_state, original)


FIX = Fix('cpu_resume', 'version', '`--auto_resume` / `resume_state` crash on a CPU-only host',
          ('basicsr.train:load_resume_state', 'basicsr.utils:check_resume', 'basicsr.utils:scandir'), apply)
