# Orchard: the everyday commands. Each one installs what it needs first.
#   make serve   install, then serve the embedded default on http://127.0.0.1:8080
#   make test    everything CI runs (scripts/test.sh): ruff, mypy, pytest on both stacks
#   make lint    ruff and mypy only
#   make bench   the 2 GiB transfer benchmark (BENCH_ARGS="--size-mb 256" for a short run)
#   make bench-pypi  the PyPI proxy next to its peers and nginx (BENCH_PYPI_ARGS="--quick nginx": short)

VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
BENCH_ARGS ?=
BENCH_PYPI_ARGS ?=

.PHONY: setup services serve test lint bench bench-pypi

setup:
	scripts/setup.sh

services:
	scripts/services.sh

serve: setup
	$(BIN)/orchard serve --host $(HOST) --port $(PORT)

test:
	scripts/test.sh

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/transfer_2gb.py $(BENCH_ARGS)

# one benchmark at a time on this machine: the lock is shared with everyone's runs
bench-pypi: setup
	flock /tmp/orchard-bench.lock bash bench/pypi_proxy.sh $(BENCH_PYPI_ARGS)
