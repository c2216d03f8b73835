# Set-up and everyday commands. Each target creates the virtual environment when it is
# missing (or when pyproject.toml / constraints.txt changed) and installs with the pinned
# constraints, so `make studio` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: studio preflight test lint traceability bench bench-quick clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

## Start the studio on its built-in default data, once the preflight says a window can open here.
studio: preflight $(STAMP)
	$(VENV)/bin/studio

## Can a window open here? Standard library only, so it runs before the install: without a display, or
## without the system libraries Qt's platform plugin needs, it says what to do (the install command) and exits 2.
preflight:
	@$(PYTHON) -m studio.preflight

## Run the whole suite: lint, layering, tests; regenerates specs/TRACEABILITY.md from the run.
test: $(STAMP)
	$(PY) -m ruff check studio tests benchmarks tools
	@rm -f .pytest_cache/hang.txt
	$(PY) -m pytest --traceability=specs/TRACEABILITY.md $(PYTEST_ARGS) \
		|| { status=$$?; cat .pytest_cache/hang.txt 2>/dev/null; exit $$status; }

lint: $(STAMP)
	$(PY) -m ruff check studio tests benchmarks tools

traceability: test

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	@touch $(BENCH_STAMP)

## Every benchmark, figures to benchmarks/results/latest.json and docs/benchmarks.md.
bench: $(BENCH_STAMP)
	$(PY) -m benchmarks

bench-quick: $(BENCH_STAMP)
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
