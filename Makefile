# Two commands do all set-up on a fresh machine: `make bench DETECTOR=sfam` and `make test`.
# .venv/.installed is a file target: the venv is (re)built only when pyproject.toml changes.

PY      := .venv/bin/python
export HF_HUB_OFFLINE ?= 1
export NO_ALBUMENTATIONS_UPDATE := 1
export WANDB_MODE ?= disabled
export PYTHONHASHSEED := 0

DETECTOR ?=
GRID     ?= cross
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help install test test-fast lint format bench leaderboard perf demo clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: .venv/.installed  ## create .venv and install the project (only when pyproject.toml changed)

test: .venv/.installed  ## run the whole test suite (slow tests included)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: .venv/.installed  ## run the tests without the `slow` marker
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: .venv/.installed  ## ruff (style, docstrings), ruff format, mypy (the paths in pyproject's [tool.mypy])
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

format: .venv/.installed  ## ruff autofix + format
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: .venv/.installed  ## run the grid (GRID=cross) for DETECTOR (all when empty; BENCH_ARGS: more benchmark.run options); demo data when none is configured
	$(PY) -m benchmark.run --grid $(GRID) $(if $(DETECTOR),--detectors $(DETECTOR),) $(BENCH_ARGS)

leaderboard: .venv/.installed  ## re-render leaderboards/*.md from stored scores
	$(PY) -m benchmark.leaderboard

perf: .venv/.installed  ## run every perf script and write docs/PERFORMANCE.md
	$(PY) -m benchmark.perf all

demo: .venv/.installed  ## generate the embedded demo benchmark
	$(PY) -m datamodules.demo

clean:  ## remove the venv and caches (keeps results)
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache
