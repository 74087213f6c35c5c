"""Text files that users hand us, read as UTF-8 or refused: keep lists, score files, an LMDB's
meta_info.txt, a folder dataset's meta_info_file and a tracking history's keys.txt.

A binary or wrongly encoded file would otherwise surface as a bare ``UnicodeDecodeError`` with no
file name; the refusal names the file and the line where the text stops being text.
"""

from __future__ import annotations

from pathlib import Path


def utf8_text(path: Path, data: bytes, error: type[Exception], expected: str) -> str:
    """``data`` (the bytes of ``path``) decoded as UTF-8; otherwise ``error`` naming the file and line.

    ``expected`` says what the file should have been, e.g. 'keep list (expected one key per line)'.
    """
    if b'\0' in data:
        line = data.count(b'\n', 0, data.index(b'\0')) + 1
        raise error(f'{path}:{line}: a NUL byte; this is not a text {expected}')
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as err:
        line = data.count(b'\n', 0, err.start) + 1
        raise error(f'{path}:{line}: bytes that are not UTF-8 text; this is not a text {expected}') from None
