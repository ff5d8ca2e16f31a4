# Two entry points (see README): `make demo` and `make test`. Both build everything from nothing:
# a virtualenv with the pinned Python requirements and the pinned CDK CLI from package.json.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONPATH := $(CURDIR)

.PHONY: setup demo emulator test lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt runtime/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

demo: setup
	$(PY) -m devtools.demo

# The local AWS emulator on its own, with the sample layout; it prints the variables to export (README).
emulator: setup
	$(PY) -m devtools.emulator --sandbox

# The suite runs on every core (pytest-xdist); servers bind free loopback ports, so workers never clash.
test: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -n auto

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: setup
	$(PY) benchmarks/processing_bench.py

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache
