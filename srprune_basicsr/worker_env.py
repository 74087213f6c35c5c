"""The marker that tells a spawned process it is a data-preparation worker.

It lives below every stage so that both the package's ``__init__`` (which decides whether to plug
into BasicSR on import) and ``prepare`` (which spawns the workers) can read it without an upward
import.
"""

from __future__ import annotations

import os

DATA_WORKER_ENV = 'SRPRUNE_DATA_WORKER'  # set for the pool workers of prepare: they need neither torch nor basicsr


def data_worker() -> bool:
    """Whether this process is a data-preparation worker, which only cuts, resizes and encodes images."""
    return os.environ.get(DATA_WORKER_ENV) == '1'
