# Every target works from a fresh clone: `make setup` builds .venv/ first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STREAMLEARN := $(VENV)/bin/streamlearn
PYTEST := $(PY) -m pytest

.PHONY: setup test test-unit test-integration test-chaos test-extended lint demo demo-labels bench bench-quick services services-down up down clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,dev,tools,local,serve]"
	@touch $@

## Unit + integration (+ a CI-sized chaos run): the README's test command. Two test files at a
## time (pytest-xdist, one file per worker): most of a test is waiting on Kafka, Redis and Ray,
## so on 2 cores two run in about half the time. TEST_JOBS=0 runs one test at a time.
TEST_JOBS ?= 2
test: setup
	$(PYTEST) -n $(TEST_JOBS) --dist loadfile tests

test-unit: setup
	$(PYTEST) tests/unit

test-integration: setup
	$(PYTEST) tests/integration

## Kills, zombies, service faults, hostile input (CI size); larger: CHAOS_EVENTS=50000 make test-chaos.
## Report: .venv/bin/python -m tests.chaos.report --write docs/reliability.md
test-chaos: setup
	STREAMLEARN_EXTENDED=1 $(PYTEST) tests/chaos

## Everything, the extended tier too (slow scenarios a default-tier test also covers).
test-extended: setup
	STREAMLEARN_EXTENDED=1 $(PYTEST) tests

lint: setup
	$(VENV)/bin/ruff check streamlearn connectors tests bench
	$(VENV)/bin/mypy streamlearn connectors bench

demo: setup
	$(PY) -m streamlearn.tools.demo

## The delayed-labels demo: unlabelled impressions, clicks on their own topic, joined exactly once.
demo-labels: setup
	$(PY) -m streamlearn.tools.demo_labels

## The full run (bench.run prints its estimated duration first), then docs/benchmarks.md and plots from the data.
bench: setup
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench.run
	$(PY) -m bench.report --write --plots

bench-quick: setup
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m bench.run --quick

## Local Kafka + Redis from the project's own launchers.
services: setup
	$(STREAMLEARN) services up

services-down: setup
	$(STREAMLEARN) services down

## Docker compose stack (needs a Docker engine).
up:
	docker compose -f docker/docker-compose.yml up -d

down:
	docker compose -f docker/docker-compose.yml --profile monitoring down

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
