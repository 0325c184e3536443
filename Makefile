# The two commands of the README. Each sets up .venv on first use (torch, torchvision and
# transformers pinned by constraints/ci.txt; about two minutes) and then does its job.
#   make example  - runs example_project's suite through the plugin and prints its report
#   make test     - lints, then runs the plugin's own tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.installed

.PHONY: example test clean

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

clean:
	rm -rf $(VENV) example_project/build
