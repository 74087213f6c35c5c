"""Datasets: every ``*_dataset.py`` here registers itself with BasicSR's DATASET_REGISTRY on import."""

from srprune_basicsr._basicsr.fixes import install_shim
from srprune_basicsr._basicsr.scan import import_by_suffix

install_shim()  # these modules import basicsr, which needs the shim first

_modules = import_by_suffix(__name__, __file__, '_dataset.py')
