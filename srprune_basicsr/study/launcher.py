"""The one way the plugin trains a model from Python: ``srprune train -opt X --auto_resume`` in its own process.

A process of its own gives each run BasicSR's own process-wide state (logger, seeds, registries) and
lets a rerun resume an interrupted training; the study and the demo both train through here.
Importing torch, torchvision and basicsr takes seconds of CPU, which a study of many short runs
would pay once per run: where the platform has it, runs are forked from multiprocessing's
``forkserver``, a process that imported them once and never ran a tensor operation (so no thread
pool or GPU context is inherited), and each run still starts from that clean state. Elsewhere each
run is a fresh ``python -m srprune_basicsr`` subprocess.

A forked run is a child of the forkserver, not of the study, so stopping the study alone (a kill
of its process rather than of its process group) would leave the run training on, holding its
folder's lock, and the rerun that should resume it would be refused: a forked run ends itself
when the process that started it has ended (the rerun resumes it from its last checkpoint).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

from srprune_basicsr.options import load_yaml

PRELOAD = ['srprune_basicsr', 'srprune_basicsr.cli', 'basicsr.train']  # not __main__: runpy runs it afresh


def write_option_file(path: Path, opt: dict) -> Path:
    """A BasicSR option file as ``srprune train`` reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


class RunFailed(ValueError):
    """A training run ended with an error; the message holds the end of its stderr."""


def _end_with_parent() -> None:
    """In the forked run: a daemon thread that ends this process (SIGTERM) once the study that started it has ended.

    multiprocessing gives a forked child a sentinel of its parent, the read end of a pipe whose write
    end only the parent holds: the pipe reports end-of-file when the parent's descriptors close, that
    is when it ends, however it ends (no polling, no pid that could be reused).
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name='srprune-parent-watch', daemon=True).start()


def _train_in_child(args: list[str], cwd: str, stdout: str, stderr: str) -> None:
    """In the forked run: the ``srprune`` command in ``cwd``, its output into the two files, its code as exit code."""
    _end_with_parent()
    for fd, path in ((1, stdout), (2, stderr)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.chdir(cwd)
    sys.argv = ['srprune_basicsr', *args]
    try:
        runpy.run_module('srprune_basicsr', run_name='__main__', alter_sys=True)  # as python -m srprune_basicsr
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _run_forked(args: list[str], cwd: str | os.PathLike) -> tuple[int, str]:
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload(PRELOAD)
    with tempfile.TemporaryDirectory(prefix='srprune-run-') as folder:
        out, err = os.path.join(folder, 'stdout'), os.path.join(folder, 'stderr')
        process = context.Process(target=_train_in_child, args=(args, str(Path(cwd).resolve()), out, err))
        process.start()
        process.join()
        return process.exitcode, Path(err).read_text(errors='replace') if os.path.exists(err) else ''


def _run_subprocess(args: list[str], cwd: str | os.PathLike) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, '-m', 'srprune_basicsr', *args], cwd=cwd, capture_output=True, text=True)
    return proc.returncode, proc.stderr


def train(option_file: str | os.PathLike, cwd: str | os.PathLike) -> Path:
    """Train (or resume) the run of ``option_file`` with ``cwd`` as root; returns its experiment folder."""
    args = ['train', '-opt', str(option_file), '--auto_resume']
    forked = 'forkserver' in multiprocessing.get_all_start_methods()
    returncode, stderr = (_run_forked if forked else _run_subprocess)(args, cwd)
    if returncode:
        raise RunFailed(f'{option_file}: training failed:\n{stderr[-2000:]}')
    name = load_yaml(Path(cwd, option_file))['name']
    return Path(cwd) / 'experiments' / name
