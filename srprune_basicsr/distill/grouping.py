"""Pseudo labels for SR: sub-images are grouped by the full image they were cut from.

BasicSR's sub-image keys are ``<image stem>_s<NNN>`` (``0001_s001``), so the group of a key is
its source (``formats.keys.source_of``). Keys without the suffix (a folder of whole images) are each
their own group.
"""

from __future__ import annotations

from collections.abc import Sequence

from srprune_basicsr.formats.keys import group_by_source


def group_keys(keys: Sequence[str], only: Sequence[str] | None = None) -> dict[str, list[int]]:
    """Source image -> indices of its sub-images, in key order; ``only`` restricts to named groups.

    A group named in ``only`` without any sub-image is an error that names it.
    """
    groups = group_by_source(keys)
    if only is not None:
        missing = [g for g in only if g not in groups]
        if missing:
            raise ValueError(f'distill:groups: {len(missing)} group(s) have no sub-images in the training set, '
                             f'e.g. {missing[:5]} (groups are key prefixes before _sNNN, e.g. {next(iter(groups))})')
        groups = {g: groups[g] for g in only}
    return groups
