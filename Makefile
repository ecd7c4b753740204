# Two commands do everything on a fresh machine:
#   make          install what instructors need (the runtime only), build the assignment and grade
#                 the reference solution
#   make test     add the development tools (pytest, Playwright, OpenCC, ...) and run the whole test
#                 suite (make test-fast: the quick subset)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Each stamp says what the venv holds; the dev stamp implies the runtime one.
RUNTIME_STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: all setup setup-dev lock build test test-fast wheel clean

all: setup
	@command -v bwrap >/dev/null || echo "note: bubblewrap is not installed; grading students' notebooks locally needs it (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap)"
	$(BIN)/fashion-kit assign

setup: $(RUNTIME_STAMP)

setup-dev: $(DEV_STAMP)

$(VENV)/bin/python:
	@$(PYTHON) tools/check_python.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	@echo "installing the kit and its pinned packages (TensorFlow, Otter-Grader...) into $(VENV): a minute or two"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP)
	@echo "installing the development tools (pytest, Playwright, Dask...) into $(VENV)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# constraints.txt: every package of the runtime and of the extras, pinned, resolved from pyproject.toml
# by pip-tools through pip's own configuration (its index, mirror and find-links), keeping each pin
# that still fits. After changing a dependency in pyproject.toml: make lock, then commit both.
# `make lock LOCK_OPTIONS=--upgrade` moves every pin to the newest release that fits. setuptools is
# pinned (TensorFlow needs it at run time); pip and the kit itself are not. No hashes: a hash in a
# constraints file turns on pip's hash-checking mode for the whole install, which then refuses the
# kit itself (`-e .`, or a cluster worker's wheel) as a requirement it cannot hash.
LOCK_OPTIONS ?=
lock: setup-dev
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras --all-extras \
		--unsafe-package pip --unsafe-package fashion-kit --no-emit-index-url --no-emit-find-links \
		$(LOCK_OPTIONS) --output-file constraints.txt pyproject.toml

# A suite in two parts, both run and either failing it: the tests selected by $(1) on $(2) of
# pytest-xdist's workers, distributed by $(3) (the workers share one build of the assignment), then
# those of them that keep every core busy on purpose, by themselves: beside the others they would
# slow them all and time themselves against a load that keeps changing.
define suite
	status=0; \
	$(BIN)/python -m pytest -m "$(1)not busy" -n $(2) --dist $(3) || status=$$?; \
	$(BIN)/python -m pytest -m "$(1)busy" || status=$$?; \
	exit $$status
endef

# The whole suite. loadgroup: the tests that grade through the session's grader run on one worker,
# whose pool grades two notebooks at a time, while the others run the rest (tests/conftest.py).
TEST_JOBS ?= 3
test: setup-dev
	$(call suite,,$(TEST_JOBS),loadgroup)

# The quick subset, for everyday work.
FAST_JOBS ?= auto
test-fast: setup-dev
	$(call suite,not slow and ,$(FAST_JOBS),worksteal)

# The kit as a wheel, for the machines that only grade (a cluster's workers): the kit is on no package
# index; docs/grading-on-a-cluster.md says how a worker installs it.
DIST ?= dist
wheel: | $(VENV)/bin/python
	rm -f $(DIST)/fashion_kit-*.whl
	$(BIN)/python -m pip wheel --quiet --no-deps . -w $(DIST)

clean:
	rm -rf $(VENV) build .pytest_cache dist
