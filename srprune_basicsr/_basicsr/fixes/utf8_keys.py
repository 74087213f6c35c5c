"""``utf8_keys``: BasicSR's LMDB reader encodes keys as ASCII; non-ASCII keys are read as UTF-8.
"""

from __future__ import annotations

from typing import Any

from srprune_basicsr._basicsr.fixes.base import Fix


def _lmdb_get_utf8(self: Any, filepath: Any, client_key: str) -> bytes | None:
    """BasicSR's LmdbBackend.get with the key encoded as UTF-8 (BasicSR encodes it as ASCII).

    UTF-8 is ASCII for ASCII keys, so nothing changes for them; a sub-image cut from ``café.png``
    (key ``café_s001``) is then found instead of raising UnicodeEncodeError in a loader worker.
    """
    if client_key not in self._client:
        raise KeyError(f'client_key {client_key} is not in lmdb clients')
    with self._client[client_key].begin(write=False) as txn:
        return txn.get(str(filepath).encode('utf-8'))


def apply() -> None:
    """Replace ``LmdbBackend.get``."""
    from basicsr.utils.file_client import LmdbBackend

    LmdbBackend.get = _lmdb_get_utf8


FIX = Fix('utf8_keys', 'version', 'LMDB keys such as `café_s001` raise UnicodeEncodeError',
          ('basicsr.utils.file_client:LmdbBackend.get',), apply)
