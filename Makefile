# Voronka: two commands to know.
#   make run    install, migrate, load the demo once, serve http://127.0.0.1:8000 with the task worker
#   make test   lint, layer contracts, migrations check, the suite on SQLite and on a throwaway PostgreSQL
# Extra pytest arguments: make test ARGS="-x -k outbox"

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.voronka-installed
ARGS   ?=

.PHONY: help install run test test-sqlite test-postgres lint ruff imports migrations bench screenshots clean

help:
	@echo "make run          install, migrate, demo data, web server + worker on http://127.0.0.1:8000"
	@echo "make test         ruff, import contracts, migrations check, pytest on SQLite and PostgreSQL (ARGS=... for pytest)"
	@echo "make test-sqlite  only the SQLite pytest run;  make test-postgres  only the PostgreSQL run"
	@echo "make bench        benchmarks (scripts/bench.sh)"
	@echo "make install      create .venv and install Voronka with its dev tools"

install: $(STAMP)

# Reinstalls only when pyproject.toml changed since the last successful install (or .venv is new).
$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
		echo "creating $(VENV) with $(PYTHON)"; \
		command -v $(PYTHON) >/dev/null || { echo "!! $(PYTHON) not found: Voronka needs Python 3.11" >&2; exit 1; }; \
		$(PYTHON) -m venv $(VENV); \
	fi
	@[ -x $(BIN)/uv ] || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	@touch $(STAMP)

run: install
	@scripts/run.sh

lint: ruff imports migrations

ruff: install
	@echo "== ruff"
	@$(BIN)/ruff check .

imports: install
	@echo "== import-linter (layer contracts)"
	@$(BIN)/lint-imports --no-cache

migrations: install
	@echo "== migrations up to date"
	@env -u VORONKA_DATABASE_URL $(BIN)/python manage.py makemigrations --check --dry-run

test-sqlite: install
	@echo "== pytest on SQLite"
	@env -u VORONKA_DATABASE_URL scripts/pytest.sh SQLite $(ARGS)

test-postgres: install
	@echo "== pytest on PostgreSQL (throwaway cluster)"
	@scripts/with-postgres.sh scripts/pytest.sh PostgreSQL $(ARGS)

# -k: every step runs even if an earlier one failed, so one run shows every problem;
# the exit code is non-zero if any step failed.
test: install
	@start=$$(date +%s); rc=0; \
	$(MAKE) --no-print-directory -k ruff imports migrations test-sqlite test-postgres || rc=$$?; \
	if [ $$rc -eq 0 ]; then echo "== make test passed in $$(( $$(date +%s) - start )) s"; \
	else echo "!! make test FAILED (see the errors above) after $$(( $$(date +%s) - start )) s" >&2; fi; \
	exit $$rc

bench: install
	@scripts/bench.sh

screenshots: install
	@scripts/screenshots.sh

clean:
	rm -rf $(VENV) var/static .pytest_cache
