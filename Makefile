# The two commands of the README. Each sets up .venv on first use (torch, torchvision and
# transformers pinned by constraints/ci.txt; about two minutes) and then does its job.
#   make example  - runs example_project's suite through the plugin and prints its report
#   make test     - lints, then runs the plugin's own tests
# CI also runs `make test-oldest`: the torch-range tests on the oldest supported torch, in
# .venv-oldest (constraints/oldest.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.installed
OLDEST := .venv-oldest

.PHONY: example test test-oldest clean

$(READY): pyproject.toml constraints/ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--constraint constraints/ci.txt --editable ".[test]"
	touch $@

example: $(READY)
	cd example_project && ../$(BIN)/python -m pytest

test: $(READY)
	$(BIN)/ruff check pytest_torchscript tests benchmarks example_project
	$(BIN)/python -m pytest -n 2 tests

$(OLDEST)/.installed: pyproject.toml constraints/oldest.txt
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --disable-pip-version-check \
		--constraint constraints/oldest.txt --editable . pytest-xdist
	touch $@

test-oldest: $(OLDEST)/.installed
	$(OLDEST)/bin/python -m pytest -n 2 tests/test_torch_range.py

clean:
	rm -rf $(VENV) $(OLDEST) example_project/build
