# The commands of the README: `make run`, `make test` (the fast tier), `make test-all` (both tiers: CI) and `make
# dist`. Each sets up what it needs, from nothing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKLOAD ?= resnet18
RUN_ARGS ?=
PYTEST_ARGS ?=
DIST ?= dist
# Which torch build goes into $(VENV): empty (the default) keeps the build recorded in $(VENV)/torch-build, and on
# first use is auto; auto (an NVIDIA GPU present: the stack's CUDA build, else the CPU build, or PyPI's wheel where no
# CPU build can be had), cpu or cuda. See scripts/torch-build.sh.
TORCH_BUILD ?=
# Every test run ends with its 15 slowest tests: where the time went, in every CI log. The tests run in
# TEST_PROCESSES parallel processes (pytest-xdist): most of a test's time is spent waiting on the processes it starts
# (dlbench, torchrun, Prometheus, Chromium, ansible-playbook), so more processes than cores keep the cores busy; the
# tests that share an expensive fixture go to one process together (tests/conftest.py). TEST_PROCESSES=0: one process.
TEST_PROCESSES ?= 4
PYTEST := $(BIN)/python -m pytest --durations=15 -n $(TEST_PROCESSES) --dist loadgroup

.PHONY: run test test-all test-deps torch dist clean

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

# The system tools of the tier a target runs: `make test` does not install buildah, debootstrap, gnupg or docker.io,
# which only the slow tier uses (a target's variable holds for its prerequisites: GNU make, "Target-specific Variable
# Values").
TEST_TIER ?= all
test: TEST_TIER = fast
test-all: TEST_TIER = all
test-deps:
	./scripts/install-test-deps.sh $(TEST_TIER)

# The fast tier: everything but the tests marked slow (tests/conftest.py). pytest's exit 5 (no test selected) gets
# a line saying why: PYTEST_ARGS chose only slow tests.
test: torch $(VENV)/.installed-test test-deps
	@echo '$(PYTEST) -m "not slow" $(PYTEST_ARGS)'
	@$(PYTEST) -m "not slow" $(PYTEST_ARGS) || { status=$$?; [ $$status -ne 5 ] || echo "make test: no test of" \
		"the fast tier matches PYTEST_ARGS; make test-all PYTEST_ARGS='...' runs the slow tier too" >&2; exit $$status; }

# Both tiers in one session (the slow tier's image build is shared by its tests): what .ci/run runs.
test-all: torch $(VENV)/.installed-test test-deps
	$(PYTEST) $(PYTEST_ARGS)

# The wheel and sdist of dlbench in $(DIST)/, built by PyPA's build in an isolated environment: the wheel is what the
# playbooks install on the hosts (conda_dlbench_wheel, monitoring_dlbench_wheel; docs/testing.md).
$(VENV)/.installed-dist: $(BIN)/python
	$(BIN)/pip install --quiet build
	touch $@

dist: $(VENV)/.installed-dist
	rm -rf $(DIST)
	$(BIN)/python -m build --outdir $(DIST) .

clean:
	rm -rf $(VENV) .pytest_cache build $(DIST) *.egg-info
