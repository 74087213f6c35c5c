"""One process per run folder: the experiment (or results) folder of a BasicSR run is locked for the run's life.

Two ``train_pipeline`` runs of the same ``name:`` started together both exit 0 in BasicSR: the second
archives the first's ``experiments/<name>`` (``mkdir_and_rename``) while it trains, and the first's
final model is lost. The ``options`` callback ``lock_run_folders`` takes an exclusive lock on each
folder the run will create or use (``experiments/<name>``, ``tb_logger/<name>`` when TensorBoard
logs; ``results/<name>`` for ``test_pipeline``), after BasicSR's ``parse_options`` and before it
makes or archives any folder. A second run is refused before it touches anything; the lock ends
with the process, so ``--auto_resume`` after the first ended works. Only rank 0 creates folders in
BasicSR, so only rank 0 locks (the other ranks of a torchrun run are never refused by their own).
"""

from __future__ import annotations

import os.path as osp

from srprune_basicsr._basicsr import hooks
from srprune_basicsr.formats.atomic import OutputBusyError, hold_lock


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
