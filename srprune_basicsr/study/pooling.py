"""One table over the seeds of a study and its confirmation (say seeds 0-2 and fresh seeds 3-5).

A confirmation study reruns some arms of a study on fresh seeds; each is tabled on its own, and the
fresh seeds are the test of what was picked on the first ones. Pooling both gives every shared arm
twice the seeds and narrower intervals, but it counts the seeds the rules were picked on: the pooled
table says so in its first paragraph. Only arms that every study trains the same way apart from the
seed (the same ``Study.design``) are pooled, and a seed may belong to one study only, so no run counts
twice and no two recipes are mixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from srprune_basicsr.formats.atomic import UnsafeOutputError, check_apart, made_by_us, write_marker
from srprune_basicsr.study.runner import Study
from srprune_basicsr.study.tables import reference_budget, write_outputs

POOLED_KIND = 'pooled study'


def _check_poolable(studies: Sequence[Study]) -> None:
    """Two or more studies of the same benchmarks and disjoint seeds."""
    if len(studies) < 2:
        raise ValueError('pooling needs two or more studies (a study and its confirmation)')
    names = [s.study['name'] for s in studies]
    if len(set(names)) < len(names):
        raise ValueError(f'pooling: a study is given twice ({names})')
    first = studies[0]
    for other in studies[1:]:  # names and folders: the fingerprint compares them too, less readably
        if sorted(other.study['benchmarks'].items()) != sorted(first.study['benchmarks'].items()):
            raise ValueError(f"pooling: study {other.study['name']!r} has benchmarks {other.study['benchmarks']}, "
                             f"study {first.study['name']!r} {first.study['benchmarks']}; pool studies "
                             'evaluated on the same benchmarks')
    for i, one in enumerate(studies):
        for other in studies[i + 1:]:
            shared = sorted(set(one.seeds) & set(other.seeds))
            if shared:
                raise ValueError(f"pooling: seeds {shared} are in both {one.study['name']!r} and "
                                 f"{other.study['name']!r}: a run would count twice; pool studies of disjoint seeds")


def shared_arms(studies: Sequence[Study], finished: Sequence[list[dict]]) -> tuple[list[str], list[str]]:
    """The labels of the arms every study has finished runs of (the first study's order), and of the others.

    A study's option file may list more arms than it ran (a confirmation runs only those picked):
    an arm counts as shared only where every study has a finished run of it. One that a study trains
    differently from another (another budget, data, scores or network: a different ``design``) is
    refused, naming the arm and both studies.
    """
    arms_of = [{arm.label: arm for arm, _ in study.pairs()} for study in studies]
    ran = [{r['arm'] for r in results} for results in finished]
    shared = [label for label in arms_of[0] if all(label in arms and label in done
                                                   for arms, done in zip(arms_of, ran, strict=True))]
    for label in shared:
        designs = {study.study['name']: study.design(arms[label])
                   for study, arms in zip(studies, arms_of, strict=True)}
        if len(set(designs.values())) > 1:
            raise ValueError(f'pooling: arm {label!r} is not the same recipe in every study (fingerprints '
                             f'{designs}): its runs differ in more than the seed, so they are not pooled')
    left_out = sorted(set().union(*ran) - set(shared))
    return shared, left_out


def pooled_results(studies: Sequence[Study], finished: Sequence[list[dict]]) -> tuple[list[dict], list[str]]:
    """Every finished run (``finished``: each study's) of the arms all studies ran; and the finished arms left out."""
    shared, left_out = shared_arms(studies, finished)
    return [r for results in finished for r in results if r['arm'] in shared], left_out


def pooled_note(studies: Sequence[Study], results: list[dict], left_out: list[str]) -> str:
    """The first paragraph of a pooled study.md: which seeds of which study, and what pooling does not test."""
    parts = []
    for study in studies:
        seeds = sorted({r['seed'] for r in results if r['seed'] in study.seeds})
        parts.append(f"{study.study['name']} (seeds {', '.join(map(str, seeds)) or 'none finished'})")
    note = (f'Pooled over {len(studies)} studies: {"; ".join(parts)}. Each arm here has the same training '
            'options, data, subset rule, benchmarks and validation steps in every study, apart from the seed '
            '(wall-clock times may come from other sittings or machines). Where arms were picked as best on the '
            f'seeds of one of these studies (for a confirmation, the first: {studies[0].study["name"]}), a '
            'picked arm\'s pooled mean keeps part of the luck that picked it and its interval does not have '
            'its nominal 95% coverage; the test on fresh seeds is the confirmation\'s own tables. More seeds '
            'usually narrow an interval; they do not remove that bias. The Multiplicity section\'s family is '
            'the comparisons shown here, not the arms the picked ones were chosen from.')
    if left_out:
        note += f' Arms not run in every study, left out: {", ".join(left_out)}.'
    return note


def default_root(study: Study) -> Path:
    """Where the pooled tables of ``study`` and its confirmations go: ``<name>_pooled`` beside its folder."""
    return study.root.parent / f"{study.study['name']}_pooled"


def write_pooled(studies: Sequence[Study], root: str | Path) -> dict[str, Path]:
    """Tables and plots of the pooled runs in ``root`` (a new folder, or one a pooling made before)."""
    _check_poolable(studies)
    finished = [study.finished_results() for study in studies]  # read and checked once
    results, left_out = pooled_results(studies, finished)
    if not results:
        raise FileNotFoundError('pooling: none of the shared arms has a finished run in '
                                + ', '.join(str(s.root) for s in studies))
    root = Path(root)
    check_apart(root, [s.root for s in studies], option='the pooled folder')
    if root.exists() and any(root.iterdir()) and not made_by_us(root, kind=POOLED_KIND):
        raise UnsafeOutputError(f'{root}: holds files that no srprune pooling put there; choose an empty or new '
                                'folder for the pooled tables')
    root.mkdir(parents=True, exist_ok=True)
    if not made_by_us(root, kind=POOLED_KIND):
        write_marker(root, POOLED_KIND)
    for old in root.glob('*.png'):  # plots of arms an earlier pooling had and this one has not
        old.unlink()
    benchmarks = list(studies[0].study['benchmarks'])
    # the first study's B (fixed, or found from its own runs): pooled full-data runs could meet the
    # convergence criterion at another budget and move every comparison away from the one confirmed
    reference = studies[0].reference_iter or reference_budget(finished[0], benchmarks)
    return write_outputs(results, root, benchmarks, note=pooled_note(studies, results, left_out),
                         training_curves=False, reference=reference)
