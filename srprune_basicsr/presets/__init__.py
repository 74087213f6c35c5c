"""Option files the package itself reads (the demo study and its training templates), shipped as package data."""

from pathlib import Path

PRESETS = Path(__file__).resolve().parent
