# The two commands a fresh machine needs: `make demo` and `make test`.
# Both install from lock files (requirements/*.lock: every package pinned with its hashes),
# then the project itself with --no-deps; pyproject.toml keeps the ranges others depend on.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
RUNTIME_LOCK := requirements/runtime.lock
TEST_LOCK := requirements/test.lock
# One stamp per set: the runtime set is part of the test set, so `make test` after
# `make demo` adds the test tools, and `make demo` after `make test` installs nothing.
RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: demo test lint lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): $(RUNTIME_LOCK) pyproject.toml | $(BIN)/python
	$(PIP) install --quiet --require-hashes -r $(RUNTIME_LOCK)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(TEST_STAMP): $(TEST_LOCK) $(RUNTIME_STAMP)
	$(PIP) install --quiet --require-hashes -r $(TEST_LOCK)
	touch $@

demo: $(RUNTIME_STAMP)
	$(BIN)/portgw demo

# pytest runs on PYTEST_WORKERS processes (pytest-xdist; 0 runs it in this one), more than
# a 2-core machine has cores because the integration tests spend half their time waiting on
# brokers and processes; worksteal keeps each module's tests together until a worker runs
# dry. mypy checks the types beside it, its report kept in a file and printed after pytest's;
# either failing fails the target. pytest exits 5 when it collected no test: say so plainly
# rather than fail obscurely. The suite starts many Python processes (workers, gateways,
# parse workers, commands): each would compile the project again where PYTHONDONTWRITEBYTECODE
# is set, so the tests write their bytecode, under .venv/pycache, leaving the tree as it was.
PYTEST_WORKERS ?= 4
MYPY_REPORT := $(VENV)/mypy-report.txt
TEST_BYTECODE := PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(abspath $(VENV))/pycache

test: $(TEST_STAMP)
	$(BIN)/ruff check .
	@echo "mypy runs beside pytest; its report follows pytest's"
	$(BIN)/mypy > $(MYPY_REPORT) 2>&1 & mypy=$$!; \
	$(TEST_BYTECODE) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; status=0; fi; \
	wait $$mypy; typed=$$?; echo "mypy:"; cat $(MYPY_REPORT); \
	[ $$status -eq 0 ] && [ $$typed -eq 0 ]

# mypy reads what to check and how strictly from [tool.mypy] in pyproject.toml.
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Re-resolves the lock files in a temporary virtualenv (needs nothing installed):
# `make lock` keeps today's pins, `make lock LOCK_ARGS=--upgrade` takes the newest releases.
lock:
	PYTHON=$(PYTHON) scripts/lock.sh $(LOCK_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
