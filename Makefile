# Set-up is one file-stamped step: `.venv` is created and filled from requirements.lock once;
# later calls reuse it until the lock file or pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test test-all lint format install clean

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

test-all: $(STAMP)
	PYTHONFAULTHANDLER=1 $(VENV)/bin/python -m pytest -q -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check raygap tests
	$(VENV)/bin/ruff format --check raygap tests
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix raygap tests
	$(VENV)/bin/ruff format raygap tests

clean:
	rm -rf $(VENV) build *.egg-info
