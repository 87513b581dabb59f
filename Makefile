# The two commands a new machine needs: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: setup run test lint typecheck bench clean

setup:
	@bash scripts/setup.sh

run: setup
	@$(VENV)/python -m rezolus_core.supervise --config config/run.toml

test: setup lint
	@$(VENV)/python -m pytest $(PYTEST_ARGS)

lint: setup
	@$(VENV)/ruff check .
	@$(VENV)/mypy
	@$(VENV)/lint-imports --no-logo --no-cache

bench: setup
	@$(VENV)/python bench/agent_bench.py

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
