# One-command setup: `make demo` and `make test` create .venv/ and install what is missing.
# Order matters: torch first (the pinned release, not whatever pip would pick), then basicsr
# without build isolation (its setup imports torch), then this package in editable mode.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

STAMP_TORCH := $(VENV)/.stamp-torch
STAMP_BASICSR := $(VENV)/.stamp-basicsr
STAMP_PKG := $(VENV)/.stamp-srprune

.PHONY: setup demo test test-fast lint clean

setup: $(STAMP_PKG)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP_TORCH): | $(PY)
	$(PIP) install -q $(TORCH_PINS)
	touch $@

$(STAMP_BASICSR): $(STAMP_TORCH)
	$(PIP) install -q setuptools wheel
	$(PIP) install -q --no-build-isolation basicsr==1.4.2 $(TORCH_PINS)
	touch $@

$(STAMP_PKG): $(STAMP_BASICSR) setup.cfg setup.py pyproject.toml
	$(PIP) install -q --no-build-isolation -e '.[test]' $(TORCH_PINS)
	touch $@

demo: setup
	$(VENV)/bin/srprune demo

test: setup
	$(VENV)/bin/python -m pytest -q -n auto --dist worksteal

test-fast: setup
	$(VENV)/bin/python -m pytest -q -n auto --dist worksteal -m 'not slow'

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) demo_run
