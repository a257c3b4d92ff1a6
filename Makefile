# The two commands of the README: `make run` and `make test`. Each sets up what it needs, from nothing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKLOAD ?= resnet18
RUN_ARGS ?=
PYTEST_ARGS ?=
# Which torch build goes into $(VENV): auto (an NVIDIA GPU present: the stack's CUDA build, else the CPU build),
# cpu or cuda. See scripts/torch-build.sh.
TORCH_BUILD ?= auto

.PHONY: run test test-deps torch clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runs every time: says which build this machine gets and why, and installs it only where it is missing. Before
# dlbench's install, so that pip finds torch satisfied rather than fetching PyPI's default (CUDA) build.
torch: $(BIN)/python
	@./scripts/torch-build.sh install $(BIN)/python $(TORCH_BUILD)

# dlbench and what `dlbench run` needs, torch pinned by constraints.txt (from stack.yml)
$(VENV)/.installed-run: $(BIN)/python pyproject.toml constraints.txt | torch
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train]'
	touch $@

# ... plus what the tests drive (pytest, ansible, linters)
$(VENV)/.installed-test: $(BIN)/python pyproject.toml constraints.txt | torch
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train,test]'
	touch $@

run: torch $(VENV)/.installed-run
	$(BIN)/dlbench run $(WORKLOAD) $(RUN_ARGS)

test-deps:
	./scripts/install-test-deps.sh

test: torch $(VENV)/.installed-test test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
