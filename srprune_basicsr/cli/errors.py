"""Which errors are the plugin's refusals: one line and exit code 2, not a traceback (see ``refusals``)."""

from __future__ import annotations

from srprune_basicsr.refusals import (
    FAILED_WRITES,
    PACKAGE,
    USER_ERRORS,
    raised_by_plugin,
    refused_by_plugin,
)

__all__ = ['FAILED_WRITES', 'PACKAGE', 'USER_ERRORS', 'raised_by_plugin', 'refused_by_plugin']
