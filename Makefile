# The two commands of the README: `make run` and `make test`. Each sets up what it needs, from nothing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKLOAD ?= resnet18
RUN_ARGS ?=

.PHONY: run test test-deps venv clean

$(BIN)/dlbench: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

venv: $(BIN)/dlbench

run: venv
	$(BIN)/dlbench run $(WORKLOAD) $(RUN_ARGS)

test-deps:
	./scripts/install-test-deps.sh

test: venv test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
