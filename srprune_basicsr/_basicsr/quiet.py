"""Build BasicSR components before BasicSR's own pipeline starts, leaving its logger unset.

BasicSR's ``get_root_logger`` attaches the run's log file only on its first call, which the
pipeline makes after it created ``experiments/<name>``. Archs, datasets and models log while they
are built, so a check that builds one earlier would make that first call itself, and the run's
``train_*.log`` would never be written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def logger_untouched() -> Iterator[None]:
    """Within the block BasicSR may log; afterwards its logger is as before (not yet initialised, if it was not)."""
    from basicsr.utils import logger as basicsr_logger

    initialized = dict(basicsr_logger.initialized_logger)
    handlers = list(logging.getLogger('basicsr').handlers)
    level = logging.getLogger('basicsr').level
    try:
        yield
    finally:
        basicsr_logger.initialized_logger.clear()
        basicsr_logger.initialized_logger.update(initialized)
        logging.getLogger('basicsr').handlers[:] = handlers
        logging.getLogger('basicsr').setLevel(level)
