# The same commands CI runs (.ci/run), one target each.
.PHONY: install lint format typecheck test ci bench

install:
	pip install -e '.[dev]'

lint:
	ruff check .
	ruff format --check .

format:
	ruff format .
	ruff check --fix .

typecheck:
	mypy

test:
	pip install -e '.[dev]' && python -m pytest

ci:
	.ci/run

bench:
	python benchmarks/run.py
