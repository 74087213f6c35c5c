"""A refused run leaves BasicSR's run folders as they were before it started.

``train_pipeline`` creates ``experiments/<name>`` (and ``tb_logger/<name>``) before it builds the
datasets and the model, and archives an existing folder of that name to ``<name>_archived_<time>``
first. A check that can only run once the dataset or model exists (a scale that does not match, a
tracking plan that cannot finish, a pretrained network of another arch) would leave an empty run
folder behind, or an archived one under a new name. ``restored_on_refusal`` undoes exactly that,
and only while the run has saved nothing.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from srprune_basicsr.formats.atomic import holds_lock

SAVED = ('models', 'training_states')  # a run that wrote here produced something worth keeping


def run_folders(root: Path, name: str, is_train: bool = True) -> list[Path]:
    """The folders BasicSR's pipelines create for experiment ``name`` under ``root``."""
    if is_train:
        return [root / 'experiments' / name, root / 'tb_logger' / name]
    return [root / 'results' / name]


def saved_since(folder: Path, start: float) -> bool:
    """Whether a checkpoint or training state was written into ``folder`` at or after ``start``."""
    for sub in SAVED:
        place = folder / sub
        if place.is_dir() and any(p.stat().st_mtime >= start for p in place.iterdir()):
            return True
    return False


def _archives(folder: Path) -> set[Path]:
    return set(folder.parent.glob(f'{folder.name}_archived_*')) if folder.parent.is_dir() else set()


def _restore(folder: Path, existed: bool, archives_before: set[Path], start: float) -> None:
    if not holds_lock(folder):  # not this run's: another process's run refused this one (runs.lock_run_folders)
        return
    new_archives = sorted(_archives(folder) - archives_before, key=lambda p: p.stat().st_mtime)
    if not folder.is_dir() or saved_since(folder, start):
        return
    if not existed:
        shutil.rmtree(folder, ignore_errors=True)
    elif new_archives:  # BasicSR moved the previous run aside for this one: put it back
        shutil.rmtree(folder, ignore_errors=True)
        os.rename(new_archives[-1], folder)


def launch_rank() -> int:
    """This process's rank as the launcher set it (torchrun's RANK, slurm's SLURM_PROCID; 0 alone)."""
    for variable in ('RANK', 'SLURM_PROCID'):
        value = os.environ.get(variable, '')
        if value.isdigit():
            return int(value)
    return 0


@contextmanager
def restored_on_refusal(root: Path, name: str, refused: Callable[[BaseException], bool],
                        is_train: bool = True) -> Iterator[None]:
    """Run the block; if it raises an error ``refused`` accepts before saving anything, undo its run folders.

    Only rank 0 acts (BasicSR's other ranks create nothing), and only on the folders it holds the
    run lock of (``runs.lock_run_folders``): a run refused because another process trains that
    name never touches that process's folder, even one that appeared while this run started. A
    folder this run created is removed; a previous run's folder that BasicSR archived for this one
    is renamed back. A run that saved a checkpoint keeps everything, as does a resumed run (its
    folder existed and nothing was archived).
    """
    folders = run_folders(root, name, is_train) if launch_rank() == 0 else []
    before = {folder: (folder.exists(), _archives(folder)) for folder in folders}
    start = time.time() - 1  # file times can be a little behind the wall clock
    try:
        yield
    except BaseException as err:
        if refused(err):
            for folder, (existed, archives) in before.items():
                _restore(folder, existed, archives, start)
        raise
