"""The docs a user reads: every repository path they name exists, and they speak of the software only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

DOCS = [REPO / 'README.md', *sorted((REPO / 'docs').rglob('*.md'))]
SOURCES = [*sorted((REPO / 'srprune_basicsr').rglob('*.py')), *sorted((REPO / 'tools').glob('*')),
           *sorted((REPO / 'options').rglob('*.yml')), *sorted((REPO / 'srprune_basicsr').rglob('*.yml'))]
REPO_PATH = re.compile(r'(?<![\w./-])((?:options|tools|docs|tests|srprune_basicsr)/[^\s`\'"()\[\]|,;:]*)')
LINK = re.compile(r'\]\(([^)#\s]+)(?:#[^)]*)?\)')
WORK_WORDS = re.compile(r'\bissue #?\d+|\bthis session\b|\bwork session|\bsessions?\b.{0,20}\bGPU minutes|'
                        r'\bcommit [0-9a-f]{7,40}\b', re.IGNORECASE)


def named_paths(text: str) -> set[str]:
    """Repository paths a text names (``options/...``, ``tools/...``; globs and placeholders left out, anchors cut)."""
    return {m.removesuffix('\\n').split('#')[0].rstrip('.') for m in REPO_PATH.findall(text)
            if not re.search(r'[*<>{}]|\.\.\.', m)}


@pytest.mark.parametrize('doc', DOCS + SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_named_repository_paths_exist(doc: Path) -> None:
    text = doc.read_text()
    missing = sorted(p for p in named_paths(text) if not (REPO / p).exists())
    if doc.suffix == '.md':
        links = [link for link in LINK.findall(text) if '://' not in link and not link.startswith('mailto:')]
        missing += sorted(link for link in links if not (doc.parent / link).exists())
    assert not missing, f'{doc.relative_to(REPO)} names paths that do not exist: {missing}'


@pytest.mark.parametrize('doc', DOCS + SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_speak_of_the_software_only(doc: Path) -> None:
    hits = [line.strip() for line in doc.read_text().splitlines() if WORK_WORDS.search(line)]
    assert not hits, hits


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = (REPO / 'README.md').read_text()
    assert len(text.splitlines()) < 250
    first_block = text.split('```')[1]
    assert 'make demo' in first_block and 'make test' in first_block


def test_every_published_study_keeps_its_per_run_results() -> None:
    """A study's tables can be recomputed: every study folder under docs/results keeps study.csv and
    study_images.csv beside study.md (summaries alone cannot be paired by seed)."""
    folders = sorted({md.parent for md in (REPO / 'docs' / 'results').rglob('study.md')})
    assert folders, 'no study folder under docs/results'
    for folder in folders:
        rows = (folder / 'study.csv').read_text().splitlines()
        assert rows[0].startswith('arm,method,keep_ratio,band,seed,benchmark,psnr,ssim') and len(rows) > 1, folder
        assert (folder / 'study_images.csv').stat().st_size > 0, folder
