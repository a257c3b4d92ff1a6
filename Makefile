# The two commands of the README: `make run` and `make test`. Each sets up what it needs, from nothing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKLOAD ?= resnet18
RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test test-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# dlbench and its runtime dependencies, torch pinned by constraints.txt (from stack.yml)
$(VENV)/.installed-run: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train]'
	touch $@

# ... plus what the tests drive (pytest, ansible, linters)
$(VENV)/.installed-test: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train,test]'
	touch $@

run: $(VENV)/.installed-run
	$(BIN)/dlbench run $(WORKLOAD) $(RUN_ARGS)

test-deps:
	./scripts/install-test-deps.sh

test: $(VENV)/.installed-test test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
