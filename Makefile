.PHONY: setup demo test lint bench
setup:
	bash scripts/setup.sh

# README command 1: set up and run the end-to-end demo on bundled BBC News data.
demo: setup
	.venv/bin/transferops demo --out demo_out --fresh

# README command 2: set up and run the whole test suite (.ci/run calls exactly this).
test:
	bash scripts/test.sh

lint: setup
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/mypy

bench: setup
	for b in benchmarks/*.py; do .venv/bin/python $$b || exit 1; done
