# Two entry points (see README): `make demo` and `make test`. Both build everything from nothing:
# a virtualenv installed from the hash-locked requirements-dev.txt and the pinned CDK CLI from package.json.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The lock tool lives in its own venv: `make setup` never needs it, only `make lock` does.
LOCK_VENV := .lockvenv
UV_VERSION := 0.13.9
UV := $(LOCK_VENV)/bin/uv
# --universal: one lock for Linux, macOS and Windows (markers); 3.11 is the image's and the oldest supported.
# Pins already in a lock are kept unless its input changed; `make lock UPGRADE="--upgrade-package botocore"`
# (or UPGRADE=--upgrade) moves them on purpose.
UPGRADE ?=
COMPILE := $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(UPGRADE)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONPATH := $(CURDIR)

.PHONY: setup lock demo emulator deploy-local test lint bench doc-figures clean

$(VENV)/.installed: requirements.txt requirements-dev.txt runtime/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

$(UV):
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

# Refresh the three locks from their *.in inputs. The dev lock first; the CDK and image locks are
# constrained to it, so they never hold a version the test suite did not run with.
lock: $(UV)
	$(COMPILE) requirements-dev.in -o requirements-dev.txt
	$(COMPILE) requirements.in -c requirements-dev.txt -o requirements.txt
	$(COMPILE) runtime/requirements.in -c requirements-dev.txt -o runtime/requirements.txt

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

demo: setup
	$(PY) -m devtools.demo

# One local world: the sample app synthesized and deployed on the emulator, the fake Graph, every service
# running; it prints the variables to export for an operator and for each service (README).
emulator: setup
	$(PY) -m devtools.local_run

# Synthesize the sample app into cdk.out, deploy every stack on a fresh emulator, print what was deployed
# per stack (created, applied by API, recorded) and compare it with the templates; non-zero on any failure.
deploy-local: setup
	CDK_OUTDIR=cdk.out $(PY) app.py
	$(PY) -m devtools.local_deploy --assembly cdk.out --world cdk.out/local-world.json

# The suite runs two pytest-xdist workers per core (a module per worker, longest first: pyproject.toml and
# tests/conftest.py): the end-to-end modules spend much of their time waiting for the processes they
# started, so one worker per core left a third of the cores idle. Servers bind free loopback ports, so
# workers never clash. `make test TEST_WORKERS=1` for a quiet machine.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
test: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -n $(TEST_WORKERS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: setup
	$(PY) benchmarks/processing_bench.py

# Rewrite every <!-- figure:NAME --> span of README.md and docs/*.md from one synthesis of the sample app.
doc-figures: setup
	$(PY) -m devtools.doc_figures

clean:
	rm -rf $(VENV) $(LOCK_VENV) node_modules cdk.out .pytest_cache
