"""The training-semantics fixes' former home: their names stay importable from here (``fixes/<fix>.py``).

Unlike the version fixes these change what is trained (``epoch_count``, ``resume_epoch``,
``seeded_shuffle``); each is a callback on ``hooks`` and can be switched off (``switches``).
"""

from __future__ import annotations

from srprune_basicsr._basicsr.fixes import apply_fixes
from srprune_basicsr._basicsr.fixes.epoch_count import count_epochs
from srprune_basicsr._basicsr.fixes.resume_epoch import next_epoch_on_resume
from srprune_basicsr._basicsr.fixes.seeded_shuffle import seed_the_shuffle, seeded_sampler_iter, shuffle_generator


def apply() -> None:
    """Register every enabled semantics fix the imported basicsr has a use for (the hooks must be installed too)."""
    apply_fixes('semantics')


__all__ = ['apply', 'count_epochs', 'next_epoch_on_resume', 'seed_the_shuffle', 'seeded_sampler_iter',
           'shuffle_generator']
