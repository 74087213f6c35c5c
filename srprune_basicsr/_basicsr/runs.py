"""One process per run folder: the experiment (or results) folder of a BasicSR run is locked for the run's life.

Two ``train_pipeline`` runs of the same ``name:`` started together both exit 0 in BasicSR: the second
archives the first's ``experiments/<name>`` (``mkdir_and_rename``) while it trains, and the first's
final model is lost. The ``options`` callback ``lock_run_folders`` takes an exclusive lock on each
folder the run will create or use (``experiments/<name>``, ``tb_logger/<name>`` when TensorBoard
logs; ``results/<name>`` for ``test_pipeline``), after BasicSR's ``parse_options`` and before it
makes or archives any folder. A second run is refused before it touches anything; the lock ends
with the process, so ``--auto_resume`` after the first ended works. Only rank 0 creates folders in
BasicSR, so only rank 0 locks (the other ranks of a torchrun run are never refused by their own).

A run that is refused after BasicSR made its folders (a check that needs the built dataset or
model) leaves them as they were: ``restored_on_refusal`` removes what the run made and renames back a
folder BasicSR archived for it, while the run has saved nothing.
"""

from __future__ import annotations

import os
import os.path as osp
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from srprune_basicsr._basicsr import hooks
from srprune_basicsr.formats.atomic import OutputBusyError, hold_lock, holds_lock


def run_folders(opt: dict) -> list[str]:
    """The folders BasicSR's pipeline will create (and archive if they exist) for these parsed options."""
    path = opt.get('path') or {}
    if opt.get('is_train', True):
        root = path.get('experiments_root')
        if not root:
            return []
        folders = [root]
        if (opt.get('logger') or {}).get('use_tb_logger') and 'debug' not in str(opt.get('name')):
            folders.append(osp.join(osp.dirname(osp.dirname(root)), 'tb_logger', str(opt['name'])))
        return folders
    return [path['results_root']] if path.get('results_root') else []


def lock_run_folders(opt: dict) -> None:
    """Options callback: hold the run's folders for this process's life; refuse a run another process holds."""
    if opt.get('rank', 0) != 0:
        return
    for folder in run_folders(opt):
        try:
            hold_lock(folder)
        except OutputBusyError as err:
            train = opt.get('is_train', True)
            where = folder if osp.relpath(folder).startswith('..') else osp.relpath(folder)
            resume = ' (--auto_resume then continues it)' if train else ''
            source = hooks.option_file() or 'the option file'
            raise OutputBusyError(f'{where}: another process ({err.holder or "its pid unknown"}) is '
                                  f'{"training" if train else "testing"} {opt.get("name")!r} in this folder; wait '
                                  f'until it ends{resume}, or change name: in {source}',
                                  err.holder) from None


SAVED = ('models', 'training_states')  # a run that wrote here produced something worth keeping


def named_run_folders(root: Path, name: str, is_train: bool = True) -> list[Path]:
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
    """The ``<name>_archived_<time>`` folders BasicSR's ``mkdir_and_rename`` left beside ``folder``."""
    return set(folder.parent.glob(f'{folder.name}_archived_*')) if folder.parent.is_dir() else set()


def _restore(folder: Path, existed: bool, archives_before: set[Path]) -> None:
    """Remove the folder this run made, or put back the one BasicSR archived for it (only a folder it holds)."""
    if not holds_lock(folder):  # not this run's: another process's run refused this one (lock_run_folders)
        return
    new_archives = sorted(_archives(folder) - archives_before, key=lambda p: p.stat().st_mtime)
    if not folder.is_dir():
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
    run lock of (``lock_run_folders``): a run refused because another process trains that
    name never touches that process's folder, even one that appeared while this run started. A
    folder this run created is removed; a previous run's folder that BasicSR archived for this one
    is renamed back. A run that saved a checkpoint keeps everything, as does a resumed run (its
    folder existed and nothing was archived).
    """
    folders = named_run_folders(root, name, is_train) if launch_rank() == 0 else []
    before = {folder: (folder.exists(), _archives(folder)) for folder in folders}
    start = time.time() - 1  # file times can be a little behind the wall clock
    try:
        yield
    except BaseException as err:
        # a run that saved anything (a checkpoint, then a refusal at its end) keeps all its folders
        if refused(err) and not any(saved_since(folder, start) for folder in folders):
            for folder, (existed, archives) in before.items():
                _restore(folder, existed, archives)
        raise
