# hashtag-spread: `make demo` and `make test` set themselves up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test test-unit test-integration lint format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[broker,report,test]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/spread demo

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

test-unit: setup
	$(PY) -m pytest -q -m 'not integration'

test-integration: setup
	$(PY) -m pytest -q -m integration

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup
	$(PY) -m bench.throughput
	$(PY) -m bench.formats
	$(PY) -m bench.recovery
	$(PY) -m bench.latency
	$(PY) -m bench.scaleout
	$(PY) -m bench.exporter
	$(PY) -m bench.soak
	$(PY) -m bench.simulate --scale 0.1 --broker-scale 0.02
	$(PY) -m bench.realjob --scale 1

clean:
	rm -rf $(VENV) .spread-data .demo *.egg-info
