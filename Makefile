# Set-up is one file-stamped step: `.venv` is created and filled from requirements.lock once;
# later calls reuse it until the lock file or pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test test-unit test-all test-slurm lint format docs package install clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.lock
	$(VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/raygap study run studies/flt.yaml --overwrite --report

# PYTHONFAULTHANDLER: a crash, also one at interpreter exit, prints every thread's stack.
test: $(STAMP)
	PYTHONFAULTHANDLER=1 $(VENV)/bin/python -m pytest -q

# The fast loop: tests/unit (no Ray, no subprocess, no network), about 2 minutes on 2 cores.
test-unit: $(STAMP)
	PYTHONFAULTHANDLER=1 $(VENV)/bin/python -m pytest -q tests/unit

# A study in a real two-node SLURM allocation (needs Debian's slurmctld, slurmd and munge; .ci/run installs them).
test-slurm: $(STAMP)
	PYTHONFAULTHANDLER=1 $(VENV)/bin/python -m pytest -q -m slow tests/integration/test_slurm_cluster.py

test-all: $(STAMP)
	PYTHONFAULTHANDLER=1 $(VENV)/bin/python -m pytest -q -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check raygap tests
	$(VENV)/bin/ruff format --check raygap tests
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix raygap tests
	$(VENV)/bin/ruff format raygap tests

# The docs site (docs/_build/html/index.html); the study-file and metrics references are generated
# from the code as it builds. Any warning fails it.
docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

# Packaging as a user installs it: the sdist and the wheel, the wheel installed into a fresh virtual
# environment outside the checkout (dependencies from the lock), then `raygap --version` and a tiny train.
package: $(STAMP)
	rm -rf dist
	$(VENV)/bin/python -m build --no-isolation --outdir dist .
	bash .ci/check-wheel dist

clean:
	rm -rf $(VENV) build dist *.egg-info
