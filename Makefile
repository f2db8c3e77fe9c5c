# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := --quiet --disable-pip-version-check

# requirements.lock: the exact version and sha256 hashes of every package (transitive, test extras and
# the build backend included), resolved for CPython 3.11 on Linux x86_64. pyproject.toml keeps the
# compatible ranges; the lock is what gets installed. Regenerate it with `make lock` (keeps the pins
# that still fit) or `make lock UPGRADE=1` (newest releases the ranges allow), then commit it.
LOCK := requirements.lock
# pip-compile (pip-tools) lives in its own venv, made by `make lock` only: never on the install/CI path.
LOCK_VENV ?= .venv-lock
PIP_TOOLS ?= pip-tools==7.6.2
LOCK_FLAGS := --extra test --all-build-deps --allow-unsafe --generate-hashes --strip-extras \
	--no-emit-index-url --no-emit-find-links --constraint lock-constraints.txt

.PHONY: install lock demo test lint benchmark clean

# --require-hashes: pip refuses any file whose sha256 the lock does not list and any package the lock
# does not pin. It works with the wheels on this machine kind's disk (torch 2.14.1, torchvision 0.29.1,
# the CUDA libraries): they are the very files PyPI serves, so their hashes are in the lock.
# The project itself comes last, without re-resolving (--no-deps), built by the locked setuptools.
$(BIN)/.installed: $(LOCK) pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; v = sys.version_info[:2]; v == (3, 11) or print(f"warning: $(LOCK) is resolved for Python 3.11, this venv has {v[0]}.{v[1]}")'
	$(BIN)/python -m pip install $(PIP) --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install $(PIP) --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/.installed

$(LOCK_VENV)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install $(PIP) $(PIP_TOOLS)

## regenerate requirements.lock from pyproject.toml (with the test extras) and lock-constraints.txt
lock: $(LOCK_VENV)/bin/pip-compile
	CUSTOM_COMPILE_COMMAND="make lock  # = pip-compile $(LOCK_FLAGS) --output-file $(LOCK) pyproject.toml" \
		$(LOCK_VENV)/bin/pip-compile --quiet $(LOCK_FLAGS) $(if $(UPGRADE),--upgrade) --output-file $(LOCK) pyproject.toml

## the default benchmark on the embedded echo phantom: baseline vs loss-refurb at systematic:0.5
demo: install
	$(BIN)/bench run --protocol phantom-quick --method baseline,loss-refurb --noise systematic:0.5 --seeds 1 --out results/demo

## the test suite (what CI runs), then the linter. One pytest-xdist worker per core (at most 4); a test file
## stays on one worker (--dist loadfile), so a module's expensive fixture is built once and Ray starts once.
## The 15 slowest tests are listed at the end, to keep the suite within its 10 minutes on 2 cores.
test: install
	$(BIN)/python -m pytest -q --numprocesses auto --maxprocesses 4 --dist loadfile --durations 15
	$(BIN)/ruff check .

## speed benchmarks (ratios against baselines measured in the same run)
benchmark: install
	$(BIN)/python -m pytest -q -p no:cacheprovider benchmarks

clean:
	rm -rf $(VENV) $(LOCK_VENV) results .pytest_cache .ruff_cache
