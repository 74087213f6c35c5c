"""Scoring and selection: score files, selection rules and (later) the scorers themselves."""
