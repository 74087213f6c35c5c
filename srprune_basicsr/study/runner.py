"""``srprune study -opt options/study/<name>.yml``: every arm trained with the same budget, evaluated, tabled.

Each (arm, seed) is one ``srprune train`` run (BasicSR's train_pipeline in a subprocess, the option
file made from the study's ``train_options`` template: its network and optimizer, the study's
data, budget, seed, ``seeded_shuffle`` and a cosine schedule), then an evaluation of
``net_g_latest.pth`` on every benchmark (``study.evaluate``). A finished pair leaves
``results/<arm>_s<seed>.json``; a rerun skips those and resumes an interrupted training with
``--auto_resume``, so a long study survives interruption. Subsets are keep lists written with the
same code as ``srprune select`` (``keep/``). Layout under ``studies/<name>/``: ``options/``,
``keep/``, ``scores/``, ``experiments/``, ``results/``, and ``study.csv``, ``study.md``, ``*.png``.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from srprune_basicsr.formats.atomic import (
    MARKER,
    OutputBusyError,
    UnsafeOutputError,
    atomic_write_text,
    check_apart,
    made_by_us,
    write_marker,
)
from srprune_basicsr.formats.keys import backend_of, root_keys
from srprune_basicsr.formats.lmdb import check_intact
from srprune_basicsr.formats.scores import match_dataset, read_scores
from srprune_basicsr.options import check_keys, check_run_name, import_packages, imports_of, load_yaml
from srprune_basicsr.scoring.runner import check_options, run_scoring
from srprune_basicsr.selection import select_keys, write_selection
from srprune_basicsr.study import launcher
from srprune_basicsr.study.arms import Arm, check_arms, distilled_sets, expand_arms, iteration_budgets
from srprune_basicsr.study.evaluate import evaluate_checkpoint

STUDY_KEYS = {'imports', 'name', 'scale', 'train_options', 'network_g', 'data', 'benchmarks', 'budget', 'seeds',
              'keep_ratios', 'methods', 'distilled', 'random_like_distilled', 'num_gpu'}
BUDGET_KEYS = {'total_iter', 'batch_size', 'gt_size', 'num_worker', 'lr', 'schedule', 'checkpoint_freq',
               'compute_arms', 'val_every', 'reference_iter'}


def load_study(path: str | os.PathLike) -> dict:
    """Read and check a study option file; errors name the file and the key."""
    study = load_yaml(path, 'study option file')
    check_keys(study, STUDY_KEYS, str(path))
    import_packages(study, str(path))
    for key in ('name', 'scale', 'train_options', 'data', 'benchmarks'):
        if key not in study:
            raise ValueError(f'{path}: missing key {key!r}')
    check_run_name(study['name'], str(path))  # studies/<name> and every run's experiments/<name>_<arm>_s<seed>
    check_keys(study.get('budget') or {}, BUDGET_KEYS, str(path), 'budget ')
    check_arms(study, str(path))
    validation_interval(study, str(path))
    reference_iter(study, str(path))
    for method, spec in (study.get('methods') or {}).items():
        if not spec or sum(k in spec for k in ('scores', 'score', 'online')) != 1:
            raise ValueError(f'{path}: methods:{method} needs exactly one of "scores" (a scores.csv), "score" '
                             '(score options run on the study data) or "online" (a prune_online: block)')
    if 'debug' in study['name']:
        raise ValueError(f'{path}: "debug" in a name changes BasicSR\'s logging; rename the study')
    return study


def reference_iter(study: dict, source: str) -> int | None:
    """``budget: reference_iter``: the budget B every table compares at, fixed (None: found from full data).

    A study finds B itself (the converged budget, else the largest). Its fresh-seed confirmation
    tests the claims made at that B, so it names B here: with its own full-data runs it could find
    another B and compare everything elsewhere.
    """
    value = (study.get('budget') or {}).get('reference_iter')
    if value is None:
        return None
    budgets = iteration_budgets(study)
    if isinstance(value, bool) or not isinstance(value, int) or value not in budgets:
        raise ValueError(f'{source}: budget:reference_iter must be one of budget:total_iter {budgets}, got {value!r}')
    return value


def validation_interval(study: dict, source: str) -> int | None:
    """``budget: val_every``: every how many steps a run's checkpoint is evaluated (None: only at the end).

    The checkpoints are BasicSR's own (``save_checkpoint_freq`` = ``val_every``), so a ``checkpoint_freq``
    that differs is refused rather than one of the two silently ignored.
    """
    budget = study.get('budget') or {}
    every = budget.get('val_every')
    if every is None:
        return None
    if not isinstance(every, int) or isinstance(every, bool) or every <= 0:
        raise ValueError(f'{source}: budget:val_every must be a positive whole number of steps, got {every!r}')
    if budget.get('checkpoint_freq', every) != every:
        raise ValueError(f"{source}: budget:val_every ({every}) evaluates BasicSR's checkpoints, which then come "
                         f"every val_every steps; budget:checkpoint_freq ({budget['checkpoint_freq']}) differs: "
                         'leave it out or give the same number')
    return every


class Study:
    """One study folder: arms x seeds, each trained once and evaluated once."""

    def __init__(self, study: dict, root: str | os.PathLike | None = None) -> None:
        self.study = study
        self.notes = check_arms(study, f"study {study['name']}")  # before anything trains
        self.root = Path(root or Path('studies') / study['name']).resolve()
        self.scale = int(study['scale'])
        self.seeds = [int(s) for s in study.get('seeds', [0])]
        self.budget = study.get('budget') or {}
        self.val_every = validation_interval(study, f"study {study['name']}")
        self.reference_iter = reference_iter(study, f"study {study['name']}")
        self.keys = root_keys(study['data']['dataroot_gt'])
        self.template = load_yaml(study['train_options'], 'training option file')
        # the study's network_g keys override the template's (e.g. a smaller width, a bicubic skip)
        self.network = {**self.template['network_g'], **(study.get('network_g') or {}), 'upscale': self.scale}
        missing = {name: folder for name, folder in study['benchmarks'].items() if not Path(folder).is_dir()}
        if missing:  # checked before the first arm trains, not after it
            raise FileNotFoundError(f'benchmarks: no such folder(s) {missing}')
        self._check_network(study['train_options'])
        self._scores: dict[str, tuple[np.ndarray, str]] = {}
        self._digests: dict[str, str] = {}
        self._distilled_ratios: dict[str, float] | None = None

    def _check_network(self, template: str) -> None:
        """Build the network once, so a bad ``network_g`` key fails here and not in every training run."""
        from basicsr.archs import build_network

        try:
            build_network(dict(self.network))
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f'network_g (from {template} and the study): cannot build {self.network}: {err}') from None

    # ----------------------------------------------------------------- subsets
    def method_scores(self, method: str) -> tuple[np.ndarray, str]:
        """A method's scores aligned to the study data (running its scorer first if so configured), once."""
        if method not in self._scores:
            self._scores[method] = self._load_scores(method)
        return self._scores[method]

    def _load_scores(self, method: str) -> tuple[np.ndarray, str]:
        spec = self.study['methods'][method]
        path = spec.get('scores')
        if path is None:
            opt = {'name': f'score_{method}', **spec['score'], 'scale': self.scale}
            check_options(opt, f'methods:{method}:score')
            data = self.study['data']
            opt['dataset'] = {'name': 'study', 'type': 'PairedImageDataset', 'dataroot_gt': data['dataroot_gt'],
                              'dataroot_lq': data['dataroot_lq'],
                              'io_backend': {'type': backend_of(data['dataroot_gt'])}}
            out = self.root / 'scores' / f'{method}.csv'
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out.with_suffix('.lock'), 'w') as lock:
                # shards start together: one scores, the others wait here and then reuse its file
                # (two writers would share one .partial name and the second rename would fail)
                fcntl.flock(lock, fcntl.LOCK_EX)
                path = str(run_scoring(opt, out, progress=False, reuse=True, overwrite=True))
        return match_dataset(read_scores(path), self.keys), path

    def keep_file(self, arm: Arm, seed: int) -> Path | None:
        rule = arm.rule(seed)
        if rule is None:
            return None
        if arm.method == 'random':
            scores, source = np.zeros(len(self.keys)), None
        else:
            scores, source = self.method_scores(arm.method)
        out = self.root / 'keep' / f'{arm.slug}_s{seed}.txt'
        write_selection(out, select_keys(self.keys, scores, rule), len(self.keys), rule, source, overwrite=True)
        return out

    # ----------------------------------------------------------------- one run
    def run_name(self, arm: Arm, seed: int) -> str:
        return f"{self.study['name']}_{arm.slug}_s{seed}"

    def training_options(self, arm: Arm, seed: int, keep: Path | None) -> dict:
        opt = json.loads(json.dumps(self.template))
        budget, data = self.budget, self.study['data']
        opt.update(name=self.run_name(arm, seed), manual_seed=seed, scale=self.scale, network_g=dict(self.network))
        if self.study.get('imports'):  # the runs are `srprune train` processes: they import what the study names
            names = imports_of(opt, 'train_options') + imports_of(self.study, 'study')
            opt['imports'] = list(dict.fromkeys(names))
        if 'num_gpu' in self.study:
            opt['num_gpu'] = self.study['num_gpu']
        source = distilled_sets(self.study)[arm.source] if arm.method == 'distilled' else data
        train = opt['datasets']['train']
        train.update(type='PrunedPairedImageDataset' if keep else 'PairedImageDataset', seeded_shuffle=True,
                     dataroot_gt=str(Path(source['dataroot_gt']).resolve()),
                     dataroot_lq=str(Path(source['dataroot_lq']).resolve()),
                     io_backend={'type': backend_of(source['dataroot_gt'])})
        train.pop('prune', None)
        if keep:
            train['prune'] = {'keep': str(keep)}
        opt.pop('prune_online', None)
        if arm.online:
            opt['prune_online'] = dict(arm.online)
        for key, field in (('batch_size', 'batch_size_per_gpu'), ('gt_size', 'gt_size'),
                           ('num_worker', 'num_worker_per_gpu')):
            if key in budget:
                train[field] = budget[key]
        opt['datasets'] = {'train': train}
        opt.pop('val', None)
        budgets = iteration_budgets(self.study)
        total = int(arm.iters or (budgets[0] if budgets else opt['train']['total_iter']))
        opt['train']['total_iter'] = total
        if 'lr' in budget:
            opt['train']['optim_g']['lr'] = float(budget['lr'])
        if budget.get('schedule', 'cosine') == 'cosine':
            opt['train']['scheduler'] = {'type': 'CosineAnnealingRestartLR', 'periods': [total],
                                         'restart_weights': [1], 'eta_min': 1e-7}
        # checkpoints only at the end unless asked: a run cut short then resumes from its last one
        freq = self.val_every or budget.get('checkpoint_freq', total)
        opt['logger'].update(save_checkpoint_freq=int(freq), use_tb_logger=False,
                             print_freq=max(1, total // 20))
        opt['path'] = {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None}
        return opt

    def started(self, arm: Arm, seed: int) -> bool:
        """Whether the run has saved a training state, so ``--auto_resume`` continues it rather than starting it."""
        states = self.root / 'experiments' / self.run_name(arm, seed) / 'training_states'
        return states.is_dir() and any(states.iterdir())

    def train(self, arm: Arm, seed: int, recipe: str) -> Path:
        experiment = self.root / 'experiments' / self.run_name(arm, seed)
        path = self.root / 'options' / f'{arm.slug}_s{seed}.yml'
        stamp = path.with_suffix('.recipe')  # beside the option file: BasicSR archives a fresh run's folder
        if self.started(arm, seed) and stamp.is_file() and stamp.read_text().strip() != recipe:
            raise ValueError(f'{stamp}: --auto_resume would resume a training started with other study options; '
                             f'delete {experiment} (or give the study a new name)')
        keep = self.keep_file(arm, seed)
        opt = self.training_options(arm, seed, keep)
        atomic_write_text(stamp, recipe + '\n')
        launcher.train(launcher.write_option_file(path, opt), self.root)
        return experiment

    @staticmethod
    def logged_seconds(experiment: Path) -> float:
        """Training seconds of a run made in several sittings: each sitting's BasicSR log, first to last line.

        A resumed run's own process saw only its last part; every sitting writes its own
        ``train_*.log`` in the run folder, so their spans add up to the time the run trained (start-up
        and the steps redone after a cut count, as they did for whoever ran it).
        """
        total = 0.0
        for log in sorted(experiment.glob('train_*.log')):
            stamps = [time.mktime(time.strptime(line[:19], '%Y-%m-%d %H:%M:%S'))
                      for line in log.read_text(errors='replace').splitlines()
                      if len(line) > 19 and line[4] == '-' and line[10] == ' ' and line[13] == ':']
            if len(stamps) > 1:
                total += stamps[-1] - stamps[0]
        return round(total, 1)

    def steps_taken(self, arm: Arm, seed: int, experiment: Path) -> int:
        """Training steps the run took: its total_iter, or, online, the steps its prune_online.json counts."""
        if arm.online:
            from srprune_basicsr.online import record

            return int(record.read(experiment / record.FILE)['totals']['steps'])
        return int(self.training_options(arm, seed, None)['train']['total_iter'])

    def evaluate(self, experiment: Path) -> dict:
        return evaluate_checkpoint(self.network, experiment / 'models' / 'net_g_latest.pth',
                                   self.study['benchmarks'], self.scale, self.study.get('num_gpu', 'auto'))

    def curve(self, experiment: Path, steps: int, final: dict) -> list[dict]:
        """Benchmark PSNR along the run: each ``val_every`` checkpoint before the last step, then the final result.

        The intermediate points are PSNR only (SSIM costs as much again and the curves are read for where
        each arm levels off); the last point is the run's own result, so the two never disagree.
        """
        points = []
        for path in sorted((experiment / 'models').glob('net_g_*.pth'), key=lambda p: p.stem):
            step = path.stem.rsplit('_', 1)[1]
            if not step.isdigit() or int(step) >= steps:
                continue
            found = evaluate_checkpoint(self.network, path, self.study['benchmarks'], self.scale,
                                        self.study.get('num_gpu', 'auto'), ssim=False)
            points.append({'steps': int(step), **{name: value['psnr'] for name, value in found.items()}})
        points.sort(key=lambda point: point['steps'])
        return points + [{'steps': steps, **{name: value['psnr'] for name, value in final.items()}}]

    # ----------------------------------------------------------------- all of it
    def pairs(self) -> list[tuple[Arm, int]]:
        """Every (arm, seed) of the study, in the order they run."""
        return [(arm, seed) for arm in expand_arms(self.study, self.distilled_ratios()) for seed in self.seeds]

    def chosen_pairs(self, arms: list[str] | None = None) -> list[tuple[Arm, int]]:
        """The pairs whose arm label matches one of ``arms`` (shell patterns such as ``random@*``; None: all).

        A pattern that matches no arm is an error naming the arms, so a typo does not run nothing.
        """
        pairs = self.pairs()
        if arms is None:
            return pairs
        labels = list(dict.fromkeys(arm.label for arm, _ in pairs))
        for pattern in arms:
            if not any(fnmatch.fnmatchcase(label, pattern) for label in labels):
                raise ValueError(f'--arms {pattern!r} matches no arm of this study; its arms: {labels}')
        return [(arm, seed) for arm, seed in pairs if any(fnmatch.fnmatchcase(arm.label, p) for p in arms)]

    def distilled_ratios(self) -> dict[str, float]:
        """Each distilled set's size as a share of the study data (read once)."""
        if self._distilled_ratios is None:  # a set not made yet has no size (its arms are then left to --arms)
            self._distilled_ratios = {name: len(root_keys(spec['dataroot_gt'])) / len(self.keys)
                                      for name, spec in distilled_sets(self.study).items()
                                      if Path(spec['dataroot_gt']).exists()}
        return self._distilled_ratios

    def result_path(self, arm: Arm, seed: int) -> Path:
        return self.root / 'results' / f'{arm.slug}_s{seed}.json'

    def recipe(self, arm: Arm, seed: int) -> str:
        """A fingerprint of what a run trains (network, optimizer, budget, data, seed, subset rule)."""
        return self._fingerprint(arm, seed, self.training_options(arm, seed, None))

    def design(self, arm: Arm) -> str:
        """A fingerprint of what an arm trains whatever its seed and run name (both set alike).

        Two studies whose arm has the same design ran the same recipe on other seeds, so their runs
        can be pooled (``study.pooling``).
        """
        opt = self.training_options(arm, 0, None)
        opt.pop('name')  # the run name carries the study name
        # the checkpoints validated along a run: pooled runs must share them (best-checkpoint tables)
        opt['checkpoint_every'] = opt['logger']['save_checkpoint_freq']
        return self._fingerprint(arm, 0, opt)

    def _fingerprint(self, arm: Arm, seed: int, opt: dict) -> str:
        """The digest of ``opt`` (the training options as the caller wants them compared; changed here),
        the subset rule of ``seed``, the method's options and the benchmarks."""
        opt.pop('logger')  # checkpoint and print frequencies do not change what is trained
        spec = (self.study.get('methods') or {}).get(arm.method) or {}
        # more bands or ratios add arms; they do not change the runs already made
        method = {key: value for key, value in spec.items() if key not in ('bands', 'keep_ratios')}
        if 'scores' in method:  # the file's content, not its name: rescoring changes every subset
            method['scores'] = self._file_digest(method['scores'])
        text = json.dumps([opt, str(arm.rule(seed)), method, sorted(self.study['benchmarks'].items())], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _file_digest(self, path: str) -> str:
        if path not in self._digests:
            self._digests[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return self._digests[path]

    @staticmethod
    def _check_recipe(path: Path, recipe: str) -> None:
        """A finished result counts only if the option file still describes the run that made it."""
        made = json.loads(path.read_text()).get('recipe')
        if made != recipe:
            raise ValueError(f'{path}: made with other study options (recipe {made}, now {recipe}): the budget, '
                             'network, data, seeds, scores or benchmarks changed; give the study a new name or '
                             'delete its results/ folder')

    def claim_root(self) -> None:
        """The study folder is new or a study's (marked), and holds none of its inputs."""
        data = self.study['data']
        inputs = [data.get('dataroot_gt'), data.get('dataroot_lq'), *self.study['benchmarks'].values(),
                  *(spec[k] for spec in distilled_sets(self.study).values() for k in ('dataroot_gt', 'dataroot_lq'))]
        check_apart(self.root, inputs, option='the study folder')
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with open(self.root.parent / f'.{self.root.name}.claim', 'w') as claim:
            fcntl.flock(claim, fcntl.LOCK_EX)  # shards started together: one makes and marks the folder
            if self.root.exists() and any(self.root.iterdir()) and not made_by_us(self.root, kind='study'):
                raise UnsafeOutputError(f'{self.root}: the study folder holds files srprune did not put there (no '
                                        f'{MARKER} of a study inside); choose an empty or new --root')
            self.root.mkdir(exist_ok=True)
            if not made_by_us(self.root, kind='study'):
                write_marker(self.root, 'study')

    def definition(self) -> str:
        """A digest of the whole study option file: the shards of one study share it, another study does not."""
        return hashlib.sha256(json.dumps(self.study, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def hold_definition(self) -> None:
        """Refuse to share the folder with a running study of the same name and other options; hold it for this one.

        Shards of one study run side by side in one folder and each writes the tables of every finished
        run; a study with other options (say other seeds) under the same name would write tables of its
        own runs only, over theirs. Each running study holds a shared lock on the file of its
        definition's digest for its whole life (released by the system however the process ends), and
        a study with another digest finding one of those held is refused. Run one after the other,
        they are allowed as before: more bands or seeds add runs.
        """
        if getattr(self, '_definition_lock', None) is not None:
            return
        mine = self.root / f'.definition-{self.definition()}.lock'
        with open(self.root.parent / f'.{self.root.name}.claim', 'w') as claim:
            fcntl.flock(claim, fcntl.LOCK_EX)  # one study at a time checks and takes its lock
            for other in sorted(self.root.glob('.definition-*.lock')):
                if other != mine and self._held_elsewhere(other):
                    raise OutputBusyError(f'{self.root}: a study of the same name ({self.study["name"]!r}) with other '
                                          f'options is running in this folder (its options: {other}); its tables '
                                          'and this one\'s would replace each other. Wait until it ends, or give this '
                                          'study another name or --root')
            handle = open(mine, 'a+')  # noqa: SIM115 - kept open: the lock lives as long as the process
            fcntl.flock(handle, fcntl.LOCK_SH)
            if handle.tell() == 0:
                handle.write(json.dumps(self.study, sort_keys=True, default=str, indent=1) + '\n')
                handle.flush()
        self._definition_lock = handle

    @staticmethod
    def _held_elsewhere(lock: Path) -> bool:
        with open(lock) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
        return False

    def check_inputs(self, shard: tuple[int, int] = (0, 1), arms: list[str] | None = None) -> None:
        """Every input an unfinished run of this shard reads is checked before the first run trains.

        The distilled sets must be intact LMDBs or folders; each run's subset is selected now (reading,
        or first computing, the method's scores and any texture scores), so a bad score file, a
        texture file of another dataset or a rule that cannot apply stops the study at its start,
        not after hours of other arms.
        """
        chosen = self.chosen_pairs(arms)
        needed = {arm.source for arm, _ in chosen if arm.method == 'distilled'}
        for name, spec in distilled_sets(self.study).items():
            if arms is not None and name not in needed:
                continue
            for key in ('dataroot_gt', 'dataroot_lq'):
                where = f"distilled:{name + ':' if name else ''}{key}"
                if not Path(spec[key]).exists():
                    raise FileNotFoundError(f'{where} {spec[key]}: no such file or folder')
                check_intact(Path(spec[key]))
        index, count = shard
        for number, (arm, seed) in enumerate(chosen):
            if number % count != index or self.result_path(arm, seed).is_file():
                continue
            try:
                self.keep_file(arm, seed)
            except FileNotFoundError as err:
                raise FileNotFoundError(f'{arm.label} seed {seed}: {err}') from None
            except ValueError as err:
                raise ValueError(f'{arm.label} seed {seed}: {err}') from None

    def run(self, log: bool = True, shard: tuple[int, int] = (0, 1), arms: list[str] | None = None) -> list[dict]:
        """Train and evaluate every unfinished pair of this shard, then table all results present.

        ``shard = (i, n)`` runs pairs i, i + n, i + 2n, ...: n processes (one per GPU, or several
        small models on one) share a study without a scheduler; the tables count every result file
        in the folder, so the last shard to finish (or a plain rerun) writes the complete ones.
        ``arms`` (label patterns) runs those arms only, e.g. the random yardstick before any rule.
        """
        index, count = shard
        self.claim_root()
        self.hold_definition()
        self.check_inputs(shard, arms)
        if log:
            for note in self.notes:
                print(note, flush=True)
        for number, (arm, seed) in enumerate(self.chosen_pairs(arms)):
            out = self.result_path(arm, seed)
            if number % count != index:
                continue
            recipe = self.recipe(arm, seed)
            if out.is_file():
                self._check_recipe(out, recipe)
                if log:
                    print(f'{arm.label} seed {seed}: done before, skipped', flush=True)
                continue
            resumed = self.started(arm, seed)
            started = time.perf_counter()
            experiment = self.train(arm, seed, recipe)
            seconds = self.logged_seconds(experiment) if resumed else round(time.perf_counter() - started, 1)
            steps, final = self.steps_taken(arm, seed, experiment), self.evaluate(experiment)
            record = {'arm': arm.label, 'method': arm.method, 'keep_ratio': arm.keep_ratio, 'band': arm.band,
                      'seed': seed, 'iters': arm.iters, 'recipe': recipe, 'online': bool(arm.online),
                      'steps': steps, 'train_seconds': seconds, 'resumed': resumed, 'benchmarks': final}
            if self.val_every:
                record['curve'] = self.curve(experiment, steps, final)
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out, json.dumps(record, indent=2) + '\n')
            if log:
                scores = ', '.join(f"{b} {v['psnr']:.3f}" for b, v in record['benchmarks'].items())
                print(f'{arm.label} seed {seed}: {scores}', flush=True)
        return self.tables(log)

    def finished_results(self) -> list[dict]:
        """The result record of every finished run in the folder (all shards'), each checked against its recipe."""
        results = []
        for arm, seed in self.pairs():
            out = self.result_path(arm, seed)
            if out.is_file():
                self._check_recipe(out, self.recipe(arm, seed))
                results.append(json.loads(out.read_text()))
        return results

    def tables(self, log: bool = True, refuse_empty: bool = False) -> list[dict]:
        """Table every finished run in the folder (all shards' results, each checked); train nothing.

        ``refuse_empty`` (``--tables``): a study with no finished run is an error, and nothing is written.
        """
        from srprune_basicsr.study.tables import write_outputs

        if refuse_empty and not any(self.result_path(arm, seed).is_file() for arm, seed in self.pairs()):
            raise FileNotFoundError(f'{self.root}: no finished run of this study yet, so no tables to write '
                                    '(run the study first, or give its --root)')
        if refuse_empty:  # --tables alone: not over the tables of a running study with other options
            self.hold_definition()
        results = self.finished_results()
        write_outputs(results, self.root, list(self.study['benchmarks']), reference=self.reference_iter)
        missing = len(self.pairs()) - len(results)
        if missing and log:
            print(f'{missing} of {len(self.pairs())} runs not finished yet (other shards?): tables are partial',
                  flush=True)
        return results
