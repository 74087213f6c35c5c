"""Auto-registration: BasicSR's entry points load the plugin with no import added (the installed package)."""

import shutil
import sys
import sysconfig
from pathlib import Path

import basicsr
import pytest
from conftest import latest_log, run_cli, train_options, write_options

PROBE = ('import sys, basicsr, basicsr.data; from basicsr.utils.registry import DATASET_REGISTRY; '
         "print('registered', 'PrunedPairedImageDataset' in DATASET_REGISTRY._obj_map); "
         "print('wrapped', hasattr(basicsr.data.build_dataset, '__wrapped__'))")


def python(code: str, cwd: Path, **env: str):  # noqa: ANN201
    return run_cli(['-c', code], cwd, launcher=[sys.executable], **env)


def test_the_pth_file_is_installed_in_site_packages() -> None:
    pth = Path(sysconfig.get_paths()['purelib']) / 'srprune_basicsr-autoload.pth'
    assert pth.read_text().strip() == 'import srprune_basicsr_autoload; srprune_basicsr_autoload.install()'


def test_import_basicsr_alone_plugs_in(tmp_path: Path) -> None:
    proc = python(PROBE, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'registered True' in proc.stdout and 'wrapped True' in proc.stdout


def test_switched_off_basicsr_fails_as_it_does_without_the_plugin(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv('SRPRUNE_AUTOLOAD', '0')
    proc = python(PROBE, tmp_path)
    assert proc.returncode != 0
    assert "No module named 'torchvision.transforms.functional_tensor'" in proc.stderr


def test_a_process_without_basicsr_loads_nothing_heavy(tmp_path: Path) -> None:
    proc = python("import sys, json; print(sorted(m for m in ('torch', 'srprune_basicsr', 'basicsr') "
                  "if m in sys.modules)); print(type(sys.meta_path[0]).__name__)", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['[]', 'BasicsrFinder']


def test_an_error_while_plugging_in_names_the_switch(tmp_path: Path) -> None:
    # the package is imported as the finder does (plug-in deferred), its plug-in broken, then basicsr imported
    (tmp_path / 'clash.py').write_text(
        'import srprune_basicsr_autoload as autoload\n'
        'autoload.loading = True\n'
        'from srprune_basicsr import plugin\n'
        'autoload.loading = False\n'
        'def broken():\n    raise RuntimeError("boom")\n'
        'plugin._plug = broken\n'
        'import basicsr\n')
    proc = python('import clash', tmp_path)
    assert proc.returncode != 0
    assert 'boom' in proc.stderr and 'SRPRUNE_AUTOLOAD=0' in proc.stderr


@pytest.mark.slow
def test_a_clones_train_py_prunes_and_counts_epochs(tiny_data: Path, tmp_path: Path) -> None:
    """``python basicsr/train.py -opt X.yml`` in a BasicSR clone: train.py runs as __main__, a copy the hooks adopt."""
    clone = tmp_path / 'BasicSR'
    (clone / 'basicsr').mkdir(parents=True)
    shutil.copy(Path(basicsr.__file__).parent / 'train.py', clone / 'basicsr' / 'train.py')
    # 16 samples, batch 6: BasicSR alone plans too few epochs to reach 12 iterations (see test_compat)
    opt = train_options(tiny_data, 'clone_run', total_iter=12)
    opt['datasets']['train'].update(batch_size_per_gpu=6, prune={'score': {'method': 'sobel'}, 'keep_ratio': 0.75})
    opt['logger']['save_checkpoint_freq'] = 100
    write_options(clone / 'options.yml', opt)
    proc = run_cli(['basicsr/train.py', '-opt', 'options.yml'], clone, launcher=[sys.executable])
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = latest_log(clone / 'experiments' / 'clone_run')
    assert 'kept 12 of 16 samples' in log
    assert 'iter:      12,' in log


def test_probing_for_basicsr_keeps_the_finder(tmp_path: Path) -> None:
    probe = PROBE.replace('import sys, ', 'import ')
    proc = python(f"import importlib.util; importlib.util.find_spec('basicsr'); {probe}", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'registered True' in proc.stdout


def test_basicsr_keeps_its_own_loader_and_its_package_names_are_wrapped(tmp_path: Path) -> None:
    proc = python('import basicsr; print(type(basicsr.__loader__).__name__); '
                  "print(hasattr(basicsr.build_dataset, '__wrapped__'), hasattr(basicsr.build_model, '__wrapped__'))",
                  tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ['SourceFileLoader', 'True', 'True']


def test_a_users_own_main_functions_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / 'mine.py').write_text(
        'import basicsr.utils.options as options\n'
        'def create_train_val_dataloader(opt, logger):\n    return "mine"\n'
        "print(options.parse_options.__name__, create_train_val_dataloader(None, None))\n"
        'from srprune_basicsr._basicsr.hooks import adopt_main\n'
        'print(adopt_main(), create_train_val_dataloader(None, None))\n')
    proc = run_cli(['mine.py'], tmp_path, launcher=[sys.executable])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ['parse_options', 'mine', '[]', 'mine']
