"""Options that only mean something together with another: given alone, they are refused, not ignored."""

from __future__ import annotations

import argparse


def given(args: argparse.Namespace, dest: str) -> bool:
    """Whether the user gave the option (its parser default is None or False)."""
    value = getattr(args, dest)
    return value is not None and value is not False  # 0 is a value given (--compress-level 0)


def check_requires(args: argparse.Namespace, rules: list[tuple[str, str, bool]]) -> None:
    """Each rule is (option, what it needs, whether that is there); a given option without it is an error."""
    for option, needs, present in rules:
        if given(args, option.lstrip('-').replace('-', '_')) and not present:
            raise ValueError(f'{option} needs {needs}; without it the option would be ignored')


def or_default(value: object, default: object) -> object:
    """The option's value, or its documented default when it was not given (its parser default is None)."""
    return default if value is None else value
