"""``srprune train`` / ``srprune test``: BasicSR's own ``train_pipeline`` / ``test_pipeline`` with the plugin.

Arguments go to BasicSR's parser untouched (so every BasicSR flag works), with the current
directory as root: ``experiments/``, ``tb_logger/`` and ``results/`` appear where the user is.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from srprune_basicsr.plugin import plug_in

EPILOG_TRAIN = 'example: srprune train -opt options/train/train_SRCNN_x2.yml --auto_resume'
EPILOG_TEST = 'example: srprune test -opt options/test/test_SRCNN_x2.yml'
BASICSR_FLAGS = ('Every flag of BasicSR\'s train.py/test.py is accepted: -opt, --launcher {none,pytorch,slurm}, '
                 '--auto_resume, --debug, --local_rank, --force_yml key:sub=value ...')


def basicsr_argv(args: Sequence[str]) -> list[str]:
    """BasicSR's parser only knows ``--local_rank``; torch.distributed.launch passes ``--local-rank``."""
    return [a.replace('--local-rank', '--local_rank', 1) if a.startswith('--local-rank') else a for a in args]


def run_basicsr_pipeline(pipeline: Callable[[str], None], prog: str, args: Sequence[str]) -> int:
    """Run a BasicSR pipeline on ``args`` as if they were its own command line, rooted at the cwd."""
    saved = sys.argv
    sys.argv = [prog, *basicsr_argv(args)]
    try:
        pipeline(os.getcwd())
    finally:
        sys.argv = saved
    end_process_group()
    return 0


def end_process_group() -> None:
    """Wait for every rank, then tear the process group down before the interpreter does.

    BasicSR's pipelines never destroy the group they start; left to the interpreter's exit, a gloo
    group's threads may still be running when their C++ objects are destroyed, and that rank aborts
    ("terminate called without an active exception") after training ended, so a finished torchrun
    job exits non-zero. A rank that failed raises before here, and torchrun ends the others.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    plug_in()  # compat fixes + registration before BasicSR runs
    from basicsr.train import train_pipeline

    from srprune_basicsr._basicsr.runs import restored_on_refusal
    from srprune_basicsr.cli.errors import refused_by_plugin
    from srprune_basicsr.preflight import check_training_options, option_file_of

    option_file, forced = option_file_of(rest)
    if not option_file:
        return run_basicsr_pipeline(train_pipeline, 'srprune train', rest)
    opt = check_training_options(option_file, forced)  # before BasicSR creates experiments/<name>
    with restored_on_refusal(Path.cwd(), experiment_name(opt, rest), refused_by_plugin):  # checks after it
        return run_basicsr_pipeline(train_pipeline, 'srprune train', rest)


def experiment_name(opt: dict, args: Sequence[str]) -> str:
    """The experiment name BasicSR's parse_options will use (``--debug`` prefixes ``debug_``)."""
    name = str(opt.get('name'))
    return f'debug_{name}' if '--debug' in args and not name.startswith('debug') else name


def cmd_test(args: argparse.Namespace, rest: list[str]) -> int:
    plug_in()
    from basicsr.test import test_pipeline

    from srprune_basicsr.preflight import check_training_options, option_file_of

    option_file, forced = option_file_of(rest)
    if option_file:
        check_training_options(option_file, forced)

    return run_basicsr_pipeline(test_pipeline, 'srprune test', rest)


def add_parsers(sub: argparse._SubParsersAction, fmt: type) -> dict[str, argparse.ArgumentParser]:
    """Help-only sub-parsers: the arguments themselves are BasicSR's."""
    return {name: sub.add_parser(name, help=f"BasicSR's {name}_pipeline with the plugin", description=BASICSR_FLAGS,
                                 epilog=epilog, formatter_class=fmt, add_help=False)
            for name, epilog in (('train', EPILOG_TRAIN), ('test', EPILOG_TEST))}
