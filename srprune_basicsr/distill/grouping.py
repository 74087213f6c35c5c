"""Pseudo labels for SR: sub-images are grouped by the full image they were cut from.

BasicSR's sub-image keys are ``<image stem>_s<NNN>`` (``0001_s001``), so the group of a key is
its stem. Keys without the suffix (a folder of whole images) are each their own group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SUB_IMAGE = re.compile(r'^(?P<source>.+)_s\d+$')


def source_of(key: str) -> str:
    """The source image a sub-image key was cut from."""
    match = SUB_IMAGE.match(key)
    return match.group('source') if match else key


def group_keys(keys: Sequence[str], only: Sequence[str] | None = None) -> dict[str, list[int]]:
    """Source image -> indices of its sub-images, in key order; ``only`` restricts to named groups.

    A group named in ``only`` without any sub-image is an error that names it.
    """
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(source_of(key), []).append(index)
    if only is not None:
        missing = [g for g in only if g not in groups]
        if missing:
            raise ValueError(f'distill:groups: {len(missing)} group(s) have no sub-images in the training set, '
                             f'e.g. {missing[:5]} (groups are key prefixes before _sNNN, e.g. {next(iter(groups))})')
        groups = {g: groups[g] for g in only}
    return groups
