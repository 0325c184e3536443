# The two commands of the README. Each sets up .venv on first use (torch, torchvision and
# transformers pinned by constraints/ci.txt; about two minutes) and then does its job.
#   make example  - runs example_project's suite through the plugin and prints its report
#   make test     - lints, builds the docs (warnings as errors), runs the plugin's own tests
#   make docs     - regenerates docs/configuration.md and docs/benchmarks.md, builds the site
# CI also runs `make test-oldest`: the torch-range tests on the oldest supported torch, in
# .venv-oldest (constraints/oldest.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.installed
OLDEST := .venv-oldest

.PHONY: example test test-oldest docs clean

$(READY): pyproject.toml constraints/ci.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--constraint constraints/ci.txt --editable ".[test]"
	touch $@

example: $(READY)
	cd example_project && ../$(BIN)/python -m pytest

test: $(READY)
	$(BIN)/ruff check pytest_torchscript tests benchmarks example_project scripts
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest -n 2 tests

docs: $(READY)
	$(BIN)/python -m pytest_torchscript.config.reference docs/configuration.md
	$(BIN)/python scripts/render_benchmarks.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

$(OLDEST)/.installed: pyproject.toml constraints/oldest.txt
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --disable-pip-version-check \
		--constraint constraints/oldest.txt --editable . pytest-xdist
	touch $@

test-oldest: $(OLDEST)/.installed
	$(OLDEST)/bin/python -m pytest -n 2 tests/test_torch_range.py

clean:
	rm -rf $(VENV) $(OLDEST) example_project/build
