"""``slurm_launcher``: ``--launcher slurm`` without GPUs, with the slurm environment checked and named.
"""

from __future__ import annotations

import os

import torch

from srprune_basicsr._basicsr.fixes.base import Fix


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


def apply() -> None:
    """Replace basicsr's ``_init_dist_slurm``."""
    import basicsr.utils.dist_util

    basicsr.utils.dist_util._init_dist_slurm = _patched_init_dist_slurm


FIX = Fix('slurm_launcher', 'version', '`--launcher slurm` divides by the GPU count and reads SLURM_* unchecked',
          ('basicsr.utils.dist_util:_init_dist_slurm',), apply)
