"""Which errors are the plugin's refusals: one line and exit code 2, not a traceback."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

from srprune_basicsr.formats.atomic import CheckpointSaveError

PACKAGE = Path(__file__).resolve().parents[1]
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               CheckpointSaveError)


def raised_by_plugin(err: BaseException) -> bool:
    """Whether the error was raised in the plugin's own code (a check), not deep inside a library.

    An error raised in a ``multiprocessing`` worker (``prepare``'s pool) is re-raised in this
    process from the pool's code; where it was raised is the last frame of the worker's traceback,
    which the pool attaches as the error's cause.
    """
    remote = err.__cause__
    if type(remote).__name__ == 'RemoteTraceback':
        files = re.findall(r'File "([^"]+)", line \d+', str(remote))
        return bool(files) and Path(files[-1]).resolve().is_relative_to(PACKAGE)
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(PACKAGE)


def refused_by_plugin(err: BaseException) -> bool:
    """Whether ``err`` is one of the plugin's refusals of a run's inputs (a failed save is not: its log stays)."""
    return isinstance(err, USER_ERRORS) and not isinstance(err, CheckpointSaveError) and raised_by_plugin(err)
