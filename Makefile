# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision must match; these two are pinned for reproducible CPU numbers.
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test lint benchmark clean

$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH) -e ".[test]"
	touch $@

install: $(BIN)/.installed

## the default benchmark on the embedded echo phantom: baseline vs loss-refurb at systematic:0.5
demo: install
	$(BIN)/bench run --protocol phantom-quick --method baseline,loss-refurb --noise systematic:0.5 --seeds 1 --out results/demo

## the test suite (what CI runs), then the linter
test: install
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check .

## speed benchmarks (ratios against baselines measured in the same run)
benchmark: install
	$(BIN)/python -m pytest -q -p no:cacheprovider benchmarks

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
