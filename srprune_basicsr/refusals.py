"""Which errors are the plugin's refusals: one line and exit code 2, not a traceback.

``srprune`` (``cli``) prints them as one line and exits 2. Under BasicSR's own entry points
(``python -m basicsr.train``, a repo's ``train.py``), where no ``srprune`` code catches them, the
plugin's ``sys.excepthook`` prints the same one line in place of the traceback (``one_line_refusals``).
"""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path
from types import TracebackType

from srprune_basicsr.formats.atomic import CheckpointSaveError, OutputWriteError

PACKAGE = Path(__file__).resolve().parent
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               CheckpointSaveError, OutputWriteError)
FAILED_WRITES = (CheckpointSaveError, OutputWriteError)  # one line and exit 2, but no refusal of the inputs


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
    return isinstance(err, USER_ERRORS) and not isinstance(err, FAILED_WRITES) and raised_by_plugin(err)


def one_line_under_basicsr(err: BaseException) -> bool:
    """Whether an uncaught ``err`` is a plugin error that BasicSR's own code ran into: shown as one line.

    Its traceback passes through a ``basicsr`` package (BasicSR's pipeline called the plugin) and
    through no ``srprune`` command, which already printed its errors as one line and re-raises only
    under ``--debug``, for the full traceback. BasicSR's own ``--debug`` flag keeps the traceback
    too, as it does for ``srprune train``; a script that calls the plugin's functions itself keeps it.
    """
    if '--debug' in sys.argv or not (isinstance(err, USER_ERRORS) and raised_by_plugin(err)):
        return False
    files = [Path(frame.filename) for frame in traceback.extract_tb(err.__traceback__)]
    through_cli = any(f.resolve().is_relative_to(PACKAGE / 'cli') for f in files)
    return not through_cli and any('basicsr' in f.parts[:-1] for f in files)


def one_line_refusals() -> None:
    """Have an uncaught plugin error under BasicSR's own entry points end the process with one line.

    The line (``train.py: error: <option file>: <key>: ...``) is the last of the output, where a
    user looks, instead of the last line of a traceback through BasicSR and the plugin's hooks;
    the exit status stays Python's 1. Any other error goes to the hook that was there before.
    """
    if getattr(sys.excepthook, 'srprune_refusals', False):
        return
    previous = sys.excepthook

    def excepthook(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
        if one_line_under_basicsr(err):
            print(f'{Path(sys.argv[0]).name or "python"}: error: {err}', file=sys.stderr)
        else:
            previous(kind, err, tb)

    excepthook.srprune_refusals = True  # type: ignore[attr-defined]
    sys.excepthook = excepthook
