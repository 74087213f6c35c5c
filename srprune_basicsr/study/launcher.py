"""The one way the plugin trains a model from Python: ``srprune train -opt X --auto_resume`` in a subprocess.

A subprocess gives each run BasicSR's own process-wide state (logger, seeds, registries) and lets
a rerun resume an interrupted training; the study and the demo both train through here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from srprune_basicsr.options import load_yaml


def write_option_file(path: Path, opt: dict) -> Path:
    """A BasicSR option file as ``srprune train`` reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


class RunFailed(ValueError):
    """A training run ended with an error; the message holds the end of its stderr."""


def train(option_file: str | os.PathLike, cwd: str | os.PathLike) -> Path:
    """Train (or resume) the run of ``option_file`` with ``cwd`` as root; returns its experiment folder."""
    proc = subprocess.run([sys.executable, '-m', 'srprune_basicsr', 'train', '-opt', str(option_file), '--auto_resume'],
                          cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise RunFailed(f'{option_file}: training failed:\n{proc.stderr[-2000:]}')
    name = load_yaml(Path(cwd, option_file))['name']
    return Path(cwd) / 'experiments' / name
